"""What an ensemble of trainings adds: val accuracy of each training alone and of the first k averaged.

    .venv/bin/python scripts/bench_ensemble.py [--train-size 12000] [--epochs 6] [--members 3] \
        [--member-epochs 6 4 6] [--preset NAME | --config JSON]

Trains the config ``--members`` times with consecutive seeds through the final model's own path
(:func:`rtune_fashion.retrain.train_and_test`), on a stratified training subset, and validates on all
12,000 validation images. ``--member-epochs`` gives each training its own epochs instead (a later member
that only fits fewer, its learning-rate schedule as long as its epochs), and prints each one averaged with
the first, too. Only 10 test images are read, and their score is not printed: val accuracy is
what a choice is made on. The
default config is the one the main job's search most often kept on small budgets: a 2-block VGG net with
16-32 filters and batch norm (docs/MEASURED.md).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from rtune_fashion.data import load_fashion_mnist  # noqa: E402
from rtune_fashion.devices import cpu_description  # noqa: E402
from rtune_fashion.models import PRESETS, preset  # noqa: E402
from rtune_fashion.retrain import train_and_test  # noqa: E402

DEFAULT_CONFIG = {"model": "cnn", "num_blocks": 2, "convs_per_block": 2, "filters": 16, "kernel_size": 3,
                  "padding": "same", "batch_norm": True, "dropout": 0.25, "num_dense": 1, "dense_units": 512,
                  "dense_dropout": 0.3, "optimizer": "nadam", "learning_rate": 1e-3, "batch_size": 128}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--member-epochs", type=int, nargs="+", help="each training's epochs (instead of both above)")
    parser.add_argument("--seed", type=int, default=0)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--preset", choices=sorted(PRESETS))
    which.add_argument("--config", type=json.loads, help="a config as JSON")
    args = parser.parse_args()
    config = preset(args.preset) if args.preset else (args.config or DEFAULT_CONFIG)
    data = load_fashion_mnist(subset={"train": args.train_size, "test": 10})
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {cpu_description()}, "
          f"{args.train_size} training images, {args.member_epochs or args.epochs} epochs, "
          f"{len(args.member_epochs or []) or args.members} trainings")
    if args.member_epochs:  # one training each, alone: its schedule spans its own epochs
        trained = [train_and_test(config, data, epochs=epochs, seed=args.seed + i, validate_each_epoch=False)
                   for i, epochs in enumerate(args.member_epochs)]  # fmt: skip
        members = [model for model, _ in trained]
        seeds, epochs = [o["member_seeds"][0] for _, o in trained], list(args.member_epochs)
        alone, train_s = [o["val_accuracy"] for _, o in trained], sum(o["train_time_s"] for _, o in trained)
    else:
        model, outcome = train_and_test(config, data, epochs=args.epochs, seed=args.seed, validate_each_epoch=False,
                                        max_members=args.members)  # fmt: skip
        count = outcome["members"]
        members = [model.get_layer(f"member_{i}") for i in range(count)] if count > 1 else [model]
        seeds, epochs = outcome["member_seeds"], outcome["member_epochs"]
        alone, train_s = outcome["member_val_accuracy"], outcome["train_time_s"]
    probabilities = [m.predict(data.x_val, batch_size=1000, verbose=0) for m in members]

    def val_of(mean: np.ndarray) -> float:
        return float(np.mean(mean.argmax(axis=1) == data.y_val))

    for k in range(1, len(members) + 1):
        with_first = f"; with the first alone: val {val_of((probabilities[0] + probabilities[k - 1]) / 2):.4f}" if (
            args.member_epochs and k > 2) else ""  # fmt: skip
        print(f"seed {seeds[k - 1]} ({epochs[k - 1]} epochs): val {alone[k - 1]:.4f} alone; first {k} averaged: "
              f"val {val_of(np.mean(probabilities[:k], axis=0)):.4f}{with_first}")
    print(f"training time {train_s:.0f} s for {len(members)}")


if __name__ == "__main__":
    main()
