"""Bad input on the command line: one clear line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from rtune_fashion.cli import main

RUN = ["run", "--space", "mlp_hyperas", "--searcher", "hyperopt"]


def _fails(capsys, argv: list[str], message: str) -> str:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    return err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-samples", "0"], "argument --num-samples: must be a positive integer, got '0'"),
        (["--max-epochs", "-3"], "argument --max-epochs: must be a positive integer, got '-3'"),
        (["--max-epochs", "ten"], "argument --max-epochs: must be a positive integer, got 'ten'"),
        (["--cpus-per-trial", "0"], "argument --cpus-per-trial: must be a number above 0, got '0'"),
        (["--gpus-per-trial", "-0.5"], "argument --gpus-per-trial: must be a number of 0 or more, got '-0.5'"),
        (["--gpus-per-trial", "nan"], "argument --gpus-per-trial: must be a number of 0 or more, got 'nan'"),
        (["--gpus-per-trial", "1.5"], "above 1 it must be a whole number of GPUs"),
        (["--space", "cnn"], "argument --space: invalid choice: 'cnn'"),
        (["--searcher", "tpe"], "argument --searcher: invalid choice: 'tpe'"),
        (["--scheduler", "bohb"], "Searcher 'hyperopt' cannot run with scheduler 'bohb'"),
        (["--max-failures", "-2"], "--max-failures must be -1 (retry forever) or more, got -2"),
        (["--time-budget", "0"], "argument --time-budget: must be a number of seconds above 0, or none, got '0'"),
        (["--time-budget", "soon"], "argument --time-budget: must be a number of seconds above 0, or none, got 'soon'"),
        (["--final-model", "best"], "argument --final-model: invalid choice: 'best'"),
        (["--min-epochs", "0"], "argument --min-epochs: must be a positive integer, got '0'"),
        (["--brackets", "0"], "argument --brackets: must be a positive integer, got '0'"),
        (["--ensemble", "0"], "argument --ensemble: must be a positive integer, got '0'"),
        (["--min-epochs", "5", "--max-epochs", "4"], "--min-epochs 5 is more than --max-epochs 4: no trial could be "
                                                     "stopped early. Fix: a --min-epochs of at most --max-epochs"),
        (["--name", "a/b"], "--name 'a/b' must be one folder name (the experiment's folder under --storage), "
                            "without / or \\. Fix: --name my_search"),
        (["--name", ".."], "--name '..' must be one folder name"),
    ],
)
def test_bad_run_flags(capsys, tmp_path: Path, flags: list[str], message: str) -> None:
    _fails(capsys, [*RUN, "--storage", str(tmp_path), *flags], message)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_grid_space_with_model_based_searcher(capsys, tmp_path: Path) -> None:
    _fails(capsys, ["run", "--space", "mlp_grid", "--searcher", "optuna", "--storage", str(tmp_path)],
           "is a grid (tune.grid_search), which the 'optuna' searcher cannot sample")  # fmt: skip


def test_missing_data_dir(capsys, tmp_path: Path) -> None:
    _fails(capsys, [*RUN, "--storage", str(tmp_path), "--data-dir", str(tmp_path / "nowhere")],
           "nowhere (from --data-dir) does not exist")  # fmt: skip


def test_unwritable_storage(capsys, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    storage = blocker / "results"
    err = _fails(capsys, [*RUN, "--storage", str(storage)], f"Cannot write to the storage {storage}")
    assert "Fix: give --storage a writable directory" in err


def test_resume_without_an_experiment(capsys, tmp_path: Path) -> None:
    _fails(capsys, [*RUN, "--storage", str(tmp_path), "--resume"], "holds no experiment to resume")
    _fails(capsys, ["resume", str(tmp_path / "nothing")], "is not an rtune experiment directory")


def _settings(argv: list[str], script_defaults: dict | None = None):
    from rtune_fashion.cli import add_experiment_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_experiment_arguments(parser, script_defaults or {})
    return settings_from_args(parser.parse_args(argv), script_defaults)


def test_grid_searcher_makes_one_pass_by_default() -> None:
    grid = _settings(["--space", "mlp_grid", "--searcher", "grid"])
    other = _settings(["--space", "mlp_hyperas", "--searcher", "optuna"])
    assert (grid.num_samples, other.num_samples) == (1, 10)


MAIN_SCRIPT = {"space": "cnn_wide", "searcher": "bohb", "max_epochs": 12, "min_epochs": 3, "time_budget_s": 1200}


def test_a_script_s_budget_leaves_the_trial_count_to_the_plan_and_none_lifts_it() -> None:
    settings = _settings([], MAIN_SCRIPT)
    assert (settings.time_budget_s, settings.max_epochs, settings.num_samples) == (1200, 12, None)
    assert settings.min_epochs == 3
    assert settings.train_size is None  # chosen by the plan after measuring
    assert _settings(["--time-budget", "none"], MAIN_SCRIPT).time_budget_s is None
    assert _settings(["--time-budget", "none"], MAIN_SCRIPT).num_samples == 10


def test_a_script_s_min_epochs_is_fitted_to_the_epochs_typed_and_a_typed_one_is_kept() -> None:
    assert _settings(["--max-epochs", "9"], MAIN_SCRIPT).min_epochs == 2  # BOHB's brackets at 9 start at 1 or 2
    assert _settings(["--max-epochs", "2"], MAIN_SCRIPT).min_epochs == 1
    assert _settings(["--max-epochs", "2", "--searcher", "optuna"], MAIN_SCRIPT).min_epochs == 2  # ASHA: any
    assert _settings(["--min-epochs", "5", "--max-epochs", "4"], MAIN_SCRIPT).min_epochs == 5  # refused later


def test_smoke_test_fills_only_what_the_user_left_unset() -> None:
    smoke = _settings(["--smoke-test"], MAIN_SCRIPT)
    assert (smoke.num_samples, smoke.max_epochs, smoke.train_size, smoke.val_size) == (2, 2, 600, 300)
    assert (smoke.max_concurrent, smoke.final_model) == (1, "checkpoint")
    assert smoke.time_budget_s is None and smoke.min_epochs == 1  # the script's 20 minutes are for the real job
    typed = _settings(["--smoke-test", "--num-samples", "6", "--max-epochs", "4", "--train-size", "2000"], MAIN_SCRIPT)
    assert (typed.num_samples, typed.max_epochs, typed.train_size, typed.val_size) == (6, 4, 2000, 300)


def test_describe_preset_prints_the_layer_table(capsys) -> None:
    assert main(["describe", "hyperas_best_cnn"]) == 0
    out = capsys.readouterr().out
    assert "block2_conv2_bn" in out and "7x7x64" in out and "dense1_dropout" in out


def test_describe_config_and_its_errors(capsys) -> None:
    assert main(["describe", "--config", json.dumps({"model": "mlp", "num_layers": 1, "units": 7})]) == 0
    assert "dense1" in capsys.readouterr().out
    _fails(capsys, ["describe", "--config", "{model: mlp}"], "--config is not valid JSON")
    impossible = json.dumps({"model": "cnn", "num_blocks": 6, "convs_per_block": 1})
    _fails(capsys, ["describe", "--config", impossible], "block5_pool (2x2) gets a 1x1 feature map")
    _fails(capsys, ["describe", "lenet5"], "Unknown preset 'lenet5'. Presets: baseline_softmax")


def test_describe_lists_keys_and_spaces(capsys) -> None:
    assert main(["describe", "--keys"]) == 0
    assert "units_<i>" in capsys.readouterr().out
    assert main(["describe", "--spaces"]) == 0
    out = capsys.readouterr().out
    assert "cnn_wide" in out
    assert "used only: units_2 when num_layers is 2 or 3; units_3 when num_layers is 3" in out  # mlp_kerastuner


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_samples": 0}, "--num-samples must be a positive integer, got 0"),
        ({"max_epochs": 2.5}, "--max-epochs must be a positive integer, got 2.5"),
        ({"cpus_per_trial": 0}, "--cpus-per-trial must be above 0, got 0"),
        ({"gpus_per_trial": -1}, "--gpus-per-trial must be 0 or more, got -1"),
        ({"max_concurrent": 0}, "--max-concurrent must be a positive integer, got 0"),
        ({"time_budget_s": -5}, "--time-budget must be a positive number of seconds, got -5"),
        ({"final_model": "best"}, "--final-model must be one of auto, retrain, checkpoint, got 'best'"),
        ({"brackets": 0}, "--brackets must be a positive integer, got 0"),
        ({"ensemble": 0}, "--ensemble must be a positive integer, got 0"),
        ({"ensemble": 2, "final_model": "checkpoint"}, "--ensemble 2 has no effect with --final-model checkpoint: "
                                                       "an ensemble is made of retrainings. Fix: leave --ensemble"),
        ({"ensemble": 3, "retrain": False}, "--ensemble 3 has no effect with --no-retrain"),
        ({"brackets": 2, "scheduler": "fifo"}, "--brackets 2 has no effect with --scheduler fifo"),
    ],
)
def test_settings_are_checked_for_python_callers_too(changes: dict, message: str) -> None:
    from rtune_fashion.errors import ExperimentError
    from rtune_fashion.experiment import ExperimentSettings

    with pytest.raises(ExperimentError, match=re.escape(message)):
        ExperimentSettings(space="mlp_hyperas", searcher="hyperopt", **changes).check()


@pytest.mark.slow
def test_train_a_preset_over_seeds_reports_each_and_the_spread(capsys, tmp_path) -> None:
    argv = ["train", "baseline_softmax", "--epochs", "1", "--seeds", "0", "1", "--train-size", "200", "--val-size",
            "100", "--test-size", "100", "--save", str(tmp_path / "m_{seed}.keras")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Training baseline_softmax for 1 epochs on 200 examples, seeds 0, 1" in out
    assert out.count("seed 0: train") == 1 and out.count("seed 1: train") == 1
    assert "test: " in out and "over 2 seed(s)" in out
    assert (tmp_path / "m_0.keras").is_file() and (tmp_path / "m_1.keras").is_file()


def test_train_needs_a_preset_or_a_config(capsys) -> None:
    _fails(capsys, ["train"], "give a preset (baseline_softmax")
    _fails(capsys, ["train", "lenet5"], "Unknown preset 'lenet5'")
    _fails(capsys, ["train", "--config", "{oops"], "--config is not valid JSON")
    _fails(capsys, ["train", "lenet", "--epochs", "0"], "--epochs")
