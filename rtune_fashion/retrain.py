"""Train one config from scratch on the train split and test it once: the final step of every search, the
reproduction of the articles' architectures, and ``rtune train`` (a preset over several seeds).

No Ray here (the experiment calls :func:`train_and_test` on a Ray worker).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import keras

from rtune_fashion import config as cfg
from rtune_fashion.data import Dataset
from rtune_fashion.models import build_model
from rtune_fashion.training import evaluate, fit_epochs

DEFAULT_EPOCHS = 10


def train_and_test(config: dict[str, Any], data: Dataset, *, epochs: int, seed: int,
                   schedule_epochs: int | None = None,
                   validate_each_epoch: bool = True) -> tuple[keras.Model, dict[str, float]]:  # fmt: skip
    """Train ``config`` for ``epochs`` with ``seed``, validating after every epoch (unless
    ``validate_each_epoch`` is False: a search's final model, where only the end counts); then evaluate val
    and test once. A learning-rate schedule spans ``schedule_epochs`` (default ``epochs``).

    Returns the model and: epochs, train_accuracy (the last epoch's, dropout on), val_accuracy (final),
    best_val_accuracy (over the epochs), test_accuracy, train_time_s.

    Raises:
        NonFiniteLossError: the training loss became NaN or infinite.
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build_model(config, data.input_shape, data.num_classes)
    started = time.perf_counter()
    history = fit_epochs(model, config, data, start_epoch=0, end_epoch=epochs, schedule_epochs=schedule_epochs,
                         validate=validate_each_epoch)
    train_time = time.perf_counter() - started
    batch_size = int(cfg.get(config, "batch_size"))
    _, val_accuracy = evaluate(model, data.x_val, data.y_val, batch_size)
    _, test_accuracy = evaluate(model, data.x_test, data.y_test, batch_size)  # the one look at the test set
    return model, {
        "epochs": epochs,
        "train_accuracy": history[-1]["accuracy"] if history else math.nan,
        "val_accuracy": val_accuracy,
        "best_val_accuracy": max((h.get("val_accuracy", val_accuracy) for h in history), default=math.nan),
        "test_accuracy": test_accuracy,
        "train_time_s": train_time,
    }


def config_epochs(config: dict[str, Any], epochs: int | None = None) -> int:
    """Epochs to train a config for: ``epochs`` if given, else the config's own ``epochs``, else 10."""
    return int(epochs or cfg.get(config, "epochs") or DEFAULT_EPOCHS)


def mean_and_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
