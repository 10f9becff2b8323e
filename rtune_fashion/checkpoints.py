"""Epoch checkpoints: which ones a search keeps, and which one a resumed trial continues from.

With ``CheckpointConfig(num_to_keep=1)`` Ray deletes a trial's previous checkpoint as soon as the next one is
registered, so it must save the whole experiment state (every trial's state, the searcher's) after every
checkpoint of every trial, waiting for the previous upload: a cost per epoch that grows with the number of
trials (``scripts/bench_state_sync.py``; docs/MEASURED.md). rtune lets Ray keep every checkpoint (Ray then
saves its state once a second, ``TUNE_GLOBAL_CHECKPOINT_S``, whatever the number of epochs) and deletes the
superseded ones itself:

* :class:`CheckpointPruner`, a Tune callback in the driver, deletes a checkpoint once a newer one of the same
  trial has been registered for :data:`RETAIN_S` seconds (by then Tune has saved its state many times, so no
  saved state names it any more), and at the experiment's end (after Tune's last save) every checkpoint but
  each trial's latest. Each deletion is one filesystem call: nothing here grows with the number of trials
  until the end.
* :func:`resumable` is what a resumed trial continues from: the checkpoint Tune's saved state names, or, were
  that one deleted after all (a state save that lagged more than RETAIN_S behind), the trial's newest one.

After a SIGKILL a trial therefore continues from the checkpoint of Tune's last state save (at most a second
old): it repeats the epochs it finished in that second (one at most when an epoch takes longer) and the one
it was in.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Callable
from typing import Any

from ray import tune

RETAIN_S = 30.0  # how long a superseded checkpoint stays: far beyond Tune's 1-s state saves
CHECKPOINT_PREFIX = "checkpoint_"  # Ray's names: checkpoint_000007 (zero-padded, so names sort as numbers)


def _siblings(checkpoint: tune.Checkpoint) -> list[str]:
    """Paths of every checkpoint folder of ``checkpoint``'s trial (its folder's ``checkpoint_*``), oldest first."""
    import pyarrow.fs

    parent = checkpoint.path.rstrip("/").rsplit("/", 1)[0]
    selector = pyarrow.fs.FileSelector(parent, allow_not_found=True)
    found = checkpoint.filesystem.get_file_info(selector)
    return sorted(info.path for info in found if info.type == pyarrow.fs.FileType.Directory
                  and info.base_name.startswith(CHECKPOINT_PREFIX))  # fmt: skip


def _delete(path: str, filesystem: Any) -> None:
    with contextlib.suppress(OSError):  # already gone (a second end after a resume, a user's cleanup): nothing lost
        filesystem.delete_dir(path)


def resumable(checkpoint: tune.Checkpoint) -> tune.Checkpoint:
    """``checkpoint`` if it still exists, else the newest checkpoint of its trial (``checkpoint`` when none)."""
    import pyarrow.fs

    if checkpoint.filesystem.get_file_info(checkpoint.path).type != pyarrow.fs.FileType.NotFound:
        return checkpoint
    newest = _siblings(checkpoint)[-1:]
    return tune.Checkpoint(newest[0], filesystem=checkpoint.filesystem) if newest else checkpoint


class CheckpointPruner(tune.Callback):
    """Deletes superseded checkpoints :data:`RETAIN_S` seconds after their successor, and all but each trial's
    latest at the experiment's end (see the module doc)."""

    def __init__(self, retain_s: float = RETAIN_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._retain_s = retain_s
        self._clock = clock
        self._latest: dict[str, tune.Checkpoint] = {}
        self._superseded: collections.deque[tuple[float, tune.Checkpoint]] = collections.deque()  # oldest first

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: tune.Checkpoint, **info: Any) -> None:
        now = self._clock()
        previous = self._latest.get(trial.trial_id)
        if previous is not None and previous.path != checkpoint.path:
            self._superseded.append((now, previous))
        self._latest[trial.trial_id] = checkpoint
        while self._superseded and self._superseded[0][0] <= now - self._retain_s:
            superseded = self._superseded.popleft()[1]
            _delete(superseded.path, superseded.filesystem)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Tune has saved its final state, naming each trial's latest checkpoint: the others can go (also those
        of a run this one resumed, which this callback never saw)."""
        self._superseded.clear()
        for trial in trials:
            latest = trial.checkpoint
            if latest is None:
                continue
            for path in _siblings(latest):
                if path.rstrip("/") != latest.path.rstrip("/"):
                    _delete(path, latest.filesystem)
