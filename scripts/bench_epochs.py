"""Epoch time of the articles' presets on this machine: the median of several epochs after the first.

    .venv/bin/python scripts/bench_epochs.py [--train-size 12000] [--epochs 4] [--presets lenet vgg_like]

Prints one line per preset: first epoch (includes compilation), median of the remaining epochs, and
images per second. The first epoch is reported apart because it includes tracing and compilation.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from rtune_fashion.data import load_fashion_mnist  # noqa: E402
from rtune_fashion.devices import cpu_description  # noqa: E402
from rtune_fashion.models import PRESETS, build_model, preset  # noqa: E402
from rtune_fashion.training import fit_epochs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--presets", nargs="+", default=sorted(PRESETS))
    args = parser.parse_args()
    data = load_fashion_mnist(subset={"train": args.train_size})
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {cpu_description()}, "
          f"{args.train_size} training images, {args.epochs} epochs each")
    for name in args.presets:
        config = preset(name)
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        history = fit_epochs(build_model(config), config, data, start_epoch=0, end_epoch=args.epochs)
        times = [h["epoch_time_s"] for h in history]
        steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
        print(f"{name:18} first epoch {times[0]:6.2f} s   median of next {len(times) - 1}: {steady:6.2f} s   "
              f"{args.train_size / steady:8.0f} train images/s (validation included)   "
              f"val accuracy {history[-1]['val_accuracy']:.4f}")


if __name__ == "__main__":
    main()
