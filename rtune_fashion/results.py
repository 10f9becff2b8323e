"""Read an experiment directory, finished or still running: one record per trial, with every epoch.

The trial list and Tune's trial statuses come from Tune's own experiment snapshot (read with the public
:class:`ray.tune.ExperimentAnalysis`, saved every second while a search runs); each trial's epochs come
from its ``result.json`` (one JSON line per report; a half-written last line of a running trial is
skipped). The experiment's own files (``settings.json``, ``summary.json``) say what was asked and
whether the search is over. Nothing here needs a running Ray.

Our trial states:

* ``FINISHED``: ran every epoch; ``STOPPED_EARLY``: ended by the scheduler (ASHA, or BOHB's pause
  that is never resumed);
* ``DIVERGED``: its loss became NaN/inf (:class:`NonFiniteLossError`); ``ERROR``: failed for another
  reason after its retries;
* while a search runs (or after it was interrupted): ``RUNNING``, ``PENDING``, ``PAUSED``.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtune_fashion import config as cfg
from rtune_fashion.errors import ExperimentError, ModelConfigError, NonFiniteLossError

SETTINGS_FILE = "settings.json"
SUMMARY_FILE = "summary.json"
TRIALS_FILE = "trials.csv"
METRIC = "val_accuracy"
MODE = "max"  # of METRIC, which every trial reports each epoch
OK_STATES = ("FINISHED", "STOPPED_EARLY")
FAILED_STATES = ("DIVERGED", "ERROR")
LIVE_STATES = ("RUNNING", "PENDING", "PAUSED")
STATES = (*OK_STATES, *FAILED_STATES, *LIVE_STATES)
STATE_LABELS = {"FINISHED": "finished", "STOPPED_EARLY": "stopped early", "DIVERGED": "diverged", "ERROR": "errored",
                "RUNNING": "running", "PENDING": "pending", "PAUSED": "paused"}  # fmt: skip
_DIVERGED_PREFIX = f"{NonFiniteLossError.__module__}.{NonFiniteLossError.__name__}"


@dataclass
class TrialRecord:
    """One trial: its config, state and reported epochs (dicts of Tune's result rows, in order)."""

    trial_id: str
    state: str
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def epochs(self) -> int:
        return max((int(row["epoch"]) for row in self.history if "epoch" in row), default=0)

    @property
    def best_val_accuracy(self) -> float:
        """The highest val accuracy of any epoch (NaN before the first report)."""
        values = [float(row[METRIC]) for row in self.history if _finite(row.get(METRIC))]
        return max(values, default=math.nan)

    @property
    def best_epoch(self) -> int:
        """The first epoch that reached :attr:`best_val_accuracy` (0 before the first report)."""
        best = self.best_val_accuracy
        return next((int(row["epoch"]) for row in self.history if _finite(row.get(METRIC))
                     and float(row[METRIC]) == best and "epoch" in row), 0)  # fmt: skip

    @property
    def last_val_accuracy(self) -> float:
        return float(self.history[-1].get(METRIC, math.nan)) if self.history else math.nan

    @property
    def nodes(self) -> list[str]:
        """The Ray node ids that ran this trial's epochs, in order of first use (more than one: it moved)."""
        return list(dict.fromkeys(str(row["node_id"]) for row in self.history if row.get("node_id")))

    @property
    def effective_config(self) -> dict[str, Any]:
        """The config as the model is built from it, for people; the raw config when it does not validate."""
        return self._effective(collapse_layers=True)

    @property
    def layer_config(self) -> dict[str, Any]:
        """The effective config with every per-layer value under its own key, for comparing trials."""
        return self._effective(collapse_layers=False)

    def _effective(self, *, collapse_layers: bool) -> dict[str, Any]:
        try:
            return cfg.effective(self.config, collapse_layers=collapse_layers)
        except ModelConfigError:  # a custom trainable's config need not be ours
            return dict(self.config)


@dataclass
class ExperimentRecord:
    """An experiment directory as read now; ``trials`` are ranked by best val accuracy, best first."""

    directory: Path
    settings: dict[str, Any]
    trials: list[TrialRecord]
    search_done: bool
    started_at: float | None  # time.time() when the run started; None for experiments from before it was kept

    @property
    def max_epochs(self) -> int:
        return int(self.settings.get("max_epochs") or 0)

    def counts(self) -> dict[str, int]:
        """How many trials are in each state (every state listed, zeros included)."""
        return {state: sum(t.state == state for t in self.trials) for state in STATES}

    def ranked(self) -> list[TrialRecord]:
        """The trials that ended normally (or are still going) and reported, best first; never a diverged or
        failed one."""
        return [t for t in self.trials if t.state not in FAILED_STATES and _finite(t.best_val_accuracy)]

    def best(self) -> TrialRecord | None:
        """The first of :meth:`ranked`, or None."""
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def start_time(self) -> float | None:
        """When the run started: as stored, else estimated from the first epoch reported."""
        if self.started_at is not None:
            return self.started_at
        starts = [float(t.history[0]["timestamp"]) - float(t.history[0].get("time_this_iter_s", 0))
                  for t in self.trials if t.history and "timestamp" in t.history[0]]  # fmt: skip
        return min(starts, default=None)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def read_history(trial_dir: Path) -> list[dict[str, Any]]:
    """The result rows of one trial (``result.json``), without the config repeated in each row."""
    path = trial_dir / "result.json"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line a running trial is writing
        row.pop("config", None)
        rows.append(row)
    return rows


def error_line(path: str | Path) -> str:
    """The last line of a trial's error.txt (Ray ends it with the original exception type and message)."""
    path = Path(path)
    if not path.is_file():
        return ""
    lines = [line for line in path.read_text(errors="replace").strip().splitlines() if line.strip()]
    return lines[-1].strip()[:500] if lines else ""


def is_divergence(error: str) -> bool:
    """Whether an error line (see :func:`error_line`) is a trial's NaN/inf loss."""
    return error.startswith(_DIVERGED_PREFIX)


def trial_state(tune_status: str, error: str, epochs: int, max_epochs: int, search_done: bool) -> str:
    """Our state for a trial from Tune's status (see the module docstring)."""
    if tune_status == "ERROR":
        return "DIVERGED" if is_divergence(error) else "ERROR"
    if tune_status == "TERMINATED" or (tune_status == "PAUSED" and search_done):
        return "FINISHED" if epochs >= max_epochs else "STOPPED_EARLY"
    return tune_status if tune_status in LIVE_STATES else "PENDING"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content, or None if it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def load_experiment(directory: str | Path, *, search_done: bool | None = None) -> ExperimentRecord:
    """Read an experiment directory (``<storage>/<name>``) as it is now.

    Args:
        search_done: whether the search has ended; None = it has if ``summary.json`` exists (a paused
            BOHB trial of a finished search was stopped early; of a running search it may come back).

    Raises:
        ExperimentError: the directory does not exist, or holds no Tune experiment yet.
    """
    from ray.tune import ExperimentAnalysis

    from rtune_fashion.quiet import quiet_tune_driver

    quiet_tune_driver()
    directory = Path(directory).expanduser().resolve()
    if not directory.is_dir():
        raise ExperimentError(f"{directory} is not a directory. Fix: give an experiment directory <storage>/<name>.")
    stored = read_json(directory / SETTINGS_FILE) or {}
    settings = stored.get("settings", {})
    if search_done is None:
        search_done = (directory / SUMMARY_FILE).exists()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = ExperimentAnalysis(str(directory))
    except (ValueError, FileNotFoundError) as error:
        raise ExperimentError(
            f"{directory} holds no Ray Tune experiment yet (no experiment_state-*.json). Fix: give the "
            "directory <storage>/<name> of an experiment, or wait until its first trial has started."
        ) from error
    trials = []
    for trial in analysis.trials:
        trial_dir = directory / Path(trial.path).name  # the directory may have been moved or copied
        history = read_history(trial_dir)
        error = error_line(trial_dir / "error.txt") if trial.status == "ERROR" else ""
        record = TrialRecord(str(trial.trial_id), "", cfg.normalize(trial.config or {}), history, error)
        max_epochs = int(settings.get("max_epochs") or record.epochs)
        record.state = trial_state(trial.status, error, record.epochs, max_epochs, search_done)
        trials.append(record)
    trials.sort(key=lambda t: -t.best_val_accuracy if _finite(t.best_val_accuracy) else math.inf)
    return ExperimentRecord(directory, settings, trials, search_done, stored.get("started_at"))


def trials_table(record: ExperimentRecord) -> list[dict[str, Any]]:
    """One flat row per trial (best first): id, state, epochs, val accuracies, error, the nodes that ran it
    (short ids), ``config/<key>``."""
    return [
        {
            "trial_id": t.trial_id,
            "state": t.state,
            "epochs": t.epochs,
            "best_val_accuracy": t.best_val_accuracy,
            "last_val_accuracy": t.last_val_accuracy,
            "error": t.error,
            "nodes": " ".join(t.nodes),  # whole ids: the fake provider's differ only at the end
            **{f"config/{key}": value for key, value in t.config.items()},
        }
        for t in record.trials
    ]


def grid_repeats(record: ExperimentRecord) -> list[dict[str, Any]]:
    """For a grid run several times (``--num-samples N``: each trial's config has a ``repeat``), one row per
    grid point, best mean first: the keys that vary between points, how many repeats reported, and the mean
    and (population) standard deviation of their best val accuracies. Empty for any other experiment."""
    groups: dict[str, tuple[dict[str, Any], list[float]]] = {}
    for trial in record.trials:
        if "repeat" not in trial.config or not _finite(trial.best_val_accuracy):
            continue
        point = {key: value for key, value in trial.config.items() if key != "repeat"}
        key = json.dumps(point, sort_keys=True, default=str)
        groups.setdefault(key, (point, []))[1].append(trial.best_val_accuracy)
    points = [point for point, _ in groups.values()]
    varying = sorted({key for point in points for key in point if any(p.get(key) != point.get(key) for p in points)})
    rows = []
    for point, scores in groups.values():
        mean = sum(scores) / len(scores)
        std = math.sqrt(sum((score - mean) ** 2 for score in scores) / len(scores))
        rows.append({"point": {key: point.get(key) for key in varying}, "repeats": len(scores), "mean": mean,
                     "std": std})  # fmt: skip
    return sorted(rows, key=lambda row: -row["mean"])


def final_model_line(final: dict[str, Any], best_trial_id: str | None = None) -> str:
    """One line on the final model of summary.json: how it was made and its accuracies (and whose config,
    when it is not the best trial's, ``best_trial_id``)."""
    images = f" on {final['train_size']} images" if final.get("train_size") else ""
    if best_trial_id and final.get("trial_id") not in (None, best_trial_id):
        images += f" (trial {final['trial_id']}'s config, not the best trial's: it could be retrained on all the data)"
    if final.get("members", 1) > 1 and final.get("member_seeds"):
        epochs = final.get("member_epochs") or []
        shorter = f", for {epochs} epochs" if len(set(epochs)) > 1 else ""
        images += f", {final['members']} times (an ensemble of seeds {final['member_seeds']}{shorter})"
    how = (f"Retrained for {final['epochs']} epochs{images}" if final.get("source", "retrained") == "retrained"
           else f"The best trial's checkpoint (epoch {final['epochs']}; {final.get('why', '')})")  # fmt: skip
    train = final.get("train_accuracy")  # of one training: not shown beside an ensemble's val and test
    shown = isinstance(train, int | float) and math.isfinite(train) and final.get("members", 1) == 1
    train_text = f"train {train:.4f}, " if shown else ""
    return f"{how}: {train_text}val {final['val_accuracy']:.4f}, test {final['test_accuracy']:.4f}"


def model_shape(summary: dict[str, Any]) -> tuple[tuple[int, ...], int] | tuple[()]:
    """(input shape, classes) of the data in summary.json, for a layer table; () before issue 16 (Fashion-MNIST,
    the builders' defaults)."""
    data = summary.get("data") or {}
    if not data.get("input_shape"):
        return ()
    return tuple(data["input_shape"]), len(data["class_names"])


def confusion_lines(final: dict[str, Any]) -> list[str]:
    """The final model's confusion matrix on the test split as a table: a row per true class (its name, its
    recall), a column per predicted class; no lines when summary.json has none (before issue 16)."""
    matrix = final.get("confusion_matrix")
    if not matrix:
        return []
    names = [str(n) for n in final.get("class_names") or range(len(matrix))]
    width = max(6, *(len(n) for n in names), *(len(str(v)) for row in matrix for v in row))
    lines = [f"Test confusion matrix (rows: true class, columns: predicted; {sum(map(sum, matrix))} examples):",
             " ".join([" " * width, *(n.rjust(width) for n in names), "recall".rjust(7)])]  # fmt: skip
    for i, (name, row) in enumerate(zip(names, matrix, strict=True)):
        total = sum(row)
        recall = f"{row[i] / total:.3f}" if total else "-"
        lines.append(" ".join([name.ljust(width), *(str(v).rjust(width) for v in row), recall.rjust(7)]))
    return lines


def write_trials_csv(record: ExperimentRecord) -> Path:
    """Write ``trials.csv`` into the experiment directory (atomically) and return its path."""
    import pandas as pd

    from rtune_fashion.files import write_atomic

    path = record.directory / TRIALS_FILE
    # convert_dtypes: an integer key some trials leave out (units_3 at two layers) stays 512, not 512.0
    write_atomic(path, pd.DataFrame(trials_table(record)).convert_dtypes().to_csv(index=False))
    return path
