"""Which checkpoints a search keeps and which one a resumed trial continues from (rtune_fashion.checkpoints), on
real folders through Ray's own Checkpoint and Trial objects; the whole path (a search killed and resumed, one
checkpoint per trial at the end) is in test_experiments.py::test_killed_search_resumes_without_repeating_work."""

from __future__ import annotations

from pathlib import Path

from ray import tune
from ray.tune.experiment import Trial

from rtune_fashion.checkpoints import CheckpointPruner, resumable


def _checkpoint(trial_dir: Path, index: int) -> tune.Checkpoint:
    folder = trial_dir / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(f'{{"epoch": {index + 1}}}')
    return tune.Checkpoint(str(folder))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_superseded_checkpoint_goes_retain_s_after_its_successor_and_the_latest_stays(tmp_path: Path) -> None:
    clock = Clock()
    pruner = CheckpointPruner(retain_s=30, clock=clock)
    first, second = Trial("f", trial_id="first", stub=True), Trial("f", trial_id="second", stub=True)
    a0 = _checkpoint(tmp_path / "a", 0)
    pruner.on_checkpoint(iteration=1, trials=[], trial=first, checkpoint=a0)
    clock.now += 5
    a1 = _checkpoint(tmp_path / "a", 1)
    pruner.on_checkpoint(iteration=2, trials=[], trial=first, checkpoint=a1)  # a0 superseded at 105
    clock.now += 29
    pruner.on_checkpoint(iteration=3, trials=[], trial=second, checkpoint=_checkpoint(tmp_path / "b", 0))
    assert Path(a0.path).exists()  # 29 s after its successor: a late state save may still name it
    clock.now += 1
    pruner.on_checkpoint(iteration=4, trials=[], trial=second, checkpoint=_checkpoint(tmp_path / "b", 1))
    assert not Path(a0.path).exists() and Path(a1.path).exists()  # another trial's checkpoint prunes it too
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["checkpoint_000000", "checkpoint_000001"]


def test_a_resumed_trial_continues_from_the_named_checkpoint_or_else_its_newest(tmp_path: Path) -> None:
    trial_dir = tmp_path / "trial_x"
    named = _checkpoint(trial_dir, 3)
    newer = _checkpoint(trial_dir, 12)  # newer names sort after older ones: zero-padded, as Ray writes them
    _checkpoint(trial_dir, 4)
    assert resumable(named).path == named.path  # it exists: what Tune's state names, whatever else is there
    Path(named.path, "state.json").unlink()
    Path(named.path).rmdir()
    assert resumable(named).path == newer.path  # pruned after all: the trial's newest
    alone = tune.Checkpoint(str(tmp_path / "empty_trial" / "checkpoint_000001"))
    assert resumable(alone).path == alone.path  # nothing to fall back on: Ray's own error follows
