"""Live progress of a search, one short line at a time (Tune's own wide tables are switched off).

Every ``interval_s`` seconds, and whenever a trial ends, :class:`ProgressPrinter` prints a line like::

    [  3:05] 2 running, 1 pending, 3 finished, 4 stopped early, 0 diverged, 0 errored
             | best val_accuracy 0.8871 (trial d3da3a2e, epoch 7)

(on one line), and one line per trial that ends, with its epochs and best val accuracy or its error.
A diverged or failed trial never counts as the best so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback

from rtune_fashion.results import METRIC, error_line, is_divergence

DEFAULT_INTERVAL_S = 30.0


def format_elapsed(seconds: float) -> str:
    """``h:mm:ss`` from one hour on, ``m:ss`` before."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:3d}:{secs:02d}"


class ProgressPrinter(Callback):
    """A Tune callback that echoes the state of the search in short lines.

    Args:
        echo: where lines go (``print`` in the CLI; a list's ``append`` in tests).
        max_epochs: a trial that ends before this many epochs was stopped early.
        interval_s: seconds between status lines while nothing ends.
        deadline: when the whole run must end (``time.time()``); status lines then end with the time left.
    """

    def __init__(self, echo: Callable[[str], None], max_epochs: int, interval_s: float = DEFAULT_INTERVAL_S,
                 deadline: float | None = None):  # fmt: skip
        self._echo = echo
        self._max_epochs = max_epochs
        self._interval_s = interval_s
        self._deadline = deadline
        self._reset()

    def _reset(self) -> None:
        self._started = time.monotonic()
        self._last_status = -math.inf
        self._last_text = ""
        self._best: dict[str, tuple[float, int]] = {}  # trial id -> (best val accuracy, its epoch)
        self._failed: set[str] = set()
        self._ended: dict[str, str] = {}  # trial id -> finished | stopped early | diverged | errored

    # Tune pickles the callbacks into tuner.pkl and unpickles them to resume a search: the printer then
    # prints to stdout (the echo target need not pickle), with its clock and counts started anew.
    def __getstate__(self) -> dict[str, Any]:
        return {"_max_epochs": self._max_epochs, "_interval_s": self._interval_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._echo = print
        self._deadline = None  # a resumed run's deadline is not this one's
        self._reset()

    # -- Tune's hooks ------------------------------------------------------------------------------

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        value = result.get(METRIC)
        if isinstance(value, int | float) and math.isfinite(value):
            best, _ = self._best.get(trial.trial_id, (-math.inf, 0))
            if value > best:
                self._best[trial.trial_id] = (float(value), int(result.get("epoch", 0)))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        epochs = int((trial.last_result or {}).get("epoch", 0))
        how = "finished" if epochs >= self._max_epochs else "stopped early"
        self._ended[trial.trial_id] = how
        best = self._best.get(trial.trial_id)
        accuracy = f", best {METRIC} {best[0]:.4f}" if best else ""
        self._line(f"trial {trial.trial_id} {how} after {epochs} epoch(s){accuracy}")
        self._status(trials)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(f"trial {trial.trial_id} failed, retrying from its last checkpoint: {self._error(trial)}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = self._error(trial)
        how = "diverged" if is_divergence(error) else "errored"
        self._ended[trial.trial_id] = how
        self._failed.add(trial.trial_id)
        self._line(f"trial {trial.trial_id} {how}: {error}")
        self._status(trials)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self._last_status >= self._interval_s:
            self._status(trials)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.status_line(trials) != self._last_text:
            self._status(trials)

    # -- Lines -------------------------------------------------------------------------------------

    def status_line(self, trials: list) -> str:
        """The counts of trials by state and the best so far."""
        counts = {"running": 0, "pending": 0, "paused": 0, "finished": 0, "stopped early": 0,
                  "diverged": 0, "errored": 0}  # fmt: skip
        for trial in trials:
            ended = self._ended.get(trial.trial_id)
            if ended is not None:
                counts[ended] += 1
            elif trial.status in ("RUNNING", "PENDING", "PAUSED"):
                counts[trial.status.lower()] += 1
            elif trial.status == "TERMINATED":  # ended before this printer saw it (a resumed search)
                epochs = int((trial.last_result or {}).get("epoch", 0))
                counts["finished" if epochs >= self._max_epochs else "stopped early"] += 1
            elif trial.status == "ERROR":
                counts["errored"] += 1
        shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n or state not in ("paused",))
        candidates = {tid: best for tid, best in self._best.items() if tid not in self._failed}
        if candidates:
            trial_id, (value, epoch) = max(candidates.items(), key=lambda item: item[1][0])
            return f"{shown} | best {METRIC} {value:.4f} (trial {trial_id}, epoch {epoch})"
        return f"{shown} | no {METRIC} reported yet"

    def _status(self, trials: list) -> None:
        self._last_status = time.monotonic()
        self._last_text = self.status_line(trials)
        left = ""
        if self._deadline is not None:
            left = f" | {format_elapsed(max(0.0, self._deadline - time.time())).strip()} left"
        self._line(self._last_text + left)

    def _line(self, text: str) -> None:
        self._echo(f"[{format_elapsed(time.monotonic() - self._started)}] {text}")

    @staticmethod
    def _error(trial: Any) -> str:
        try:
            return error_line(trial.error_file) if trial.error_file else "no error file"
        except Exception:  # the error file's location needs a live Ray session; the line is not worth a crash
            return "see the trial's error.txt"
