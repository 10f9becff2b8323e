"""Is Tune's saved state of an experiment whole? Checked before a resume, so that a damaged file is refused
with its name and the fix, not half-restored.

Ray writes each save in its own staging folder and then copies the files to the storage path in place
(``pyarrow.fs.copy_files``), every second. A driver killed during that copy leaves the file it was copying
cut short (found as a 0-byte ``search_gen_state-*.json``). ``Tuner.restore`` then logs "Failed to restore the
run state", starts the search over (trials with empty configs) and saves a new state over the experiment.

Not detected: a kill between two files' copies leaves each file whole but from two saves (the experiment's
state from one, the searcher's from the one before), which Tune restores as it is.
"""

from __future__ import annotations

import json
import pickletools
from pathlib import Path

from rtune_fashion.errors import ExperimentError

# What Tune reads on a restore: the newest file of each kind (its names sort by time) and how each is written.
JSON_STATES = ("experiment_state-*.json",)
PICKLED_STATES = ("search_gen_state-*.json", "basic-variant-state-*.json", "searcher-state-*.pkl",
                  "callback-states-*.pkl", "tuner.pkl")  # search_gen_ and basic-variant- are pickles too


def damaged_state(experiment_dir: Path) -> tuple[Path, str] | None:
    """The first of the files Tune would restore from that is cut short or unreadable, with why; None when all
    are whole. Pickles are walked opcode by opcode (nothing in them is run or imported)."""
    for pattern in (*JSON_STATES, *PICKLED_STATES):
        found = sorted(experiment_dir.glob(pattern))
        if not found:
            continue
        newest = found[-1]  # as Tune picks it
        try:
            content = newest.read_bytes()
        except OSError as error:
            return newest, f"unreadable: {error}"
        if not content:
            return newest, "0 bytes"
        try:
            if pattern in JSON_STATES:
                json.loads(content)
            else:
                for _ in pickletools.genops(content):  # stops at the pickle's STOP; raises if cut before it
                    pass
        except ValueError as error:  # json.JSONDecodeError and a pickle's truncation are ValueErrors
            return newest, f"{len(content):,} bytes, cut short or corrupted ({error})"
    return None


def check_resumable(experiment_dir: Path, shown_as: str) -> None:
    """Raise ExperimentError, naming the damaged file and the fix, when Tune's saved state in ``experiment_dir``
    (shown to the user as ``shown_as``) is not whole. Nothing is changed either way."""
    found = damaged_state(experiment_dir)
    if found is None:
        return
    path, why = found
    # rtune report reads the experiment's state: it cannot show a folder whose state is the damaged file.
    report = "" if path.match(JSON_STATES[0]) else f"; rtune report {shown_as} shows the trials that finished"
    raise ExperimentError(
        f"Cannot resume {shown_as}: Tune's saved state {path.name} is damaged ({why}). Ray copies its state to the "
        "storage in place, and the search was stopped during a copy (SIGKILL, a crash or a full disk); Tune would "
        "start the search over on top of it. Nothing was changed. Fix: start the search again under another "
        f"--name (pima_grid.py: another --storage){report}."
    )
