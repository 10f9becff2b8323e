"""The pictures of a report, drawn with matplotlib's object API (no pyplot state, no display needed).

Each function draws one figure from data it is given and saves it as a PNG at ``path``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from rtune_fashion import config as cfg
from rtune_fashion.importance import Importance, is_numeric
from rtune_fashion.results import FAILED_STATES, METRIC, ExperimentRecord, TrialRecord

DPI = 110


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    return path


def plot_anytime(curves: Mapping[str, Any], path: Path, title: str) -> Path:
    """Best-so-far val accuracy against wall-clock time and against epochs consumed, one line per curve.

    ``curves`` maps a label to an object with ``seconds``, ``epochs`` and ``best`` sequences (see
    :func:`rtune_fashion.report.anytime_curve`).
    """
    figure = Figure(figsize=(11, 4.2))
    by_time, by_epochs = figure.subplots(1, 2, sharey=True)
    for label, curve in curves.items():
        if not curve.best:
            continue
        minutes = [s / 60 for s in curve.seconds]
        by_time.step(minutes, curve.best, where="post", label=label, marker=".", markersize=4)
        by_epochs.step(curve.epochs, curve.best, where="post", label=label, marker=".", markersize=4)
    by_time.set_xlabel("wall-clock time since the start (minutes)")
    by_epochs.set_xlabel("epochs consumed by all trials")
    by_time.set_ylabel(f"best {METRIC} so far")
    for axes in (by_time, by_epochs):
        axes.grid(alpha=0.3)
    by_epochs.legend(loc="lower right", fontsize="small")
    figure.suptitle(title)
    return _save(figure, path)


def plot_learning_curves(record: ExperimentRecord, path: Path, top: int = 5) -> Path:
    """Val accuracy per epoch of the ``top`` best trials (left) and of the trials stopped early (right)."""
    figure = Figure(figsize=(11, 4.2))
    best_axes, stopped_axes = figure.subplots(1, 2, sharey=True)
    ranked = [t for t in record.trials if t.state not in FAILED_STATES and t.history][:top]
    stopped = [t for t in record.trials if t.state == "STOPPED_EARLY"]
    _curves(best_axes, ranked, legend=True)
    best_axes.set_title(f"the {len(ranked)} best trials")
    _curves(stopped_axes, stopped, legend=len(stopped) <= 10)
    stopped_axes.set_title(f"the {len(stopped)} trials stopped early" if stopped else "no trial was stopped early")
    best_axes.set_ylabel(METRIC)
    for axes in (best_axes, stopped_axes):
        axes.set_xlim(0.5, max(record.max_epochs, max((t.epochs for t in record.trials), default=1)) + 0.5)
    figure.suptitle(f"Learning curves: {record.directory.name}")
    return _save(figure, path)


def _curves(axes: Any, trials: Sequence[TrialRecord], *, legend: bool) -> None:
    for trial in trials:
        epochs = [row["epoch"] for row in trial.history if METRIC in row]
        values = [row[METRIC] for row in trial.history if METRIC in row]
        axes.plot(epochs, values, marker="o", markersize=3, label=f"{trial.trial_id} ({trial.best_val_accuracy:.4f})")
    axes.set_xlabel("epoch")
    axes.grid(alpha=0.3)
    axes.xaxis.get_major_locator().set_params(integer=True)
    if legend and trials:
        axes.legend(fontsize="small", loc="lower right")


def _axis_positions(key: str, values: list[Any]) -> tuple[list[float | None], list[float], list[str], bool]:
    """Values of one hyperparameter mapped to [0, 1], with tick positions and labels.

    Numbers get a linear scale (log for learning rates); anything else (strings, booleans, None) gets
    evenly spaced categories. A missing value (``...``: a layer the trial does not have) maps to None.
    """
    present = [v for v in values if v is not ...]
    if is_numeric(present):
        low, high = min(present), max(present)
        log = cfg.is_log_scale(key) and low > 0
        scale = math.log10 if log else float
        span = (scale(high) - scale(low)) or 1.0

        def position(v: Any) -> float | None:
            return None if v is ... else (scale(v) - scale(low)) / span

        ticks = sorted(set(present))
        if len(ticks) > 5:
            ticks = [low, high]
        return [position(v) for v in values], [position(t) for t in ticks], [_tick(t) for t in ticks], log
    categories = sorted({repr(v) for v in present})
    spacing = 1 / max(len(categories) - 1, 1)
    index = {c: i * spacing for i, c in enumerate(categories)}
    positions = [None if v is ... else index[repr(v)] for v in values]
    return positions, list(index.values()), [c.strip("'") for c in categories], False


def _tick(value: float) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def plot_parallel_coordinates(record: ExperimentRecord, path: Path, keys: Sequence[str]) -> Path:
    """One vertical axis per hyperparameter in ``keys``, one line per trial coloured by its best val
    accuracy; diverged and errored trials are dashed red lines."""
    trials = [t for t in record.trials if t.history or t.state in FAILED_STATES]
    configs = [t.layer_config for t in trials]
    figure = Figure(figsize=(min(16, max(8, 0.9 * len(keys) + 2)), 6))
    axes = figure.subplots()
    scores = sorted(t.best_val_accuracy for t in trials
                    if t.state not in FAILED_STATES and math.isfinite(t.best_val_accuracy))  # fmt: skip
    # The colours span the better three quarters of the trials, so that one hopeless trial does not
    # squeeze all the others into one colour; worse trials share the darkest colour.
    norm = Normalize(scores[len(scores) // 4] if scores else 0, scores[-1] if scores else 1)
    cmap = colormaps["viridis"]
    columns = [_axis_positions(key, [c.get(key, ...) for c in configs]) for key in keys]
    # Best trials drawn last, on top.
    order = sorted(range(len(trials)), key=lambda i: trials[i].best_val_accuracy if math.isfinite(
        trials[i].best_val_accuracy) else -math.inf)  # fmt: skip
    for i in order:
        trial = trials[i]
        points = [(x, column[0][i]) for x, column in enumerate(columns) if column[0][i] is not None]
        if not points:
            continue
        failed = trial.state in FAILED_STATES or not math.isfinite(trial.best_val_accuracy)
        color = "tab:red" if failed else cmap(norm(trial.best_val_accuracy, clip=True))
        axes.plot(*zip(*points, strict=True), color=color, linestyle="--" if failed else "-",
                  alpha=0.9, linewidth=1.6 if not failed else 1.0, marker="o", markersize=3)  # fmt: skip
    for x, (_, ticks, labels, log) in enumerate(columns):
        axes.axvline(x, color="black", linewidth=0.8)
        for tick, label in zip(ticks, labels, strict=True):
            axes.annotate(label, (x, tick), xytext=(3, 0), textcoords="offset points", fontsize=7, va="center")
        if log:
            axes.annotate("log", (x, -0.08), ha="center", fontsize=7, color="gray")
    axes.set_xticks(range(len(keys)), keys, rotation=30, ha="right", fontsize=8)
    axes.set_yticks([])
    axes.set_xlim(-0.3, len(keys) - 0.3)
    axes.set_ylim(-0.12, 1.05)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    colorbar = figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, pad=0.02, extend="min")
    colorbar.set_label(f"best {METRIC}")
    axes.set_title(f"Hyperparameters of {len(trials)} trials (red dashed: diverged or errored)")
    return _save(figure, path)


def plot_importance(importance: Importance, path: Path) -> Path:
    """Horizontal bars of the hyperparameter importances, largest on top."""
    names = list(importance.values)[::-1]
    values = [importance.values[name] for name in names]
    figure = Figure(figsize=(7, 0.4 * len(names) + 1.6))
    axes = figure.subplots()
    axes.barh(names, values, color="tab:blue")
    for y, value in enumerate(values):
        axes.annotate(f"{value:.2f}", (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    axes.set_xlim(0, max(values, default=1) * 1.15 or 1)
    axes.set_xlabel("share of the variance of val accuracy explained")
    axes.set_title(f"Hyperparameter importance: fANOVA over {importance.num_trials} trials at "
                   f"{importance.budget_epochs} epoch(s)", fontsize=10)  # fmt: skip
    return _save(figure, path)
