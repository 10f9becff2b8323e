"""Tune's saved state checked before a resume: a file cut short by a kill during Ray's copy is refused by name."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from rtune_fashion.errors import ExperimentError
from rtune_fashion.tune_state import check_resumable, damaged_state

SESSION = "2026-12-07_17-41-29"


def _whole_state(folder: Path, session: str = SESSION) -> Path:
    """The files Tune writes for one save, whole (their contents do not matter here, only their form)."""
    folder.mkdir(exist_ok=True)
    (folder / f"experiment_state-{session}.json").write_text(json.dumps({"trial_data": [], "runner_data": {}}))
    for name in (f"search_gen_state-{session}.json", f"basic-variant-state-{session}.json",
                 f"searcher-state-{session}.pkl", "tuner.pkl"):  # fmt: skip
        (folder / name).write_bytes(pickle.dumps({"state": list(range(50)), "name": name}))
    return folder


def test_a_whole_state_is_resumable(tmp_path: Path) -> None:
    folder = _whole_state(tmp_path / "whole")
    assert damaged_state(folder) is None
    check_resumable(folder, str(folder))  # does not raise


def test_a_file_cut_to_nothing_by_a_kill_is_refused_with_the_fix_and_nothing_changed(tmp_path: Path) -> None:
    folder = _whole_state(tmp_path / "killed")
    (folder / f"search_gen_state-{SESSION}.json").write_bytes(b"")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ExperimentError) as caught:
        check_resumable(folder, "s3://bucket/killed")
    assert str(caught.value) == (
        f"Cannot resume s3://bucket/killed: Tune's saved state search_gen_state-{SESSION}.json is damaged (0 bytes). "
        "Ray copies its state to the storage in place, and the search was stopped during a copy (SIGKILL, a crash "
        "or a full disk); Tune would start the search over on top of it. Nothing was changed. Fix: start the "
        "search again under another --name (pima_grid.py: another --storage); rtune report s3://bucket/killed "
        "shows the trials that finished.")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("name", [f"experiment_state-{SESSION}.json", f"basic-variant-state-{SESSION}.json",
                                  f"searcher-state-{SESSION}.pkl", "tuner.pkl"])
def test_a_file_cut_short_is_named(tmp_path: Path, name: str) -> None:
    folder = _whole_state(tmp_path / "cut")
    whole = (folder / name).read_bytes()
    (folder / name).write_bytes(whole[: len(whole) // 2])
    path, why = damaged_state(folder)
    assert path == folder / name
    assert why.startswith(f"{len(whole) // 2:,} bytes, cut short or corrupted (")


def test_the_newest_save_is_the_one_checked(tmp_path: Path) -> None:
    """Tune reads the newest file of each kind (by name): a resumed search keeps its first save's files too."""
    folder = _whole_state(_whole_state(tmp_path / "resumed"), session="2026-12-07_18-00-00")
    (folder / f"searcher-state-{SESSION}.pkl").write_bytes(b"")  # the older save's: not read
    assert damaged_state(folder) is None
    (folder / "searcher-state-2026-12-07_18-00-00.pkl").write_bytes(b"\x80\x05\x95")
    assert damaged_state(folder) == (folder / "searcher-state-2026-12-07_18-00-00.pkl",
                                     "3 bytes, cut short or corrupted (not enough data in stream to read uint8)")


def test_a_damaged_experiment_state_is_refused_without_sending_to_rtune_report(tmp_path: Path) -> None:
    """rtune report reads the experiment's state itself: the message does not offer it when that is the file."""
    folder = _whole_state(tmp_path / "cut")
    (folder / f"experiment_state-{SESSION}.json").write_text('{"trial_data": [')
    with pytest.raises(ExperimentError) as caught:
        check_resumable(folder, str(folder))
    message = str(caught.value)
    assert message.startswith(f"Cannot resume {folder}: Tune's saved state experiment_state-{SESSION}.json is "
                              "damaged (16 bytes, cut short or corrupted (")  # fmt: skip
    assert message.endswith("Fix: start the search again under another --name (pima_grid.py: another --storage).")
