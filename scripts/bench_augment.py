"""Epoch time of article D's CNN with no shifts, Keras' RandomTranslation, and rtune's RandomShift.

    python scripts/bench_augment.py [--train-size 4800] [--epochs 3] [--factor 0.05]

Why RandomShift exists: under JAX on a GPU, RandomTranslation (interpolation through
``ops.image.affine_transform``) made a steady epoch 60x longer on an H100 (docs/benchmarks.md). Prints,
per variant, the first epoch (compilation included) and the median of the others, measured one after the
other in this process.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from rtune_fashion.augment import RandomShift  # noqa: E402
from rtune_fashion.data import load_fashion_mnist  # noqa: E402
from rtune_fashion.models import build_model, build_optimizer, preset  # noqa: E402
from rtune_fashion.training import fit_epochs  # noqa: E402


def _with_augmentation(config: dict, layer: keras.layers.Layer | None) -> keras.Model:
    base = build_model(config)
    if layer is None:
        return base
    inputs = keras.Input(base.input_shape[1:])
    model = keras.Model(inputs, base(layer(inputs)))
    model.compile(optimizer=build_optimizer(config), loss=base.loss, metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=4800)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--factor", type=float, default=0.05)
    args = parser.parse_args()
    data = load_fashion_mnist(subset={"train": args.train_size})
    config = {**preset("hyperas_best_cnn"), "augment_translate": 0.0}
    variants = {
        "no shifts": lambda: None,
        "keras RandomTranslation": lambda: keras.layers.RandomTranslation(args.factor, args.factor,
                                                                          fill_mode="constant"),
        "rtune RandomShift": lambda: RandomShift(args.factor),
    }  # fmt: skip
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {args.train_size} training images, "
          f"factor {args.factor}, {args.epochs} epochs each")
    for name, make_layer in variants.items():
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = _with_augmentation(config, make_layer())
        times = [h["epoch_time_s"] for h in fit_epochs(model, config, data, start_epoch=0, end_epoch=args.epochs)]
        steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
        print(f"{name:24} first epoch {times[0]:7.2f} s   median of the next {len(times) - 1}: {steady:7.2f} s")


if __name__ == "__main__":
    main()
