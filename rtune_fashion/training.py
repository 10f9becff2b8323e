"""Training one Keras model epoch by epoch: shared by Tune trials and the final retraining.

No Ray here. ``fit_epochs`` calls ``on_epoch(epoch, metrics, model)`` after every epoch; a NaN or
infinite training loss raises :class:`NonFiniteLossError` at the end of the epoch where it appeared,
before that epoch is reported or checkpointed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras

from rtune_fashion import config as cfg
from rtune_fashion.data import Dataset
from rtune_fashion.errors import NonFiniteLossError

EpochCallback = Callable[[int, dict[str, float], keras.Model], None]
REPORTED = ("loss", "accuracy", "val_loss", "val_accuracy")


class _EpochHook(keras.callbacks.Callback):
    def __init__(self, on_epoch: EpochCallback | None, config: dict[str, Any]) -> None:
        super().__init__()
        self._on_epoch = on_epoch
        self._config = config
        self._started = 0.0
        self.history: list[dict[str, float]] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        metrics = {key: float(logs[key]) for key in REPORTED if key in logs}
        loss = metrics.get("loss", math.nan)
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"Training diverged: loss is {loss} at epoch {epoch + 1} (learning rate "
                f"{cfg.learning_rate(self._config)}). Fix: a lower learning rate, "
                "batch norm, or a narrower learning-rate range in the search space."
            )
        metrics["epoch"] = epoch + 1
        metrics["epoch_time_s"] = time.perf_counter() - self._started
        self.history.append(metrics)
        if self._on_epoch is not None:
            self._on_epoch(epoch + 1, metrics, self.model)


def fit_epochs(
    model: keras.Model,
    config: dict[str, Any],
    data: Dataset,
    *,
    start_epoch: int,
    end_epoch: int,
    on_epoch: EpochCallback | None = None,
    validate: bool = True,
) -> list[dict[str, float]]:
    """Train epochs ``start_epoch + 1 .. end_epoch`` on the train split, validating on the val split after
    each epoch (unless ``validate`` is False: a cross-validation fit is scored once, at its end).

    Returns the per-epoch metrics (loss, accuracy, val_loss, val_accuracy, epoch, epoch_time_s).

    Raises:
        NonFiniteLossError: the training loss became NaN or infinite.
    """
    hook = _EpochHook(on_epoch, config)
    if start_epoch < end_epoch:
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=int(cfg.get(config, "batch_size")),
            epochs=end_epoch,
            initial_epoch=start_epoch,
            validation_data=(data.x_val, data.y_val) if validate else None,
            callbacks=[hook],
            shuffle=True,
            verbose=0,
        )
    return hook.history
