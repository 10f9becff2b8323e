"""Cross-validated trials: scikit-learn's GridSearchCV, done by Ray Tune.

Each trial (one grid point) fits one fresh model per fold of a stratified k-fold split (train on k-1
folds, score accuracy on the held-out fold) and reports once: ``val_accuracy`` = the mean of the fold
accuracies (what GridSearchCV calls ``mean_test_score``), ``val_accuracy_std``, and each fold's score.

* The folds depend only on the labels, k and the seed (``StratifiedKFold(shuffle=True,
  random_state=seed)``), so every grid point sees the same folds, and so does a GridSearchCV given
  the same splitter.
* With ``standardize``, feature means and standard deviations are fitted on each fold's training rows
  only, never on the held-out fold.
* Each fit trains for the config's ``epochs`` (the article's grids vary it; :data:`DEFAULT_EPOCHS`
  otherwise) at the config's ``batch_size``; fold i's model is seeded with ``seed + i``.
* A fold whose loss becomes NaN/inf ends the trial with :class:`NonFiniteLossError` (DIVERGED).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import ray
from ray import tune
from sklearn.model_selection import StratifiedKFold

from rtune_fashion import config as cfg
from rtune_fashion import devices
from rtune_fashion.data import Dataset
from rtune_fashion.errors import DataError
from rtune_fashion.files import write_atomic
from rtune_fashion.models import build_model
from rtune_fashion.tabular import TabularData, standardizer
from rtune_fashion.trainable import trial_resources
from rtune_fashion.training import evaluate, fit_epochs

DEFAULT_FOLDS = 3
DEFAULT_EPOCHS = 100
CV_RESULTS_FILE = "cv_results.csv"


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, held-out rows) for each fold; the same for every call with the same labels and seed."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def fold_data(data: TabularData, train: np.ndarray, held_out: np.ndarray, standardize: bool) -> Dataset:
    """One fold as a Dataset (train = k-1 folds, val = the held-out fold, no test rows)."""
    x_train, x_held = data.x[train], data.x[held_out]
    if standardize:
        scale = standardizer(x_train)
        x_train, x_held = scale(x_train), scale(x_held)
    return Dataset(x_train, data.y[train], x_held, data.y[held_out], x_held[:0], data.y[held_out][:0],
                   class_names=data.class_names)  # fmt: skip


def cross_validate(config: dict[str, Any], data: TabularData, *, folds: int, seed: int, standardize: bool,
                   epochs_cap: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Fit and score one model per fold; return the mean, standard deviation and per-fold accuracies.

    ``epochs_cap`` bounds each fit's epochs (smoke tests); None = the config's epochs.
    """
    config = cfg.validate(config)
    epochs = int(config.get("epochs") or DEFAULT_EPOCHS)
    epochs = min(epochs, epochs_cap) if epochs_cap else epochs
    scores = []
    for i, (train, held_out) in enumerate(stratified_folds(data.y, folds, seed)):
        fold = fold_data(data, train, held_out, standardize)
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed + i + 1000 * int(cfg.get(config, "repeat")))  # same folds, other weights
        model = build_model(config, fold.input_shape, fold.num_classes)
        # Every training row, as GridSearchCV fits them: the fold's rows are in file order (StratifiedKFold's
        # indices are sorted), so a whole-batch cut would always leave out the file's last rows.
        fit_epochs(model, config, fold, start_epoch=0, end_epoch=epochs, validate=False,  # scored once, below
                   whole_batches_only=False)  # fmt: skip
        _, accuracy = evaluate(model, fold.x_val, fold.y_val, int(cfg.get(config, "batch_size")))
        scores.append(accuracy)
    return {
        "val_accuracy": float(np.mean(scores)),
        "val_accuracy_std": float(np.std(scores)),  # population std, as GridSearchCV's std_test_score
        **{f"fold{i}_accuracy": score for i, score in enumerate(scores)},
        "folds": folds,
        "fit_epochs": epochs,
    }


def train_cv(config: dict[str, Any], *, data: TabularData, max_epochs: int = 1, seed: int = 0,
             folds: int = DEFAULT_FOLDS, standardize: bool = False,
             epochs_cap: int | None = None) -> None:  # fmt: skip
    """The Tune trainable: one cross-validation of ``config``, reported once (as epoch 1 of 1).

    ``max_epochs`` is the experiment's reports per trial (1 here); each fit's epochs come from the config.
    """
    cpus, gpus = trial_resources()
    devices.configure(cpus, gpus)
    result = cross_validate(config, data, folds=folds, seed=seed, standardize=standardize, epochs_cap=epochs_cap)
    tune.report({**result, "epoch": 1, "best_val_accuracy": result["val_accuracy"],
                 "node_id": ray.get_runtime_context().get_node_id()})  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Results in GridSearchCV's terms


def cv_results(trials: list, grid_keys: list[str]) -> list[dict[str, Any]]:
    """One row per grid point, like GridSearchCV's ``cv_results_``: ``param_<key>``, ``params``,
    ``mean_test_score``, ``std_test_score``, ``rank_test_score`` (1 = best) and ``split<i>_test_score``.

    ``trials`` are :class:`rtune_fashion.results.TrialRecord` s; trials without a result (failed) get no
    scores and rank last.
    """
    rows = []
    for trial in trials:
        result = trial.history[-1] if trial.history else {}
        params = {key: trial.config.get(key) for key in grid_keys}
        folds = int(result.get("folds", 0))
        rows.append({
            **{f"param_{key}": value for key, value in params.items()},
            "params": params,
            "mean_test_score": result.get("val_accuracy", float("nan")),
            "std_test_score": result.get("val_accuracy_std", float("nan")),
            **{f"split{i}_test_score": result.get(f"fold{i}_accuracy") for i in range(folds)},
            "state": trial.state,
        })  # fmt: skip
    scores = [row["mean_test_score"] for row in rows]
    order = sorted(range(len(rows)), key=lambda i: -scores[i] if np.isfinite(scores[i]) else np.inf)
    for rank, i in enumerate(order, start=1):
        rows[i]["rank_test_score"] = rank
    return rows


def format_cv_results(rows: list[dict[str, Any]]) -> str:
    """GridSearchCV's usual printout: the best mean score and its params, then mean (std) per grid point."""
    best = min(rows, key=lambda row: row["rank_test_score"])
    lines = [f"Best: {best['mean_test_score']:.6f} using {best['params']}"]
    lines += [f"{row['mean_test_score']:.6f} ({row['std_test_score']:.6f}) with: {row['params']}" for row in rows]
    return "\n".join(lines)


def check_folds(y: np.ndarray, class_names: tuple[str, ...], folds: int) -> None:
    """Refuse more folds than the rarest class has rows (every fold needs every class).

    Raises:
        DataError: naming the class, its count and the largest possible number of folds.
    """
    counts = np.bincount(y, minlength=len(class_names))
    rarest = int(np.argmin(counts))
    if folds > counts[rarest]:
        raise DataError(
            f"--folds {folds} is more than the {counts[rarest]} rows of class {class_names[rarest]!r}: stratified "
            f"folds need every class in every fold. Fix: --folds {int(counts[rarest])} or fewer."
        )


def write_cv_results(experiment_dir: Path, space_name: str) -> tuple[str, Path]:
    """Write ``cv_results.csv`` for a finished cross-validated grid; return GridSearchCV's printout and the path."""
    import pandas as pd

    from rtune_fashion.results import load_experiment
    from rtune_fashion.spaces import get_space

    space = get_space(space_name)
    grid_keys = [key for key, value in space.params.items() if isinstance(value, dict) and "grid_search" in value]
    rows = cv_results(load_experiment(experiment_dir).trials, grid_keys)
    rows.sort(key=lambda row: row["rank_test_score"])
    path = experiment_dir / CV_RESULTS_FILE
    write_atomic(path, pd.DataFrame([{**row, "params": str(row["params"])} for row in rows]).to_csv(index=False))
    return format_cv_results(rows), path
