"""First epoch of a trial whose architecture was compiled before, with the values as constants and as runtime
values (under JAX).

    KERAS_BACKEND=jax python scripts/bench_compile_reuse.py [--train-size 4800] [--val-size 2400] [--epochs 3]

Trains article D's best CNN (dropouts 0.2/0.3/0.7, L2 1e-5) and then the same architecture with other dropout
rates and L2 factors, each for ``--epochs`` epochs in this process, with JAX's persistent compilation cache in a
new temporary folder shared by both runs (as a reused actor of a search does): first with Keras' own layers
(values baked into the compiled program), then with rtune's runtime values. Prints each model's first epoch,
its steady epoch (the median of the others), their ratio, and its training-step compilations and cache reads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from rtune_fashion import compilations  # noqa: E402
from rtune_fashion.data import load_fashion_mnist  # noqa: E402
from rtune_fashion.devices import cpu_description, enable_jax_compilation_cache  # noqa: E402
from rtune_fashion.models import build_model, preset  # noqa: E402
from rtune_fashion.runtime_values import constant_layers  # noqa: E402
from rtune_fashion.training import fit_epochs  # noqa: E402

VALUES = [{"l2": 1e-5}, {"dropout_1": 0.25, "dropout_2": 0.35, "dense_dropout": 0.5, "l2": 1e-4},
          {"dropout_1": 0.1, "dropout_2": 0.4, "dense_dropout": 0.6, "l2": 3e-4}]  # fmt: skip


def run(data: object, epochs: int) -> list[str]:
    """One line per model: first epoch, steady epoch, ratio, compilations and cache reads of its training step."""
    counter = compilations.counter()
    lines = []
    for values in VALUES:
        config = {**preset("hyperas_best_cnn"), **values}
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        before = counter.snapshot()
        history = fit_epochs(build_model(config), config, data, start_epoch=0, end_epoch=epochs)
        counted = counter.snapshot().minus(before)
        first, steady = history[0]["epoch_time_s"], statistics.median(r["epoch_time_s"] for r in history[1:])
        lines.append(f"  {values}: first epoch {first:.2f} s, steady {steady:.2f} s "
                     f"({first / steady:.1f}x); train step compiled {counted.train_step_compilations}, read from "
                     f"the cache {counted.train_step_cache_hits}")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=4800)
    parser.add_argument("--val-size", type=int, default=2400)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if keras.backend.backend() != "jax":
        raise SystemExit("Run it under JAX: KERAS_BACKEND=jax python scripts/bench_compile_reuse.py")
    data = load_fashion_mnist().subset({"train": args.train_size, "val": args.val_size})
    print(f"{cpu_description()}, Keras {keras.__version__} on jax; article D's best CNN, {args.train_size} training "
          f"and {args.val_size} validation images, {args.epochs} epochs per model")  # fmt: skip
    with tempfile.TemporaryDirectory() as cache:  # one per process: JAX opens its cache once
        enable_jax_compilation_cache(Path(cache))
        print("Keras' own layers (values are constants):")
        with constant_layers():
            print("\n".join(run(data, args.epochs)))
        print("rtune's runtime values (the validation step, which has no dropout, is in the cache already):")
        print("\n".join(run(data, args.epochs)))


if __name__ == "__main__":
    main()
