"""Every experiment script end to end through real Ray, in its fastest mode; interruption and resume."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import ray
from ray import tune

from rtune_fashion import budget
from rtune_fashion.budget import cheapest_values
from rtune_fashion.cli import format_summary, main
from rtune_fashion.config import OPTIMIZERS
from rtune_fashion.data import load_fashion_mnist
from rtune_fashion.errors import ExperimentError
from rtune_fashion.experiment import ExperimentSettings, _planned_trainings, run_experiment
from rtune_fashion.results import load_experiment
from rtune_fashion.spaces import SearchSpace, get_space, register_space
from rtune_fashion.trainable import train_trial
from rtune_fashion.tune_state import damaged_state
from tests.conftest import RAY_CPUS, what_holds_cpus
from tests.helpers import (
    ENV,
    HANG_TIMEOUT_S,
    ROOT,
    assert_continued_from_checkpoint,
    reported_epochs,
    run_script_in_process,
    sequential_run_args,
    start_driver,
    wait_for,
    waits_before_reporting,
)

pytestmark = pytest.mark.slow
# pima_grid.py has its own CLI; cnn_images_hyperopt.py needs --data (tests/test_own_data.py)
OWN_TESTS = ("pima_grid.py", "cnn_images_hyperopt.py")
SCRIPTS = sorted(p.name for p in (ROOT / "experiments").glob("*.py") if p.name not in OWN_TESTS)


def _run(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env or ENV, capture_output=True, text=True,
                          timeout=HANG_TIMEOUT_S, check=False)  # fmt: skip


def _check_results(experiment_dir: Path, expected_trials: int) -> dict:
    summary = json.loads((experiment_dir / "summary.json").read_text())
    trials = pd.read_csv(experiment_dir / "trials.csv")
    assert len(trials) == summary["trials"]["total"] == expected_trials
    assert summary["trials"]["errored"] == 0, summary["errored_trials"]
    best = summary["best"]
    assert 0.1 < best["val_accuracy"] <= 1 and best["val_accuracy"] == trials["best_val_accuracy"].max()
    final = summary["final_model"]
    assert all(math.isfinite(final[k]) and 0 <= final[k] <= 1 for k in ("val_accuracy", "test_accuracy"))
    assert (experiment_dir / "best_model.keras").stat().st_size > 0
    assert not any(f"lr_{name}" in best["config"] for name in OPTIMIZERS)  # readable: one learning rate
    return summary


def test_experiment_scripts_are_all_tested() -> None:
    assert SCRIPTS == ["cnn_bohb.py", "cnn_hyperopt.py", "cnn_optuna.py", "mlp_hyperopt.py", "mlp_optuna.py"]
    assert sorted(p.name for p in (ROOT / "experiments").glob("*.py")) == sorted([*SCRIPTS, *OWN_TESTS])


def _synthetic_table(tmp_path: Path) -> Path:
    """A CSV of 90 rows, 8 numeric features and a 0/1 label (CI has no copy of the Pima table)."""
    rng = np.random.default_rng(0)
    csv = tmp_path / "table.csv"
    np.savetxt(csv, np.column_stack([rng.normal(size=(90, 8)), rng.integers(0, 2, 90)]), delimiter=",", fmt="%.4f")
    return csv


def test_pima_grid_script_interrupted_resumed_and_printed_as_gridsearchcv_does(ray_local, tmp_path: Path,
                                                                               capsys) -> None:  # fmt: skip
    """The cross-validated grid script end to end, on a synthetic table. Ctrl+C: exit code 130 and the grid
    script's own resume command (``rtune resume`` cannot continue a grid, and says what can), which finishes
    the grid without training a finished point again and prints GridSearchCV's summary and table; a
    ``--resume`` of the finished grid shows it again and trains nothing."""
    args = [str(ROOT / "experiments" / "pima_grid.py"), "--csv", str(_synthetic_table(tmp_path)), "--grid",
            "optimizer", "--smoke-test", "--storage", str(tmp_path), "--max-concurrent", "1"]  # fmt: skip
    experiment_dir = tmp_path / "pima_optimizer_grid_smoke"
    driver = start_driver(args, tmp_path)
    try:
        wait_for(lambda: any(experiment_dir.glob("trial_*/result.json")), "a first grid point", driver=driver)
        os.killpg(driver.pid, signal.SIGINT)
        _, err = driver.communicate(timeout=HANG_TIMEOUT_S)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, err[-2000:]
    resume_line = next(line for line in err.splitlines() if "Resume with:" in line)
    assert resume_line.endswith(f"python {shlex.join(args)} --resume"), resume_line
    before = {trial: epochs for trial, epochs in reported_epochs(experiment_dir).items() if epochs}

    capsys.readouterr()
    assert main(["resume", str(experiment_dir)]) == 2
    assert "run the same pima_grid.py command again with --resume" in capsys.readouterr().err

    code, out, err = run_script_in_process("pima_grid.py", [*args[1:], "--resume"], capsys)
    assert code == 0, err[-3000:]
    after = reported_epochs(experiment_dir)
    assert all(after[trial] == epochs for trial, epochs in before.items())  # finished points not trained again
    results = pd.read_csv(experiment_dir / "cv_results.csv")
    assert len(results) == 7 and set(results["state"]) == {"FINISHED"}
    assert "2-fold cross-validation" in out
    # GridSearchCV's table and summary: ranked by mean score, the best printed first, one line per point
    assert list(results["rank_test_score"]) == list(range(1, 8))
    assert list(results["mean_test_score"]) == sorted(results["mean_test_score"], reverse=True)
    best = results.iloc[0]
    assert f"Best: {best['mean_test_score']:.6f} using {{'optimizer': '{best['param_optimizer']}'}}" in out
    for _, row in results.iterrows():
        score = f"{row['mean_test_score']:.6f} ({row['std_test_score']:.6f})"
        assert f"{score} with: {{'optimizer': '{row['param_optimizer']}'}}" in out
        assert row["mean_test_score"] == pytest.approx((row["split0_test_score"] + row["split1_test_score"]) / 2)

    code, out, err = run_script_in_process("pima_grid.py", [*args[1:], "--resume"], capsys)
    assert code == 0, err[-3000:]
    assert "pima_optimizer: finished before" in out and f"Best: {best['mean_test_score']:.6f}" in out
    assert reported_epochs(experiment_dir) == after  # nothing trained again
    code, out, err = run_script_in_process("pima_grid.py", [*args[1:], "--resume", "--max-concurrent", "2"], capsys)
    assert code == 0 and "pima_optimizer: finished before" in out, err[-2000:]  # its resources no longer matter
    code, out, err = run_script_in_process("pima_grid.py", [*args[1:], "--resume", "--standardize"], capsys)
    assert code == 2 and "'standardize': True" in err, err[-2000:]  # not shown as a grid it is not


# Flags typed with --smoke-test win over its small values: one script checks it.
TYPED = {"mlp_hyperopt.py": ["--num-samples", "3", "--max-epochs", "3"]}


@pytest.mark.parametrize("script", SCRIPTS)
def test_experiment_script_smoke_test(script: str, ray_local, tmp_path: Path, capsys) -> None:
    code, out, err = run_script_in_process(script, ["--smoke-test", "--storage", str(tmp_path), *TYPED.get(script, [])],
                                     capsys)  # fmt: skip
    assert code == 0, err[-3000:]
    (experiment_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    typed = script in TYPED
    summary = _check_results(experiment_dir, expected_trials=3 if typed else 2)
    settings = summary["settings"]
    assert settings["max_epochs"] == (3 if typed else 2) and settings["train_size"] == 600
    space = get_space(settings["space"])
    assert settings["space_values"] == cheapest_values(space)  # the space's smallest architecture
    assert f"test {summary['final_model']['test_accuracy']:.4f}" in out  # printed for people
    assert "total parameters" in out  # the architecture, not choice indices


# mlp_grid's form (optimizer x learning rate), 2 x 2 of its 4 x 3 points: every point still runs as a trial
SMALL_GRID = register_space(SearchSpace(
    name="test_small_grid", source="tests",
    params={**get_space("mlp_grid").params, "units": 32, "optimizer": tune.grid_search(["adam", "sgd"]),
            "learning_rate": tune.grid_search([1e-3, 1e-2])},
))  # fmt: skip


def test_grid_searcher_runs_every_point_one_at_a_time_when_asked(ray_local, tmp_path: Path) -> None:
    """--max-concurrent 1 with trials small enough for two at once on the shared Ray (half its CPUs each):
    Tune alone would ignore the limit for the grid generator and run two at once. Two passes over the grid:
    each repeat of a point has its own seed (Tune's own repeats were identical runs), and the summary gives
    each point's mean and spread."""
    settings = ExperimentSettings(space=SMALL_GRID.name, searcher="grid", num_samples=2, max_epochs=1,
                                  storage=str(tmp_path), train_size=300, val_size=200, test_size=100, retrain=False,
                                  max_concurrent=1, cpus_per_trial=RAY_CPUS / 2)  # fmt: skip
    lines: list[str] = []
    summary = run_experiment(settings, echo=lines.append)
    assert summary["trials"]["total"] == 8 and summary["trials"]["errored"] == 0
    assert "with grid + asha: 2 pass(es) over 4 grid points of up to 1 epochs" in lines[0], lines
    trials = pd.read_csv(settings.experiment_dir / "trials.csv")
    points = list(zip(trials["config/optimizer"], trials["config/learning_rate"], strict=True))
    assert len(set(points)) == 4 and sorted(trials["config/repeat"]) == [0] * 4 + [1] * 4
    record = load_experiment(settings.experiment_dir)
    losses = {}
    for trial in record.trials:
        point = (trial.config["optimizer"], trial.config["learning_rate"])
        losses.setdefault(point, []).append(trial.history[0]["loss"])
    assert all(a != b for a, b in losses.values()), losses  # other seeds: other runs, not copies
    rows = summary["grid_repeats"]
    assert len(rows) == 4 and all(row["repeats"] == 2 and row["std"] >= 0 for row in rows)
    assert set(rows[0]["point"]) == {"optimizer", "learning_rate"} and rows[0]["mean"] >= rows[-1]["mean"]
    assert "Each grid point over its 2 repeats (best val accuracy, mean ± std):" in format_summary(summary)
    epochs = sorted((row["reported_at"] - row["epoch_time_s"], row["reported_at"])
                    for trial in load_experiment(settings.experiment_dir).trials for row in trial.history)  # fmt: skip
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(epochs)), epochs  # no overlap


def test_a_budget_that_ends_before_any_epoch_says_so_and_loses_nothing(ray_local, tmp_path: Path) -> None:
    """Trials that need longer than the budget for their first epoch: no "every trial failed", but the budget
    and the fix; what Tune and rtune wrote stays on disk."""
    settings = ExperimentSettings(space="mlp_hyperas", searcher="random", num_samples=2, max_epochs=1,
                                  storage=str(tmp_path), train_size=300, val_size=200, test_size=100,
                                  time_budget_s=3)  # fmt: skip
    with pytest.raises(ExperimentError) as caught:
        run_experiment(settings, echo=lambda _: None, trainable=waits_before_reporting)
    message = str(caught.value)
    assert message.startswith("The time budget (3 s) ended before any of the 2 trial(s) finished its first epoch, "
                              "so there is no result to keep.")  # fmt: skip
    assert "Fix: run again with a larger --time-budget (or --time-budget none), a smaller --train-size" in message
    assert "failed" not in message
    assert tune.Tuner.can_restore(settings.experiment_uri) and not (settings.experiment_dir / "summary.json").exists()
    assert len(pd.read_csv(settings.experiment_dir / "trials.csv")) == 2


@pytest.mark.parametrize(("changes", "trainings"), [({}, 2), ({"ensemble": 3}, 3), ({"ensemble": 1}, 1),
                                                  ({"final_model": "checkpoint"}, 1), ({"retrain": False}, 0)])
def test_the_plan_keeps_room_for_the_trainings_the_final_model_will_make(changes, trainings) -> None:
    settings = ExperimentSettings(space="mlp_hyperas", searcher="random", time_budget_s=600, **changes)
    assert _planned_trainings(settings) == trainings


def test_a_measurement_that_cannot_start_within_its_share_of_the_budget_is_refused_and_cancelled(
        ray_local, small_data, tmp_path: Path, monkeypatch) -> None:  # fmt: skip
    """Every CPU held by another job: the budget's measurement of the machine waits, and after its share of the
    budget (30%) the run is refused with the fix; the waiting measurement is cancelled, not left in Ray's queue
    to take the CPUs whenever they come free."""
    from ray.autoscaler.v2.sdk import get_cluster_status

    def waiting_for_one_cpu() -> int:  # tasks and actors of {"CPU": 1} in Ray's queue (reported every second)
        demand = get_cluster_status(ray.get_runtime_context().gcs_address).resource_demands.ray_task_actor_demand
        return sum(r.count for d in demand for r in d.bundles_by_count if r.bundle == {"CPU": 1.0})

    cancel, seen = ray.cancel, []

    def cancel_once_seen_waiting(ref, **kwargs) -> None:
        wait_for(lambda: waiting_for_one_cpu() > 0, "the measurement in Ray's queue", timeout=60)
        seen.append(waiting_for_one_cpu())
        cancel(ref, **kwargs)

    holder = HoldsACpu.options(num_cpus=RAY_CPUS).remote()
    ray.get(holder.ready.remote())
    monkeypatch.setattr(ray, "cancel", cancel_once_seen_waiting)
    try:
        settings = ExperimentSettings(space="mlp_hyperas", searcher="random", storage=str(tmp_path), time_budget_s=10,
                                      cpus_per_trial=1, gpus_per_trial=0)  # fmt: skip
        with pytest.raises(ExperimentError) as caught:
            run_experiment(settings, echo=lambda _: None, data=small_data)
        assert str(caught.value) == (
            "Measuring this machine took more than 3 s (30% of --time-budget 10): either no node can start a task "
            "of 1 CPU and 0 GPU, or the machine is too slow for this budget. Fix: check --cpus-per-trial against "
            "the CPUs of your nodes, give a larger --time-budget, or --time-budget none.")  # fmt: skip
        assert seen  # it waited, and was cancelled: it leaves the queue (a minute is a hang guard)
        wait_for(lambda: waiting_for_one_cpu() < seen[0], "the waiting measurement cancelled", timeout=60)
    finally:
        ray.kill(holder)


def test_a_budgeted_search_is_fitted_to_the_machine_and_records_its_plan(ray_local, tmp_path: Path) -> None:
    """With --time-budget, the run measures this machine first and chooses the subsets itself; the plan is in
    settings.json and summary.json, and the trials trained on the subset it chose. No timing is asserted, but
    the final model's choices depend on time left: a 1-epoch MLP on 4,000 images against about 9 minutes."""
    lines: list[str] = []
    settings = ExperimentSettings(space="mlp_kerastuner", searcher="random", num_samples=2, max_epochs=1,
                                  storage=str(tmp_path), time_budget_s=600)  # fmt: skip
    # A slice of the real data (the plan chooses within it, as within the whole split): trains in seconds.
    data = load_fashion_mnist(subset={"train": 4000, "val": 1000, "test": 200})
    summary = run_experiment(settings, echo=lines.append, data=data)
    plan = summary["plan"]
    assert plan["train_size"] in (4000, 3000) and plan["full_train_size"] == 4000 and plan["num_samples"] == 2
    assert plan["speed"]["train_s_per_example"] > 0 and plan["speed"]["measured_config"]["model"] == "mlp"
    assert 0 < plan["final_reserve_s"] <= budget.FINAL_SHARE * (plan["search_s"] + plan["final_reserve_s"])
    assert plan["final_trainings"] == 2  # room kept for an ensemble of two (budget.PLANNED_TRAININGS)
    chosen = summary["settings"]
    assert (chosen["train_size"], chosen["val_size"]) == (plan["train_size"], plan["val_size"])
    stored = json.loads((settings.experiment_dir / "settings.json").read_text())
    assert stored["plan"] == plan and stored["settings"]["train_size"] == plan["train_size"]
    assert any(line.startswith("Measured here (1 CPU per trial): ") for line in lines), lines
    assert any(line.startswith("Time budget 10:00: the search ends by ") for line in lines), lines
    # auto: a 1-epoch MLP's retraining (its trial's measured time) fits in the minutes left, on all the data
    final = summary["final_model"]
    assert final["source"] == "retrained" and final["why"].startswith("its trial") and final["train_size"] == 4000
    assert final["trial_id"] == summary["best"]["trial_id"]  # it fits all the data: no other config is needed
    assert summary["trials"]["finished"] == 2
    # ... and so do two more trainings with the next seeds: the final model is their ensemble, saved as it was tested
    seed = final["member_seeds"][0]
    assert (final["members"], final["member_seeds"], final["member_epochs"]) == (3, [seed, seed + 1, seed + 2], [1] * 3)
    assert "an ensemble of 3 trainings" in final["why"] and len(final["member_val_accuracy"]) == 3
    assert any(line.startswith("Final model: trial ") and "retrained on 4000 images" in line
               and "(up to 3 in all; a later one for fewer epochs when only that fits); done by " in line
               for line in lines), lines  # fmt: skip
    saved = keras.models.load_model(settings.experiment_dir / "best_model.keras")
    assert saved.evaluate(data.x_test, data.y_test, verbose=0)[1] == pytest.approx(final["test_accuracy"])


def test_more_gpus_than_any_node_is_refused_at_once(ray_local, tmp_path: Path) -> None:
    settings = ExperimentSettings(space="mlp_hyperas", searcher="hyperopt", gpus_per_trial=1, storage=str(tmp_path),
                                  smoke_test=True)  # fmt: skip
    with pytest.raises(ExperimentError, match=r"--gpus-per-trial 1 cannot be met: .* has 0 GPU\(s\)"):
        run_experiment(settings)
    assert not tune.Tuner.can_restore(settings.experiment_uri)  # refused before the search, not left pending


def _stopped_whole(group: int, experiment_dir: Path) -> bool:
    """Stop the process group ``group``; True, leaving it stopped, when Tune's saved state in ``experiment_dir`` is
    whole then, else let it go on and False."""
    os.killpg(group, signal.SIGSTOP)
    if damaged_state(experiment_dir) is None:
        return True
    os.killpg(group, signal.SIGCONT)
    return False


def test_killed_search_resumes_without_repeating_work(ray_local, tmp_path: Path, capsys) -> None:
    # Four trials on 4,000 images: after the kill point 8 epochs and two trial starts are left, so the second (at
    # most) the test then waits for Tune's next state save cannot see the search end (with 3 trials on 2,000
    # images and a 1.5-s wait, it did on a fast idle machine).
    args = sequential_run_args("mlp_hyperopt.py", tmp_path, "killed", samples=4, epochs=3, train_size=4000)
    experiment_dir = tmp_path / "killed"
    driver = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=ENV, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + HANG_TIMEOUT_S
        while time.monotonic() < deadline:  # kill once a trial has finished and the next has a checkpoint
            epochs = reported_epochs(experiment_dir)
            if sum(e[-1:] == [3] for e in epochs.values()) >= 1 and any(e and e[-1] < 3 for e in epochs.values()):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the search never reached the point to interrupt it")
        # Let Tune save its experiment state once more (every second), as a long run would have, then kill.
        saved = max((p.stat().st_mtime_ns for p in experiment_dir.glob("experiment_state-*.json")), default=0)
        wait_for(lambda: max((p.stat().st_mtime_ns for p in experiment_dir.glob("experiment_state-*.json")),
                             default=0) > saved, "Tune's next state save", driver=driver)  # fmt: skip
        # The kill lands where Ray's copy of a save to the storage is not under way (a kill during the copy is the
        # refusal checked below): the driver is stopped, and killed if its saved state is whole, else let go on.
        wait_for(lambda: _stopped_whole(driver.pid, experiment_dir), "a moment with the saved state whole",
                 driver=driver)  # fmt: skip
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    before = reported_epochs(experiment_dir)
    assert not (experiment_dir / "summary.json").exists(), "the search ended before the kill: nothing to resume"

    # Killed during Ray's copy of a save to the storage (its searcher's state cut to 0 bytes, as one core once
    # left it here): the resume is refused by name, before Ray, and the experiment is left as it was.
    cut = tmp_path / "cut"
    shutil.copytree(experiment_dir, cut)
    (newest := max(cut.glob("search_gen_state-*.json"))).write_bytes(b"")
    files = {path: path.read_bytes() for path in cut.rglob("*") if path.is_file()}
    capsys.readouterr()
    assert main(["resume", str(cut)]) == 2
    assert f"Cannot resume {cut}: Tune's saved state {newest.name} is damaged (0 bytes)." in capsys.readouterr().err
    assert {path: path.read_bytes() for path in cut.rglob("*") if path.is_file()} == files
    assert main(["report", str(cut)]) == 0, capsys.readouterr().err[-2000:]  # as the message says

    code = main(["resume", str(experiment_dir)])  # the user's next command, here on the tests' shared Ray
    assert code == 0, capsys.readouterr().err[-3000:]
    after = reported_epochs(experiment_dir)
    trials = pd.read_csv(experiment_dir / "trials.csv")
    assert len(trials) == 4 and set(trials["state"]) == {"FINISHED"}  # never more trials than --num-samples
    for trial, epochs in after.items():
        if len(before.get(trial, [])) > 1:  # it had a checkpoint after epoch 1 when the driver was killed
            assert_continued_from_checkpoint(trial, epochs, 3)
        else:
            assert sorted(set(epochs)) == [1, 2, 3] and len(epochs) - len(set(epochs)) <= 1, (trial, epochs)
    finished_before = [t for t, e in before.items() if e[-1:] == [3]]
    assert finished_before
    for trial in finished_before:  # left alone, or (its last checkpoint newer than Tune's last state save, which
        # Ray now forces only when a trial has made CHECKPOINTS_KEPT = 2 since) its last epoch trained once more
        assert after[trial] in (before[trial], before[trial] + [3]), (trial, before[trial], after[trial])
    # Ray keeps each trial's newest CHECKPOINTS_KEPT = 2. (A folder outside trials.csv may remain: a trial started
    # after Tune's last state save, which the restored searcher suggested again under a new id.)
    for trial_id in trials["trial_id"]:
        kept = sorted(json.loads((c / "state.json").read_text())["epoch"]
                      for c in (experiment_dir / f"trial_{trial_id}").glob("checkpoint_*"))  # fmt: skip
        assert kept == [2, 3], (trial_id, kept)


def test_a_final_model_of_checkpoints_takes_the_next_trials_that_raise_its_val_accuracy(ray_local, tmp_path) -> None:
    """When the best config's retraining does not fit in the time left (here: trials recorded as 11 days long),
    the final model is the best trial's checkpoint, joined by the next trials' checkpoints that raise its
    validation accuracy; saved as it was tested. ``--final-model checkpoint`` keeps the one checkpoint."""
    from rtune_fashion.experiment import _final_model, _trial_summary

    settings = ExperimentSettings(space="mlp_hyperas", searcher="random", num_samples=4, max_epochs=2,
                                  storage=str(tmp_path), retrain=False, time_budget_s=None)  # fmt: skip
    data = load_fashion_mnist(subset={"train": 2000, "val": 500, "test": 300})
    run_experiment(settings, echo=lambda _: None, data=data)
    results = tune.Tuner.restore(settings.experiment_uri, train_trial).get_results()
    ranked = [{**_trial_summary(t), "trial_time_s": 1e6} for t in load_experiment(settings.experiment_dir).ranked()]

    final = _final_model(dataclasses.replace(settings, final_model="auto"), ranked, data, results,
                         time.time() + 600, in_driver=True)  # fmt: skip
    assert final["source"] == "checkpoint" and final["trial_id"] == ranked[0]["trial_id"]
    assert final["why"].startswith("retraining would take about ")  # 1e6 s x its best epoch's share of them
    members = final.get("member_trial_ids", [ranked[0]["trial_id"]])
    assert final["members"] == len(members) <= 3 and members[0] == ranked[0]["trial_id"]
    assert set(members) <= {t["trial_id"] for t in ranked}
    assert final["val_accuracy"] >= final["member_val_accuracy"][0]  # a member joins only to raise it ...
    assert min(final["member_val_accuracy"]) >= final["member_val_accuracy"][0] - 0.02  # ... and only a close one
    if final["members"] > 1:
        assert f"averaged with the checkpoints of trial(s) {', '.join(members[1:])}" in final["why"]
    saved = keras.models.load_model(settings.experiment_dir / "best_model.keras")
    assert saved.evaluate(data.x_test, data.y_test, verbose=0)[1] == pytest.approx(final["test_accuracy"])

    asked = _final_model(dataclasses.replace(settings, final_model="checkpoint"), ranked, data, results,
                         time.time() + 600, in_driver=True)  # fmt: skip
    assert asked["members"] == 1 and "member_trial_ids" not in asked and asked["why"] == "--final-model checkpoint"


@ray.remote(num_cpus=1)
class HoldsACpu:
    def ready(self) -> bool:
        return True


def _cpus_given(cpus: float, gpus: float) -> float:
    return cpus


def test_the_final_step_takes_the_free_cpus_when_part_of_the_node_stays_held(ray_local, monkeypatch) -> None:
    """The final step asks for a whole node's CPUs as a Ray task on a Ray this process did not start; with one of
    the two CPUs held (another job's actor here; once, in CI, a CPU Ray never gave back) it waited for ever."""
    from rtune_fashion import experiment

    if RAY_CPUS < 2:
        pytest.skip("needs a Ray of two CPUs: one held, one free")
    monkeypatch.setattr(experiment, "FINAL_STEP_WAIT_S", 1.0)
    holder = HoldsACpu.remote()
    ray.get(holder.ready.remote())
    # Ray counts a CPU within a second of handing it out: a minute is a hang guard, which names what holds CPUs
    wait_for(lambda: ray.available_resources().get("CPU", 0) == RAY_CPUS - 1, "the held CPU in Ray's count",
             timeout=60, explain=what_holds_cpus)  # fmt: skip
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        settings = ExperimentSettings(space="mlp_hyperas", searcher="random", cpus_per_trial=1, gpus_per_trial=0)
        step = pool.submit(experiment._run_final_step, settings, False, _cpus_given)  # resolved as run_experiment does
        assert step.result(timeout=HANG_TIMEOUT_S) == RAY_CPUS - 1  # the free ones, not the whole node
    finally:
        pool.shutdown(wait=False)
        ray.kill(holder)
