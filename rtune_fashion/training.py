"""Training one Keras model epoch by epoch: shared by Tune trials and the final retraining.

No Ray here. ``fit_epochs`` calls ``on_epoch(epoch, metrics, model)`` after every epoch; a NaN or
infinite training loss raises :class:`NonFiniteLossError` at the end of the epoch where it appeared,
before that epoch is reported or checkpointed.

Every step sees a batch of one shape, so each backend compiles its train step and its test step once:
a last partial batch would be a second shape, and on XLA (JAX, TensorFlow on GPU) a second compilation
that cost about as much as the first (measured on an H100, see docs/benchmarks.md). Hence:

* training uses the first ``n - n % batch_size`` examples of the (randomly ordered) train split: at most
  ``batch_size - 1`` examples left out, the same ones every epoch (a cross-validation fit passes
  ``whole_batches_only=False`` and uses every row, as GridSearchCV does: its folds are small, in file order,
  and compile once either way on the CPU);
* validation and test are evaluated in batches of :func:`eval_batch_size`, a divisor of their size, so
  every example counts and no batch is partial.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from rtune_fashion import config as cfg
from rtune_fashion.data import Dataset
from rtune_fashion.errors import NonFiniteLossError

EpochCallback = Callable[[int, dict[str, float], keras.Model], None]
REPORTED = ("loss", "accuracy", "val_loss", "val_accuracy")
# Evaluation batches: as large as this (fewer steps), and a divisor of the split's size when one is at
# least EVAL_BATCH_MIN (else the training batch size, accepting one partial batch).
EVAL_BATCH_MAX = 1024
EVAL_BATCH_MIN = 32


def whole_batches(n: int, batch_size: int) -> int:
    """How many of ``n`` training examples fill whole batches (all ``n`` when fewer than one batch)."""
    return n if n < batch_size else n - n % batch_size


def eval_batch_size(n: int, batch_size: int) -> int:
    """A batch size for evaluating ``n`` examples without a partial last batch: the largest divisor of ``n``
    up to EVAL_BATCH_MAX; ``batch_size`` when ``n`` has no divisor in [EVAL_BATCH_MIN, EVAL_BATCH_MAX]."""
    if n <= EVAL_BATCH_MAX:
        return max(n, 1)
    divisor = next(d for d in range(EVAL_BATCH_MAX, 0, -1) if n % d == 0)
    return divisor if divisor >= EVAL_BATCH_MIN else batch_size


def evaluate(model: keras.Model, x: Any, y: Any, batch_size: int) -> tuple[float, float]:
    """(loss, accuracy) of ``model`` on ``x, y``, in batches of :func:`eval_batch_size`."""
    loss, accuracy = model.evaluate(x, y, batch_size=eval_batch_size(len(x), batch_size), verbose=0)
    return float(loss), float(accuracy)


def test_scores(model: keras.Model, x: Any, y: Any, batch_size: int) -> dict[str, Any]:
    """The final model's one look at the test split: test_accuracy and confusion_matrix (rows: the true class,
    columns: the predicted one, counts; a single sigmoid output is read as class 1 above 0.5)."""
    probabilities = np.asarray(model.predict(x, batch_size=eval_batch_size(len(x), batch_size), verbose=0))
    if probabilities.shape[-1] == 1:
        predicted, classes = (probabilities[:, 0] > 0.5).astype(np.int64), 2
    else:
        predicted, classes = probabilities.argmax(axis=-1), probabilities.shape[-1]
    truth = np.asarray(y).astype(np.int64).reshape(-1)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    return {"test_accuracy": float(np.mean(predicted == truth)), "confusion_matrix": confusion.tolist()}


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


class _CosineSchedule(keras.callbacks.Callback):
    """Epoch e (from 0) trains at ``base * (1 + cos(pi * e / horizon)) / 2``: the base rate first, near 0 last."""

    def __init__(self, base: float, horizon: int) -> None:
        super().__init__()
        self._base, self._horizon = base, max(1, horizon)

    def rate(self, epoch: int) -> float:
        return self._base * 0.5 * (1 + math.cos(math.pi * min(epoch, self._horizon) / self._horizon))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.model.optimizer.learning_rate.assign(self.rate(epoch))


def fit_epochs(
    model: keras.Model,
    config: dict[str, Any],
    data: Dataset,
    *,
    start_epoch: int,
    end_epoch: int,
    on_epoch: EpochCallback | None = None,
    validate: bool = True,
    schedule_epochs: int | None = None,
    whole_batches_only: bool = True,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> list[dict[str, float]]:
    """Train epochs ``start_epoch + 1 .. end_epoch`` on the train split, validating on the val split after
    each epoch (unless ``validate`` is False: a cross-validation fit is scored once, at its end).

    ``lr_schedule: cosine`` decays the learning rate per epoch over ``schedule_epochs`` (default
    ``end_epoch``): a trial and the retraining of its config pass the experiment's maximum epochs, so a
    trial stopped early and its retraining follow the same rates. The rate depends only on the epoch, so a
    run resumed from a checkpoint continues the schedule. ``whole_batches_only`` leaves out the train split's
    last ``n % batch_size`` examples (see the module docstring); False trains on all of them. ``callbacks`` are
    Keras callbacks for every epoch's fit, called before the epoch hook.

    Returns the per-epoch metrics (loss, accuracy, val_loss, val_accuracy, epoch, epoch_time_s).

    Raises:
        NonFiniteLossError: the training loss became NaN or infinite.
    """
    callbacks = list(callbacks or [])
    if cfg.get(config, "lr_schedule") == "cosine":
        # The config's rate, not the optimizer's: a model restored from a checkpoint holds a decayed one.
        callbacks.append(_CosineSchedule(cfg.learning_rate(config), schedule_epochs or end_epoch))
    hook = _EpochHook(on_epoch, config)
    batch_size = int(cfg.get(config, "batch_size"))
    used = whole_batches(len(data.x_train), batch_size) if whole_batches_only else len(data.x_train)
    # When validating, one fit call per epoch, not one for all: under TensorFlow, a single fit stalls at the
    # first batch of every epoch that follows a validation pass (12 s of a 31-s epoch for hyperas_best_cnn on
    # one core, docs/benchmarks.md); a fresh fit per epoch does not, and reuses the compiled steps. Without
    # validation nothing stalls, and one call spares the per-call set-up of many short epochs.
    epochs_per_call = 1 if validate else max(1, end_epoch - start_epoch)
    for epoch in range(start_epoch, end_epoch, epochs_per_call):
        model.fit(
            data.x_train[:used],  # views: no copy
            data.y_train[:used],
            batch_size=batch_size,
            epochs=min(epoch + epochs_per_call, end_epoch),
            initial_epoch=epoch,
            validation_data=(data.x_val, data.y_val) if validate else None,
            validation_batch_size=eval_batch_size(len(data.x_val), batch_size),
            callbacks=[*callbacks, hook],
            shuffle=True,
            verbose=0,
        )
    return hook.history
