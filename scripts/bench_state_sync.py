"""What Tune's experiment-state saves cost the driver, per epoch checkpoint, as the number of trials grows.

    .venv/bin/python scripts/bench_state_sync.py [--trials 16 128 512] [--epochs 4] [--epoch-s 0.02 0.5]

Ray deletes a trial's checkpoints beyond ``CheckpointConfig(num_to_keep)`` as soon as a new one is registered, so
it saves the whole experiment state (every trial's state, the searcher's), waiting for the previous upload, when
a trial has made ``num_to_keep`` checkpoints since the last save; otherwise it saves every
``TUNE_GLOBAL_CHECKPOINT_S`` (1 s in rtune). At 1 (rtune until issue 15) that is a save per checkpoint; rtune now
keeps 2 (``rtune_fashion.experiment.CHECKPOINTS_KEPT``); None (Ray keeps every checkpoint) is the floor. This
script runs each on a ``file://`` URI (the way a cloud bucket is reached) with trials that only sleep and checkpoint
a 1 KB file, so the driver's bookkeeping is all there is to measure: time inside Ray's state-save call (measured by
wrapping it in this process), the saves' count, and wall time. Prints a Markdown table; writes nothing else.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")  # rtune's setting (rtune_fashion.experiment)
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.execution.experiment_state import _ExperimentCheckpointManager  # noqa: E402

from rtune_fashion.devices import cpu_description  # noqa: E402
from rtune_fashion.experiment import CHECKPOINTS_KEPT  # noqa: E402

SETTINGS = {"num_to_keep=1 (rtune before)": 1, f"num_to_keep={CHECKPOINTS_KEPT} (rtune)": CHECKPOINTS_KEPT,
            "num_to_keep=None (nothing deleted)": None}


def sleeping_trial(config: dict[str, Any]) -> None:
    """``epochs`` reports of a constant metric, each after ``epoch_s`` seconds, each with a 1 KB checkpoint."""
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(config["epoch_s"])
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "state.bin").write_bytes(os.urandom(1024))
            tune.report({"val_accuracy": 0.5, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(directory))


class SaveClock:
    """Time spent in Ray's ``sync_up_experiment_state`` (the snapshot and, when forced, the wait for the previous
    upload), measured in the driver by wrapping the method for the duration of one run."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.saves = 0
        self._original = _ExperimentCheckpointManager.sync_up_experiment_state

    def __enter__(self) -> SaveClock:
        clock, original = self, self._original

        def timed(manager: Any, save_fn: Any, force: bool = False, wait: bool = False) -> None:
            saved = manager._last_save_time
            started = time.perf_counter()
            original(manager, save_fn, force=force, wait=wait)
            if manager._last_save_time != saved:  # a snapshot was taken (not throttled away)
                clock.seconds += time.perf_counter() - started
                clock.saves += 1

        _ExperimentCheckpointManager.sync_up_experiment_state = timed
        return self

    def __exit__(self, *exc: object) -> None:
        _ExperimentCheckpointManager.sync_up_experiment_state = self._original


def run(trials: int, epochs: int, epoch_s: float, keep: int | None, storage: str) -> dict[str, float]:
    with SaveClock() as clock:
        started = time.perf_counter()
        tuner = tune.Tuner(
            tune.with_resources(sleeping_trial, {"cpu": 1}),
            param_space={"epochs": epochs, "epoch_s": epoch_s, "i": tune.grid_search(list(range(trials)))},
            tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", reuse_actors=True),
            run_config=tune.RunConfig(storage_path=storage, name=f"t{trials}_{keep}_{time.time_ns()}", verbose=0,
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=keep)),  # fmt: skip
        )
        tuner.fit()
        wall = time.perf_counter() - started
    checkpoints = trials * epochs
    return {"wall_s": wall, "saves": clock.saves, "snapshot_s": clock.seconds,
            "snapshot_ms_per_checkpoint": 1000 * clock.seconds / checkpoints,
            "ms_per_snapshot": 1000 * clock.seconds / max(clock.saves, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[16, 128, 512])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--epoch-s", type=float, nargs="+", default=[0.02, 0.5])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    storage = "file://" + tempfile.mkdtemp(prefix="bench_state_sync_")
    print(f"{cpu_description()}, Ray {ray.__version__}, storage {storage}, {args.epochs} epochs per trial, "
          f"2 trials at a time; medians of {args.repeats} runs\n")
    print("| trials | epoch | setting | wall time | state saves | time in saves | per checkpoint | per save |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for epoch_s in args.epoch_s:
        for trials in args.trials:
            for name, keep in SETTINGS.items():
                runs = [run(trials, args.epochs, epoch_s, keep, storage) for _ in range(args.repeats)]

                def median(key: str, runs: list[dict[str, float]] = runs) -> float:
                    return sorted(r[key] for r in runs)[len(runs) // 2]

                print(f"| {trials} | {epoch_s} s | {name} | {median('wall_s'):.1f} s | {median('saves'):.0f} | "
                      f"{median('snapshot_s'):.2f} s | {median('snapshot_ms_per_checkpoint'):.1f} ms | "
                      f"{median('ms_per_snapshot'):.1f} ms |", flush=True)


if __name__ == "__main__":
    main()
