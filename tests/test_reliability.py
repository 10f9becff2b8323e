"""Interruptions, trial faults and resume consistency, through real Ray and real training."""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from ray import tune

from rtune_fashion.cli import format_summary, main
from rtune_fashion.errors import ExperimentError, ExperimentInterrupted
from rtune_fashion.experiment import ExperimentSettings, run_experiment
from rtune_fashion.report import write_report
from rtune_fashion.search import METRIC, MODE, make_search
from rtune_fashion.spaces import SPACES, SearchSpace, register_space
from rtune_fashion.trainable import train_trial
from tests.conftest import shared_ray_workers
from tests.helpers import (
    HANG_TIMEOUT_S,
    assert_continued_from_checkpoint,
    has_checkpoint,
    reported_epochs,
    sequential_run_args,
    start_driver,
    wait_for,
)

pytestmark = pytest.mark.slow
SMALL = {"train_size": 600, "val_size": 300, "test_size": 300}

# Linear layers and SGD at learning rate 10 blow up on the real data within the first epoch.
DIVERGING = {"activation": "linear", "optimizer": "sgd", "learning_rate": 10.0}
NAN_PRONE = register_space(
    SearchSpace(
        name="test_nan_prone",
        source="tests",
        params={
            "model": "mlp",
            "num_layers": 1,
            "units": 32,
            "activation": tune.choice(["relu", "linear"]),
            "optimizer": tune.choice(["adam", "sgd"]),
            "learning_rate": tune.choice([1e-3, 10.0]),
            "batch_size": 64,
        },
        points_to_evaluate=[DIVERGING],  # every searcher meets a diverging trial first
    )
)


def test_ctrl_c_stops_cleanly_prints_the_resume_command_and_resume_completes(ray_local, tmp_path: Path,
                                                                           capsys) -> None:  # fmt: skip
    experiment_dir = tmp_path / "interrupted"
    args = sequential_run_args("mlp_hyperopt.py", tmp_path, "interrupted", samples=3, epochs=4, train_size=2000)
    driver = start_driver(args, tmp_path)
    try:
        wait_for(lambda: has_checkpoint(experiment_dir), "a first checkpoint", driver=driver)
        time.sleep(1.0)
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl+C in a terminal does: the whole process group
        _, err = driver.communicate(timeout=HANG_TIMEOUT_S)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, err[-2000:]
    assert f"Resume with: rtune resume {experiment_dir}" in err
    assert (experiment_dir / "trials.csv").exists() and not (experiment_dir / "summary.json").exists()

    code = main(["resume", str(experiment_dir)])  # the user's next command, here on the tests' shared Ray
    assert code == 0, capsys.readouterr().err[-3000:]
    trials = pd.read_csv(experiment_dir / "trials.csv")
    assert len(trials) == 3 and set(trials["state"]) == {"FINISHED"}
    for trial, epochs in reported_epochs(experiment_dir).items():
        # A trial may end its last epoch in the second before Ctrl+C; Ray can log that epoch's result without
        # registering the trial as ended, and the resumed trial then trains it again from its checkpoint.
        assert_continued_from_checkpoint(trial, epochs, 4)

    # Finished now: another resume is refused (it would retrain, test again and overwrite), nothing touched.
    summary = (experiment_dir / "summary.json").read_bytes()
    results = {path: path.read_bytes() for path in experiment_dir.glob("trial_*/result.json")}
    capsys.readouterr()
    assert main(["resume", str(experiment_dir)]) == 2
    err = capsys.readouterr().err
    assert f"{experiment_dir} is finished" in err and "Nothing was changed" in err and "rtune report" in err
    assert (experiment_dir / "summary.json").read_bytes() == summary
    assert {path: path.read_bytes() for path in experiment_dir.glob("trial_*/result.json")} == results


def _ray_actor_pids() -> list[int]:
    """The trial actors of the tests' shared Ray: other Ray instances on the machine, such as a parallel test
    worker's, are left alone."""
    return [pid for pid, command in shared_ray_workers() if command.startswith("ray::ImplicitFunc")]


def test_trial_whose_worker_dies_is_retried_from_its_checkpoint(ray_local, tmp_path: Path) -> None:
    settings = ExperimentSettings(space="cnn_hyperas", searcher="hyperopt", scheduler="fifo", num_samples=2,
                                  max_epochs=3, max_concurrent=1, storage=str(tmp_path), name="killed_worker",
                                  train_size=1500, val_size=300, test_size=300, retrain=False)  # fmt: skip
    experiment_dir = settings.experiment_dir
    killed = threading.Event()

    def kill_the_trial_worker_mid_epoch() -> None:
        wait_for(lambda: has_checkpoint(experiment_dir) and _ray_actor_pids(), "a trial with a checkpoint")
        time.sleep(0.5)  # mid-epoch
        for pid in _ray_actor_pids():
            os.kill(pid, signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_the_trial_worker_mid_epoch, daemon=True)
    killer.start()
    run_experiment(settings, echo=lambda _: None)
    killer.join(timeout=10)
    assert killed.is_set()
    trials = pd.read_csv(experiment_dir / "trials.csv")
    assert len(trials) == 2 and set(trials["state"]) == {"FINISHED"}
    assert any(experiment_dir.glob("trial_*/error.txt"))  # the failure happened and was retried
    for trial, epochs in reported_epochs(experiment_dir).items():
        assert_continued_from_checkpoint(trial, epochs, 3)


def fails_when_wide(config: dict, **kwargs) -> None:
    """train_trial, except that a config with 1024 units always fails as an out-of-memory model would."""
    if config.get("units_1") == 1024:
        raise MemoryError("simulated out-of-memory: the 1024-unit model does not fit")
    train_trial(config, **kwargs)


def test_always_failing_config_is_an_errored_trial_and_the_search_completes(ray_local, tmp_path: Path) -> None:
    # Seed 4 draws 1024, 512 and 128 units: one config that always fails, two that train. No retry (each
    # attempt costs a new worker process; retrying from a checkpoint is the killed-worker test's part).
    settings = ExperimentSettings(space="mlp_hyperas", searcher="random", num_samples=3, max_epochs=1, seed=4,
                                  storage=str(tmp_path), max_failures=0, final_model="checkpoint", **SMALL)  # fmt: skip
    summary = run_experiment(settings, trainable=fails_when_wide)
    trials = pd.read_csv(settings.experiment_dir / "trials.csv")
    failing = trials["config/units_1"] == 1024
    assert failing.any() and not failing.all(), "the seed must draw both kinds of config"
    assert set(trials.loc[failing, "state"]) == {"ERROR"}
    assert set(trials.loc[~failing, "state"]) == {"FINISHED"}
    assert summary["trials"]["errored"] == failing.sum()
    assert all("simulated out-of-memory" in e["error"] for e in summary["errored_trials"])
    assert summary["best"]["raw_config"]["units_1"] != 1024
    assert "error trial" in format_summary(summary) and "simulated out-of-memory" in format_summary(summary)
    # The final model is the best trial's own checkpoint (--final-model checkpoint), tested once.
    final = summary["final_model"]
    assert final["source"] == "checkpoint" and final["epochs"] == summary["best"]["epochs"] == 1
    assert final["val_accuracy"] == pytest.approx(summary["best"]["last_val_accuracy"], abs=1e-6)
    assert 0 <= final["test_accuracy"] <= 1 and (settings.experiment_dir / "best_model.keras").stat().st_size > 0
    assert "The best trial's checkpoint (epoch 1; --final-model checkpoint): train " in format_summary(summary)


@pytest.mark.parametrize("searcher", ["hyperopt", "optuna", "bohb"])
def test_every_searcher_goes_on_suggesting_after_a_diverged_trial(searcher: str) -> None:
    """What Tune tells a searcher of a trial that raised (as a diverged trial does), on the real searcher: the
    search goes on, with valid configs. The whole path, schedulers included, runs below for two of them."""
    plan = make_search(searcher, None, NAN_PRONE, max_epochs=2, seed=0)
    plan.search_alg.set_search_properties(METRIC, MODE, NAN_PRONE.params)
    first = plan.search_alg.suggest("t0")
    assert {key: first[key] for key in DIVERGING} == DIVERGING  # the space's first point
    plan.search_alg.on_trial_complete("t0", result=None, error=True)
    for i in range(1, 6):
        config = plan.search_alg.suggest(f"t{i}")
        assert set(DIVERGING) <= set(config) and config["learning_rate"] in (1e-3, 10.0), config
        plan.search_alg.on_trial_complete(f"t{i}", result={METRIC: 0.5 + i / 100, "training_iteration": 2})


# Through the whole path with BOHB, the main job's searcher and the one scheduler of its own (brackets that
# wait for their trials). hyperopt and optuna meet ASHA, which treats a diverged trial as any ended one; their
# own part is the searcher, checked above.
def test_diverging_trials_are_recorded_and_never_best(ray_local, tmp_path: Path) -> None:
    settings = ExperimentSettings(space=NAN_PRONE.name, searcher="bohb", num_samples=4, max_epochs=2,
                                  storage=str(tmp_path), retrain=False, **SMALL)  # fmt: skip
    lines: list[str] = []
    summary = run_experiment(settings, echo=lines.append)
    trials = pd.read_csv(settings.experiment_dir / "trials.csv")
    diverged = trials[trials["state"] == "DIVERGED"]
    assert len(diverged) >= 1 and summary["trials"]["diverged"] == len(diverged)
    for error, reported in zip(diverged["error"], diverged["epochs"], strict=True):
        # stopped in the very epoch where the loss went NaN; that epoch was never reported
        assert re.search(rf"Training diverged: loss is (nan|inf) at epoch {reported + 1}\b", error), error
    best = summary["best"]
    assert 0.1 < best["val_accuracy"] <= 1
    assert best["trial_id"] not in set(diverged["trial_id"])

    # The live progress names each diverged trial, and its last line has the final counts and best.
    for trial_id in diverged["trial_id"]:
        assert any(f"trial {trial_id} diverged: " in line and "Training diverged" in line for line in lines), lines
    assert f"{len(diverged)} diverged, 0 errored | best val_accuracy {best['val_accuracy']:.4f}" in lines[-1]
    report = write_report(settings.experiment_dir)  # the report too
    assert report.record.best().trial_id == best["trial_id"]
    for trial_id in diverged["trial_id"]:
        assert re.search(rf"^ +\d+ +{trial_id} +diverged ", report.text, re.MULTILINE), report.text


def test_resume_refuses_a_different_search(ray_local, tmp_path: Path, monkeypatch) -> None:
    settings = ExperimentSettings(space="mlp_hyperas", searcher="hyperopt", num_samples=1, max_epochs=1,
                                  storage=str(tmp_path), retrain=False, **SMALL)  # fmt: skip
    run_experiment(settings)
    stored = json.loads((settings.experiment_dir / "settings.json").read_text())
    assert stored["settings"]["max_epochs"] == 1 and len(stored["space_fingerprint"]) == 16
    (settings.experiment_dir / "summary.json").unlink()  # as if stopped before its end (a finished one is refused)

    assert stored["trainable"] == "rtune_fashion.trainable.train_trial"
    with pytest.raises(ExperimentError, match=r"with trainable tests.test_reliability.fails_when_wide: it was started "
                       r"with rtune_fashion.trainable.train_trial"):  # fmt: skip
        run_experiment(ExperimentSettings(**{**stored["settings"], "resume": True}), trainable=fails_when_wide)

    restored_by_ray = ExperimentSettings(**{**stored["settings"], "max_failures": 3, "cpus_per_trial": 2.0,
                                            "resume": True})  # fmt: skip
    with pytest.raises(ExperimentError, match=r"cpus_per_trial: 1.0 when started, 2.0 now; max_failures: 1 when "
                       r"started, 3 now\): Ray restores the trials' resources"):  # fmt: skip
        run_experiment(restored_by_ray)  # Ray would keep the old ones without a word

    changed = ExperimentSettings(**{**stored["settings"], "max_epochs": 3, "resume": True})
    with pytest.raises(ExperimentError, match=r"different search \(max_epochs: 1 when started, 3 now\).*rtune resume"):
        run_experiment(changed)
    first_rung = ExperimentSettings(**{**stored["settings"], "max_epochs": 3, "min_epochs": 2, "brackets": 2,
                                       "resume": True})  # fmt: skip
    with pytest.raises(ExperimentError, match=r"max_epochs: 1 when started, 3 now; min_epochs: 1 when started, 2 "
                       r"now; brackets: None when started, 2 now"):  # fmt: skip
        run_experiment(first_rung)

    original = SPACES["mlp_hyperas"]
    edited = SearchSpace(original.name, {**original.params, "batch_size": tune.choice([64, 128])}, original.source)
    monkeypatch.setitem(SPACES, "mlp_hyperas", edited)
    same = ExperimentSettings(**{**stored["settings"], "resume": True})
    with pytest.raises(ExperimentError, match=r"the search space 'mlp_hyperas' has changed since the experiment"):
        run_experiment(same)


def sleeps_a_second_each_epoch(config: dict, *, data, max_epochs: int, seed: int = 0) -> None:
    """A trial whose epochs take a second on any machine: it reports and checkpoints as train_trial does."""
    checkpoint = tune.get_checkpoint()
    start = 0
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = json.loads((Path(directory) / "state.json").read_text())["epoch"]
    for epoch in range(start + 1, max_epochs + 1):
        time.sleep(1.0)
        metrics = {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5, "best_val_accuracy": 0.5,
                   "epoch": epoch, "epoch_time_s": 1.0, "reported_at": time.time()}  # fmt: skip
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def test_a_budgeted_search_interrupted_and_resumed_without_the_budget_ends_at_its_budget(ray_local, tmp_path) -> None:
    """The issue's scenario, for real: --time-budget, Ctrl+C, then --resume without the flag. Tune restores what is
    left of the budget with its state and stops the resumed search when it runs out; rtune reads what is left from
    that state, so it calls the search ended (hyperopt had made fewer trials than asked, which would otherwise mean
    an interruption), not interrupted: before, it exited 130 asking to resume again, with no final step."""
    from rtune_fashion.experiment import _budget_left

    settings = {"space": "mlp_hyperas", "searcher": "hyperopt", "scheduler": "fifo", "num_samples": 60,
                "max_epochs": 3, "storage": str(tmp_path), "name": "budgeted", **SMALL}  # 90 s of work: 60 x 3 s / 2
    experiment_dir = tmp_path / "budgeted"
    started = time.monotonic()

    def interrupt_after_a_checkpoint() -> None:
        # Only well inside the 60-s budget: a SIGINT after Tune's fit would reach pytest itself.
        while time.monotonic() - started < 45:
            if has_checkpoint(experiment_dir):
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C: Tune's own handler stops the run and saves its state
                return
            time.sleep(0.2)

    interrupter = threading.Thread(target=interrupt_after_a_checkpoint, daemon=True)
    interrupter.start()
    with pytest.raises(ExperimentInterrupted):  # not raised: no checkpoint within 45 s (a hang: 3-s trials)
        run_experiment(ExperimentSettings(**settings, time_budget_s=60, retrain=False),
                       trainable=sleeps_a_second_each_epoch)  # fmt: skip
    interrupter.join()
    stored = json.loads((experiment_dir / "settings.json").read_text())
    left = _budget_left(experiment_dir, fallback=-1.0)
    assert stored["settings"]["time_budget_s"] == 60 and 0 < left < stored["search_budget_s"]

    resumed = time.monotonic()
    summary = run_experiment(ExperimentSettings(**settings, resume=True, retrain=False),  # no time budget given
                             trainable=sleeps_a_second_each_epoch)  # fmt: skip
    assert time.monotonic() - resumed >= left - 1  # Tune stopped it at what was left ...
    trials = pd.read_csv(experiment_dir / "trials.csv")
    assert (trials["state"] == "FINISHED").sum() < 60  # ... with work left: it ended at its budget
    assert (experiment_dir / "summary.json").exists() and summary["best"] is not None
