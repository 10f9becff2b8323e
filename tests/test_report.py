"""`rtune report` and `rtune compare` on a real experiment, read while it runs and after it ends."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

from rtune_fashion.cli import main
from rtune_fashion.importance import Importance
from rtune_fashion.models import build_model
from rtune_fashion.report import compare, write_report
from rtune_fashion.results import load_experiment
from rtune_fashion.runtime_values import parameter_count
from tests.helpers import HANG_TIMEOUT_S, ROOT, has_checkpoint, reported_epochs, start_driver, wait_for

# One worker, one experiment: the group keeps this module on one worker (tests/test_suite_setup.py checks
# that groups work; when they did not, the search ran on both workers, 35 s each), and the fixture is
# session-scoped so that its search runs once there even if the worker runs other tests in between.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report")]
NAME = "reported"


def _result_rows(experiment_dir: Path) -> dict[str, list[dict]]:
    """Every trial's result.json rows, read directly (the ground truth the report must agree with)."""
    return {
        path.parent.name.removeprefix("trial_"): [json.loads(line) for line in path.read_text().splitlines() if line]
        for path in experiment_dir.glob("trial_*/result.json")
    }


@pytest.fixture(scope="session")
def experiment(tmp_path_factory) -> dict:
    """A real MLP search (hyperopt + ASHA, one trial at a time), reported once mid-run and once at the end."""
    storage = tmp_path_factory.mktemp("report")
    experiment_dir = storage / NAME
    args = [str(ROOT / "experiments" / "mlp_hyperopt.py"), "--storage", str(storage), "--name", NAME,
            "--num-samples", "8", "--max-epochs", "5", "--max-concurrent", "1", "--train-size", "1500",
            "--val-size", "500", "--test-size", "500", "--no-retrain", "--time-budget", "none"]  # fmt: skip
    driver = start_driver(args, storage)
    try:
        # A checkpoint can be on disk before its epoch's row is in result.json (seen on one slow core): wait
        # for the row too, so the mid-run report has an epoch to show on any machine.
        def first_epoch_reported() -> bool:
            return (has_checkpoint(experiment_dir) and any(experiment_dir.glob("experiment_state-*.json"))
                    and any(reported_epochs(experiment_dir).values()))  # fmt: skip

        wait_for(first_epoch_reported, "a first reported epoch", driver=driver)
        mid_run = write_report(experiment_dir)
        running_after_report = driver.poll() is None
        out, err = driver.communicate(timeout=HANG_TIMEOUT_S)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err[-3000:]
    return {"dir": experiment_dir, "mid_run": mid_run, "running_after_report": running_after_report,
            "final": write_report(experiment_dir), "stdout": out, "stderr": err}  # fmt: skip


def test_report_reads_a_running_experiment(experiment: dict) -> None:
    assert experiment["running_after_report"], "the search ended before the report was read; make it longer"
    mid_run = experiment["mid_run"]
    assert not mid_run.record.search_done
    assert "search running, or interrupted" in mid_run.text
    assert sum(t.epochs for t in mid_run.record.trials) >= 1
    counts = mid_run.record.counts()
    assert counts["FINISHED"] + counts["STOPPED_EARLY"] < 8  # not everything reads as ended
    assert all(t.epochs == 5 for t in mid_run.record.trials if t.state == "FINISHED")
    assert mid_run.markdown_path.exists() and mid_run.pictures["anytime"].exists()


def test_ranked_table_and_trials_csv_agree_with_the_results(experiment: dict) -> None:
    report, rows = experiment["final"], _result_rows(experiment["dir"])
    best_of = {trial_id: max(r["val_accuracy"] for r in results) for trial_id, results in rows.items()}
    best_id = max(best_of, key=best_of.get)
    assert report.record.search_done and len(report.record.trials) == 8

    trials = pd.read_csv(experiment["dir"] / "trials.csv")
    assert trials["trial_id"].iloc[0] == best_id
    assert dict(zip(trials["trial_id"], trials["best_val_accuracy"], strict=True)) == pytest.approx(best_of)
    assert dict(zip(trials["trial_id"], trials["epochs"], strict=True)) == {k: len(v) for k, v in rows.items()}
    assert set(trials["state"]) <= {"FINISHED", "STOPPED_EARLY"}
    stopped = trials[trials["state"] == "STOPPED_EARLY"]
    assert all(stopped["epochs"] < 5) and all(trials[trials["state"] == "FINISHED"]["epochs"] == 5)

    first_row = report.text.split("config (what differs between trials)\n")[1].splitlines()[0]
    assert first_row.split()[:2] == ["1", best_id] and f"{best_of[best_id]:.4f}" in first_row
    counts = trials["state"].value_counts()
    assert (f"Trials: {counts.get('FINISHED', 0)} finished, {counts.get('STOPPED_EARLY', 0)} stopped early, "
            "0 diverged, 0 errored") in report.text  # fmt: skip


def test_best_configuration_is_shown_as_its_architecture(experiment: dict) -> None:
    report = experiment["final"]
    best = report.record.best()
    model = build_model(best.config, (28, 28, 1), 10)
    assert f"total parameters: {parameter_count(model):,}" in report.text
    assert "layer" in report.text and "output shape" in report.text
    markdown = report.markdown_path.read_text()
    assert f"total parameters: {parameter_count(model):,}" in markdown


def test_anytime_curve_is_the_running_best_over_epochs_consumed(experiment: dict) -> None:
    curve, rows = experiment["final"].curve, _result_rows(experiment["dir"])
    assert curve.epochs[-1] == sum(len(r) for r in rows.values())
    assert curve.best == sorted(curve.best)  # never goes down
    assert curve.best[-1] == pytest.approx(max(r["val_accuracy"] for rs in rows.values() for r in rs))
    assert curve.seconds == sorted(curve.seconds) and curve.seconds[0] >= 0
    assert curve.first_reaching(curve.best[-1]) is not None and curve.first_reaching(1.01) is None


def test_report_pictures_are_written_and_linked(experiment: dict) -> None:
    report = experiment["final"]
    markdown = report.markdown_path.read_text()
    assert {"anytime", "learning_curves", "parallel_coordinates"} <= set(report.pictures)
    for path in report.pictures.values():
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 500 and image.std() > 0.01  # drawn, not blank
        assert f"report_files/{path.name}" in markdown


def test_importance_is_computed_at_a_budget_most_trials_reached(experiment: dict) -> None:
    report = experiment["final"]
    importance = report.importance
    if not isinstance(importance, Importance):
        pytest.fail(f"no importance: {importance}")
    assert sum(importance.values.values()) == pytest.approx(1.0)
    reached = sum(t.epochs >= importance.budget_epochs for t in report.record.trials)
    assert reached == importance.num_trials >= 3 and reached >= len(report.record.trials) / 2
    assert set(importance.values) <= set().union(*(t.layer_config for t in report.record.trials))
    assert "importance.png" in report.markdown_path.read_text()


def test_compare_tabulates_time_to_accuracy(experiment: dict, tmp_path: Path) -> None:
    copy = tmp_path / "copy" / NAME
    shutil.copytree(experiment["dir"], copy)  # the same search stored elsewhere: labels must stay apart
    best = experiment["final"].curve.best[-1]
    target = math.floor(best * 100) / 100
    comparison = compare([experiment["dir"], copy], tmp_path / "out", targets=[target, 0.999])
    assert len(comparison.curves) == 2 and len(set(comparison.curves)) == 2
    markdown = comparison.markdown_path.read_text()
    hit = experiment["final"].curve.first_reaching(target)
    assert f"{hit[0] / 60:.1f} min / {hit[1]} ep" in markdown
    assert "not reached" in markdown  # 0.999
    assert matplotlib.image.imread(comparison.picture).std() > 0.01


def test_cli_report_and_compare(experiment: dict, tmp_path: Path, capsys) -> None:
    assert main(["report", str(experiment["dir"]), "--top", "3"]) == 0
    assert "Best trial" in capsys.readouterr().out
    assert main(["compare", str(experiment["dir"]), "--output-dir", str(tmp_path)]) == 0
    assert (tmp_path / "compare.md").exists() and (tmp_path / "compare.png").exists()


def test_live_progress_is_short_lines_without_worker_noise(experiment: dict) -> None:
    out, err = experiment["stdout"], experiment["stderr"]
    status = [line for line in out.splitlines() if "running," in line and "| best val_accuracy" in line]
    assert status, out[-2000:]
    final = load_experiment(experiment["dir"]).counts()
    assert (f"0 running, 0 pending, {final['FINISHED']} finished, {final['STOPPED_EARLY']} stopped early"
            in status[-1])  # fmt: skip
    for noise in ("oneDNN", "cuda", "Checkpoint successfully created", "Trial status:", "╭"):
        assert noise not in out + err, noise


@pytest.mark.parametrize(("args", "message"), [
    (["compare", "X", "--targets", "1.5"], "argument --targets: must be accuracies in (0, 1]"),
    (["compare", "X", "--targets", "a,b"], "argument --targets: must be accuracies in (0, 1]"),
    (["report", "X", "--top", "0"], "argument --top: must be a positive integer"),
])  # fmt: skip
def test_bad_report_flags_are_refused(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_report_of_a_directory_without_an_experiment_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no Ray Tune experiment yet" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_trials_best_epoch_is_the_first_to_reach_its_best_val_accuracy() -> None:
    from rtune_fashion.results import TrialRecord

    history = [{"epoch": e, "val_accuracy": v} for e, v in [(1, 0.80), (2, 0.86), (3, 0.86), (4, 0.84)]]
    trial = TrialRecord("t", "FINISHED", {}, history)
    assert (trial.best_epoch, trial.epochs, trial.best_val_accuracy) == (2, 4, 0.86)
    assert TrialRecord("u", "PENDING", {}).best_epoch == 0


def test_trials_csv_keeps_an_integer_key_that_some_trials_leave_out_an_integer(tmp_path: Path) -> None:
    """A conditional key (units_3 only at three layers) is blank where unused and 512, not 512.0, where used."""
    from rtune_fashion.results import ExperimentRecord, TrialRecord, write_trials_csv

    deep = TrialRecord("deep", "FINISHED", {"model": "mlp", "num_layers": 3, "units_3": 512}, [])
    shallow = TrialRecord("shallow", "FINISHED", {"model": "mlp", "num_layers": 2}, [])
    path = write_trials_csv(ExperimentRecord(tmp_path, {}, [deep, shallow], True, None))
    rows = {line.split(",")[0]: line for line in path.read_text().splitlines()[1:]}
    header = path.read_text().splitlines()[0].split(",")
    column = header.index("config/units_3")
    assert rows["deep"].split(",")[column] == "512" and rows["shallow"].split(",")[column] == ""
