"""Host round trips per epoch: Keras' ``steps_per_execution`` and the evaluation batch, for our small models.

    python scripts/bench_round_trips.py [--train-size 12000] [--val-size 12000] [--epochs 3] [--repeats 2]
    KERAS_BACKEND=jax python scripts/bench_round_trips.py ...

For each model (the best MLP and article D's best CNN), each ``steps_per_execution`` and each largest
evaluation batch, trains ``--epochs`` epochs with validation (``training.fit_epochs``, as a trial does) and
prints the median steady epoch (epochs 2 and later) over ``--repeats`` runs, the variants interleaved so
that a noisy machine slows them alike. Prints the CPU beside the figures: they compare only on one machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from rtune_fashion import training  # noqa: E402
from rtune_fashion.data import load_fashion_mnist  # noqa: E402
from rtune_fashion.devices import cpu_description  # noqa: E402
from rtune_fashion.models import build_model, build_optimizer, preset  # noqa: E402

MODELS = ("rtune_best_mlp", "hyperas_best_cnn")


def steady_epoch(name: str, steps: int, eval_max: int, data: object, epochs: int) -> float:
    """Median epoch time (s) after the first, with ``steps`` steps per execution and evaluation batches of at
    most ``eval_max``."""
    config = {**preset(name), "lr_schedule": "constant"}
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model(config)
    model.compile(optimizer=build_optimizer(config), loss=model.loss, metrics=["accuracy"],
                  steps_per_execution=steps)  # fmt: skip
    training.EVAL_BATCH_MAX = eval_max
    history = training.fit_epochs(model, config, data, start_epoch=0, end_epoch=epochs)
    return statistics.median(row["epoch_time_s"] for row in history[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=12000)
    parser.add_argument("--val-size", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--eval-max", type=int, nargs="+", default=[1024, 4096])
    args = parser.parse_args()
    data = load_fashion_mnist().subset({"train": args.train_size, "val": args.val_size})
    print(f"{cpu_description()}, Keras {keras.__version__} on {keras.backend.backend()}; {args.train_size} training "
          f"and {args.val_size} validation images, median steady epoch over {args.repeats} runs")  # fmt: skip
    times: dict[tuple[str, int, int], list[float]] = {}
    variants = list(itertools.product(MODELS, args.steps, args.eval_max))
    for _ in range(args.repeats):
        for variant in variants:
            times.setdefault(variant, []).append(steady_epoch(*variant, data, args.epochs))
    for name in MODELS:
        base = statistics.median(times[(name, 1, 1024)]) if (name, 1, 1024) in times else None
        for steps, eval_max in itertools.product(args.steps, args.eval_max):
            median = statistics.median(times[(name, steps, eval_max)])
            ratio = f", {median / base:.2f}x steps 1 / eval 1024" if base else ""
            runs = ", ".join(f"{t:.2f}" for t in times[(name, steps, eval_max)])
            print(f"{name:18s} steps_per_execution {steps:3d}, eval batch <= {eval_max:5d}: {median:.2f} s "
                  f"(runs {runs}){ratio}")  # fmt: skip


if __name__ == "__main__":
    main()
