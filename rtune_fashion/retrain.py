"""Train one config from scratch on the train split and test it once: the final step of every search, the
reproduction of the articles' architectures, and ``rtune train`` (a preset over several seeds).

No Ray here (the experiment calls :func:`train_and_test` on a Ray worker).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np

from rtune_fashion import config as cfg
from rtune_fashion.data import Dataset
from rtune_fashion.models import average_of, build_model
from rtune_fashion.training import eval_batch_size, evaluate, fit_epochs, test_scores

DEFAULT_EPOCHS = 10
# Another ensemble member starts when this many times the last one's training time (and the evaluation after
# it) is left. No more: a member that then runs late is dropped at the end of an epoch (see train_and_test),
# so a margin buys no punctuality, only fewer members (measured: trainings of one config took 183 and 185 s;
# with 1.15, a run on two cores ended 251 s early, a second member's 211 s + evaluation not started).
MEMBER_MARGIN = 1.0
# A later member may train for fewer epochs than the first (its learning-rate schedule shortened to match)
# when only that fits, down to this share of them: in a main-job run the second of two planned trainings
# missed by 13 s (266 s left, 279 s for 9 epochs), where 7 of its epochs fitted. A choice, not tuned.
MIN_MEMBER_SHARE = 2 / 3


class _OutOfTime(Exception):
    """An optional ensemble member would end after the deadline: it is dropped."""


def train_and_test(config: dict[str, Any], data: Dataset, *, epochs: int, seed: int,
                   schedule_epochs: int | None = None, validate_each_epoch: bool = True, max_members: int = 1,
                   deadline: float = math.inf) -> tuple[keras.Model, dict[str, Any]]:  # fmt: skip
    """Train ``config`` for ``epochs`` with ``seed``, validating after every epoch (unless
    ``validate_each_epoch`` is False: a search's final model, where only the end counts); then evaluate val
    and test once. A learning-rate schedule spans ``schedule_epochs`` (default ``epochs``).

    With ``max_members`` > 1 the model is an ensemble (:func:`rtune_fashion.models.average_of`) of trainings
    with consecutive seeds (``seed``, ``seed + 1``, ...). The first always trains; another starts only when
    its epochs (all of them, or as few as :data:`MIN_MEMBER_SHARE` of them, the schedule shortened alike) at
    :data:`MEMBER_MARGIN` x the last one's pace, its validation and the ensemble's evaluation fit before
    ``deadline`` (a ``time.time()`` timestamp), and is dropped at the end of any epoch after which, at its
    own pace so far, it would not: the ensemble ends by the deadline unless the first training alone does
    not. Only the final model (the ensemble) sees the test set.

    Returns the model and: epochs, train_accuracy (the first training's last epoch, dropout on),
    val_accuracy (final), best_val_accuracy (the first training's best epoch when validating each epoch,
    else the final val), test_accuracy and confusion_matrix (:func:`rtune_fashion.training.test_scores`),
    train_time_s (all trainings, dropped ones included), members, member_seeds, member_epochs,
    member_val_accuracy, member_train_time_s.

    Raises:
        NonFiniteLossError: the training loss became NaN or infinite.
    """
    keras.backend.clear_session()
    batch_size = int(cfg.get(config, "batch_size"))
    test_per_val = len(data.y_test) / max(len(data.y_val), 1)
    members: list[keras.Model] = []
    member_val: list[float] = []
    member_s: list[float] = []
    member_epochs: list[int] = []
    histories: list[list[dict[str, float]]] = []
    train_time, val_s = 0.0, 0.0
    this_epochs = epochs
    while True:
        keras.utils.set_random_seed(seed + len(members))
        model = build_model(config, data.input_shape, data.num_classes)
        started = time.perf_counter()
        guard = None  # the first training always ends; a later one may be dropped
        if members:
            after_s = _evaluation_s(len(members) + 1, val_s, test_per_val)
            guard = _deadline_guard(deadline, this_epochs, started, after_s)
        # A shortened member's schedule ends where the first one's did (a cosine decays as far).
        schedule = round((schedule_epochs or epochs) * this_epochs / epochs)
        try:
            history = fit_epochs(model, config, data, start_epoch=0, end_epoch=this_epochs, schedule_epochs=schedule,
                                 validate=validate_each_epoch, on_epoch=guard)  # fmt: skip
        except _OutOfTime:
            train_time += time.perf_counter() - started
            break
        member_s.append(time.perf_counter() - started)
        member_epochs.append(this_epochs)
        train_time += member_s[-1]
        started = time.perf_counter()
        member_val.append(evaluate(model, data.x_val, data.y_val, batch_size)[1])
        val_s = time.perf_counter() - started
        members.append(model)
        histories.append(history)
        this_epochs = _next_member_epochs(len(members), max_members, epochs, member_s[-1] / this_epochs, val_s,
                                          test_per_val, deadline - time.time())  # fmt: skip
        if not this_epochs:
            break
    model = average_of(members)
    val_accuracy = member_val[0] if len(members) == 1 else evaluate(model, data.x_val, data.y_val, batch_size)[1]
    tested = test_scores(model, data.x_test, data.y_test, batch_size)  # the one look at the test set
    history = histories[0]
    return model, {
        "epochs": epochs,
        "train_accuracy": history[-1]["accuracy"] if history else math.nan,
        "val_accuracy": val_accuracy,
        "best_val_accuracy": max((h.get("val_accuracy", val_accuracy) for h in history), default=math.nan),
        **tested,
        "train_time_s": train_time,
        "members": len(members),
        "member_seeds": [seed + i for i in range(len(members))],
        "member_epochs": member_epochs,
        "member_val_accuracy": member_val,
        "member_train_time_s": member_s,
    }


def _next_member_epochs(members: int, max_members: int, epochs: int, epoch_s: float, val_s: float,
                        test_per_val: float, left_s: float) -> int:  # fmt: skip
    """Epochs of one more member with ``left_s`` seconds left, 0 for none: the most of ``epochs``, and at
    least :data:`MIN_MEMBER_SHARE` of them, whose training (:data:`MEMBER_MARGIN` x ``epoch_s``, the last
    member's pace), its validation and then the ensemble's evaluation of val and test (each member's val
    time, scaled) fit."""
    if members >= max_members:
        return 0
    if math.isinf(left_s):
        return epochs
    train_s = left_s - _evaluation_s(members + 1, val_s, test_per_val)
    fitting = min(epochs, math.floor(train_s / (MEMBER_MARGIN * max(epoch_s, 1e-9))))
    return fitting if fitting >= math.ceil(MIN_MEMBER_SHARE * epochs - 1e-9) else 0


def _evaluation_s(members: int, val_s: float, test_per_val: float) -> float:
    """What follows a new member's training: its own validation, then an ensemble of ``members`` evaluated on
    val and test (each member's val pass, scaled by the test split's size)."""
    return val_s + members * val_s * (1 + test_per_val)


def _deadline_guard(deadline: float, epochs: int, started: float, after_s: float):
    """An ``on_epoch`` callback that raises :class:`_OutOfTime` when the member's remaining epochs, at its
    mean epoch time so far, and ``after_s`` seconds of evaluation would end after ``deadline``."""

    def check(epoch: int, metrics: dict[str, float], model: keras.Model) -> None:
        per_epoch = (time.perf_counter() - started) / epoch
        if time.time() + per_epoch * (epochs - epoch) + after_s > deadline:
            raise _OutOfTime

    return check


# A trained model joins an ensemble only if its own val accuracy is at most this far below the first's: a weak
# model can raise a weak ensemble's val accuracy through its calibration alone (seen: 0.342 + a 0.098 model
# gave 0.434 on 500 images), which is the validation split being fitted, not a better model.
JOIN_WITHIN = 0.02


def ensemble_of_trained(first: keras.Model, candidates: Iterable[Callable[[], keras.Model]], data: Dataset, *,
                        batch_size: int, max_members: int, deadline: float = math.inf,
                        ) -> tuple[keras.Model, dict[str, Any]]:  # fmt: skip
    """``first`` (the best trial's trained model), joined by each of ``candidates`` (loaders of the next
    trials' models, best first) that scores within :data:`JOIN_WITHIN` of ``first`` on ``data``'s
    validation split and whose addition raises the ensemble's accuracy there (forward selection in rank
    order), up to ``max_members`` and while one more candidate's loading and prediction (at the last one's
    pace) fits before ``deadline``; then evaluated once on the test split.

    Returns the model (:func:`rtune_fashion.models.average_of`) and: val_accuracy, test_accuracy,
    confusion_matrix, members, member_index (the candidates joined: 0 is ``first``, i the i-th candidate),
    member_val_accuracy (each model alone).
    """
    eval_batch = eval_batch_size(len(data.y_val), batch_size)

    def probabilities(model: keras.Model) -> np.ndarray:
        return np.asarray(model.predict(data.x_val, batch_size=eval_batch, verbose=0))

    def accuracy(probs: np.ndarray) -> float:
        predicted = (probs[:, 0] > 0.5).astype(int) if probs.shape[-1] == 1 else probs.argmax(axis=-1)
        return float(np.mean(predicted == np.asarray(data.y_val)))

    members, indices = [first], [0]
    total = probabilities(first)
    alone = [accuracy(total)]
    best = alone[0]
    pace = 0.0
    for index, load in enumerate(candidates, start=1):
        if len(members) >= max_members or time.time() + pace > deadline:
            break
        started = time.time()
        model = load()
        probs = probabilities(model)
        own, joined = accuracy(probs), accuracy((total + probs) / (len(members) + 1))
        if joined > best and own >= alone[0] - JOIN_WITHIN:
            members.append(model)
            indices.append(index)
            alone.append(own)
            total, best = total + probs, joined
        pace = time.time() - started
    final = average_of(members)
    tested = test_scores(final, data.x_test, data.y_test, batch_size)  # the one look at the test set
    return final, {"val_accuracy": best, **tested, "members": len(members), "member_index": indices,
                   "member_val_accuracy": alone}  # fmt: skip


def config_epochs(config: dict[str, Any], epochs: int | None = None) -> int:
    """Epochs to train a config for: ``epochs`` if given, else the config's own ``epochs``, else 10."""
    return int(epochs or cfg.get(config, "epochs") or DEFAULT_EPOCHS)


def mean_and_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
