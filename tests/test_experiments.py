"""Every experiment script end to end through real Ray, in its fastest mode; interruption and resume."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rtune_fashion.config import OPTIMIZERS
from rtune_fashion.errors import ExperimentError
from rtune_fashion.experiment import ExperimentSettings, run_experiment
from rtune_fashion.results import load_experiment
from tests.helpers import ENV, ROOT, assert_continued_from_checkpoint, reported_epochs, sequential_run_args

pytestmark = pytest.mark.slow
SCRIPTS = sorted(p.name for p in (ROOT / "experiments").glob("*.py") if p.name != "pima_grid.py")  # own CLI


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )


def _check_results(experiment_dir: Path, expected_trials: int) -> dict:
    summary = json.loads((experiment_dir / "summary.json").read_text())
    trials = pd.read_csv(experiment_dir / "trials.csv")
    assert len(trials) == summary["trials"]["total"] == expected_trials
    assert summary["trials"]["errored"] == 0, summary["errored_trials"]
    best = summary["best"]
    assert 0.1 < best["val_accuracy"] <= 1 and best["val_accuracy"] == trials["best_val_accuracy"].max()
    retrained = summary["retrained"]
    assert all(math.isfinite(retrained[k]) and 0 <= retrained[k] <= 1 for k in ("val_accuracy", "test_accuracy"))
    assert (experiment_dir / "best_model.keras").stat().st_size > 0
    assert not any(f"lr_{name}" in best["config"] for name in OPTIMIZERS)  # readable: one learning rate
    return summary


def test_experiment_scripts_are_all_tested() -> None:
    assert SCRIPTS == ["cnn_bohb.py", "cnn_hyperopt.py", "cnn_optuna.py", "mlp_hyperopt.py", "mlp_optuna.py"]
    assert sorted(p.name for p in (ROOT / "experiments").glob("*.py")) == [*SCRIPTS, "pima_grid.py"]


def test_pima_grid_script_smoke_test(tmp_path: Path) -> None:
    """The cross-validated grid script end to end (on a synthetic table: CI has no copy of the Pima CSV)."""
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.normal(size=(90, 8)), rng.integers(0, 2, 90)])
    csv = tmp_path / "table.csv"
    np.savetxt(csv, table, delimiter=",", fmt="%.4f")
    done = _run([str(ROOT / "experiments" / "pima_grid.py"), "--csv", str(csv), "--grid", "optimizer",
                 "--smoke-test", "--storage", str(tmp_path)], cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = pd.read_csv(tmp_path / "pima_optimizer_grid_smoke" / "cv_results.csv")
    assert len(results) == 7 and set(results["state"]) == {"FINISHED"}
    assert "Best: " in done.stdout and "2-fold cross-validation" in done.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_experiment_script_smoke_test(script: str, tmp_path: Path) -> None:
    done = _run([str(ROOT / "experiments" / script), "--smoke-test", "--storage", str(tmp_path)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (experiment_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = _check_results(experiment_dir, expected_trials=3)
    assert summary["settings"]["max_epochs"] == 2 and summary["settings"]["train_size"] == 1000
    assert f"test {summary['retrained']['test_accuracy']:.4f}" in done.stdout  # printed for people
    assert "total parameters" in done.stdout  # the architecture, not choice indices


def test_smoke_experiment_under_the_jax_backend(tmp_path: Path) -> None:
    """The model and trainable code is backend-neutral: the same script runs with KERAS_BACKEND=jax."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "mlp_optuna.py"), "--smoke-test", "--storage", str(tmp_path)],
        cwd=tmp_path, env={**ENV, "KERAS_BACKEND": "jax"}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (experiment_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = _check_results(experiment_dir, expected_trials=3)
    assert summary["versions"]["backend"] == "jax"


def test_grid_searcher_runs_every_point_one_at_a_time_when_asked(tmp_path: Path) -> None:
    """--max-concurrent 1 with 1 CPU per trial on a 2-CPU machine: Tune alone would ignore the limit for the
    grid generator and run two at once."""
    settings = ExperimentSettings(space="mlp_grid", searcher="grid", num_samples=1, max_epochs=1, storage=str(tmp_path),
                                  train_size=300, val_size=200, test_size=100, retrain=False,
                                  max_concurrent=1)  # fmt: skip
    summary = run_experiment(settings, echo=lambda _: None)
    assert summary["trials"]["total"] == 12 and summary["trials"]["errored"] == 0
    trials = pd.read_csv(settings.experiment_dir / "trials.csv")
    assert len(set(zip(trials["config/optimizer"], trials["config/learning_rate"], strict=True))) == 12
    epochs = sorted((row["reported_at"] - row["epoch_time_s"], row["reported_at"])
                    for trial in load_experiment(settings.experiment_dir).trials for row in trial.history)  # fmt: skip
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(epochs)), epochs  # no overlap


def test_time_budget_ends_the_search_and_still_retrains_the_best(tmp_path: Path) -> None:
    """--time-budget: Tune stops every trial when it runs out; that is the end asked for, not an interruption."""
    settings = ExperimentSettings(space="mlp_hyperas", searcher="hyperopt", num_samples=500, max_epochs=100,
                                  storage=str(tmp_path), train_size=300, val_size=200, test_size=100,
                                  time_budget_s=8)  # fmt: skip
    summary = run_experiment(settings, echo=lambda _: None)
    assert 8 <= summary["search_time_s"] < 60
    assert 0 < summary["trials"]["total"] < 500 and summary["trials"]["errored"] == 0
    assert summary["best"]["epochs"] < 100  # nothing got its 100 epochs in 8 s
    assert 0 <= summary["retrained"]["test_accuracy"] <= 1
    assert (settings.experiment_dir / "summary.json").exists()


def test_more_gpus_than_any_node_is_refused_at_once(tmp_path: Path) -> None:
    settings = ExperimentSettings(space="mlp_hyperas", searcher="hyperopt", gpus_per_trial=1, storage=str(tmp_path),
                                  smoke_test=True)  # fmt: skip
    started = time.monotonic()
    with pytest.raises(ExperimentError, match=r"--gpus-per-trial 1 cannot be met: .* has 0 GPU\(s\)"):
        run_experiment(settings)
    assert time.monotonic() - started < 120  # refused, not left pending


def test_killed_search_resumes_without_repeating_work(tmp_path: Path) -> None:
    args = sequential_run_args("mlp_hyperopt.py", tmp_path, "killed", samples=4, epochs=4, train_size=2000)
    experiment_dir = tmp_path / "killed"
    driver = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=ENV, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # kill once a trial has finished and the next has a checkpoint
            epochs = reported_epochs(experiment_dir)
            if sum(e[-1:] == [4] for e in epochs.values()) >= 1 and any(e and e[-1] < 4 for e in epochs.values()):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the search never reached the point to interrupt it")
        time.sleep(1.5)  # let Tune save its experiment state once more, as a long run would have
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    before = reported_epochs(experiment_dir)

    done = _run(["-m", "rtune_fashion.cli", "resume", str(experiment_dir)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    after = reported_epochs(experiment_dir)
    trials = pd.read_csv(experiment_dir / "trials.csv")
    assert len(trials) == 4 and set(trials["state"]) == {"FINISHED"}  # never more trials than --num-samples
    for trial, epochs in after.items():
        if len(before.get(trial, [])) > 1:  # it had a checkpoint after epoch 1 when the driver was killed
            assert_continued_from_checkpoint(trial, epochs, 4)
        else:
            assert sorted(set(epochs)) == [1, 2, 3, 4] and len(epochs) - len(set(epochs)) <= 1, (trial, epochs)
    finished_before = [t for t, e in before.items() if e[-1:] == [4]]
    assert finished_before and all(after[t] == before[t] for t in finished_before)  # finished trials untouched
