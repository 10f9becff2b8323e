"""scripts/benchmark.py runs and writes its JSON and its tables (no timing is asserted: numbers belong to
docs/benchmarks.md, not to tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rtune_fashion.files import replace_section
from tests.helpers import load_script

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "benchmark.py"


def _load_script():
    return load_script(SCRIPT)


@pytest.mark.slow
def test_quick_mode_runs_and_writes_json_and_its_sections_of_the_doc(ray_local, tmp_path: Path, capsys,
                                                                     monkeypatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- generated:gpu -->\n## GPU\n\nkept as it was\n<!-- /generated:gpu -->\n")
    out = tmp_path / "bench.json"
    # In this process, on the tests' shared Ray (--in-one-process: one Ray, no fresh Pythons): the path, not the times
    code = _load_script().main(
        ["--mode", "quick", "--sections", "time_to_target", "conditions", "data_path", "keras_tuner",
         "--condition-searchers", "bohb",
         "--repeats", "1", "--train-size", "300", "--val-size", "200", "--trials", "2", "--epochs", "2",
         "--batch-sizes", "128", "--targets", "0.0", "0.999", "--json", str(out), "--doc", str(doc),
         "--in-one-process",
         "--methods", "rtune BOHB, 1 bracket", "sequential hyperopt (Hyperas' way)"],  # the loop and the most settings
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err[-3000:]
    result = json.loads(out.read_text())
    runs = result["sections"]["time_to_target"]["runs"]
    # the methods asked for, in the table's order whatever the order typed: the loop first, the baseline
    assert result["sections"]["time_to_target"]["methods"] == ["sequential hyperopt (Hyperas' way)",
                                                               "rtune BOHB, 1 bracket"]  # fmt: skip
    assert {r["method"] for r in runs} == {"sequential hyperopt (Hyperas' way)", "rtune BOHB, 1 bracket"}
    sequential = next(r for r in runs if r["method"].startswith("sequential"))
    assert sequential["epochs"] == 4  # 2 trials x 2 epochs, each trained to the end
    for run in runs:
        first_epoch = run["seconds_to_target"]["0.0"]  # any accuracy: the first epoch reported
        assert first_epoch is not None and 0 < first_epoch <= run["wall_s"]
        assert run["seconds_to_target"]["0.999"] is None  # not reached on 300 images in two epochs
    kt_runs = result["sections"]["keras_tuner"]["runs"]
    assert {r["method"] for r in kt_runs} == {"Keras Tuner BayesianOptimization, batch 128",
                                              "rtune Optuna + ASHA, batch 128"}  # fmt: skip
    keras_tuner = next(r for r in kt_runs if r["method"].startswith("Keras Tuner"))
    assert keras_tuner["epochs"] == 4  # the real Keras Tuner ran 2 trials of 2 epochs each
    for run in kt_runs:
        assert 0 < run["seconds_to_target"]["0.0"] <= run["wall_s"] and run["seconds_to_target"]["0.999"] is None
    condition_runs = result["sections"]["conditions"]["runs"]  # BOHB flat and conditional, 2 trials of 2 epochs
    assert [r["method"] for r in condition_runs] == ["bohb, flat space", "bohb, conditional space"]
    assert all(0 < r["epochs"] <= 4 and r["seconds_to_target"]["0.0"] is not None for r in condition_runs)
    data_runs = result["sections"]["data_path"]["runs"]
    assert len(data_runs) == 3 * 3 and all(r["seconds"] > 0 for r in data_runs)  # 3 methods x 3 repeats

    text = doc.read_text()
    assert "kept as it was" in text  # the other section survives
    assert "| bohb, conditional space |" in text
    for section in ("time_to_target", "conditions", "data_path", "keras_tuner"):
        assert text.count(f"<!-- generated:{section} -->") == 1 and f"<!-- /generated:{section} -->" in text
    assert "| rtune BOHB, 1 bracket |" in text and "| rtune hyperopt + ASHA |" not in text
    assert ">= 0.999 (reached / runs)" in text and "not reached (0/1)" in text
    assert "| Keras Tuner BayesianOptimization, batch 128 |" in text and "Each tool at its best batch size:" in text
    assert "| object store (rtune trials) |" in text and "Command: `python scripts/benchmark.py --mode quick" in text


def test_a_method_runs_in_a_fresh_process_unless_asked_to_share_this_one() -> None:
    bench = _load_script()
    assert bench.in_fresh_process(False, os.getpid) == os.getpid()
    assert bench.in_fresh_process(True, os.getpid) != os.getpid()


def test_a_section_is_replaced_in_place_and_a_new_one_appended(tmp_path: Path) -> None:
    doc = tmp_path / "b.md"
    replace_section(doc, "overhead", "Framework overhead", "first", new_file="# Benchmarks\n")
    replace_section(doc, "data_path", "Data path", "data", new_file="unused")
    replace_section(doc, "overhead", "Framework overhead", "second", new_file="unused")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n") and "unused" not in text
    assert "first" not in text and text.count("second") == 1 and "data" in text
    assert text.index("<!-- generated:overhead -->") < text.index("<!-- generated:data_path -->")  # order kept


@pytest.mark.parametrize(("argv", "message"), [
    (["--repeats", "0"], "--repeats must be a positive integer, got 0"),
    (["--batch-sizes", "32", "0"], "--batch-sizes must be positive integers, got [32, 0]"),
    (["--in-one-process"], "--in-one-process leaves start-ups out, so its times must not go into docs/benchmarks.md"),
    (["--methods", "rtune ASHA"], "argument --methods: invalid choice: 'rtune ASHA' (choose from "),
])  # fmt: skip
def test_bad_values_are_refused_with_the_flag_named(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        _load_script().parse_args(argv)  # in this process: a new Python would import TensorFlow for this
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_epoch_timing_counts_only_epochs_while_all_trials_ran() -> None:
    bench = _load_script()
    # two trials, 1 epoch/s each; the second starts half a second later and its first epoch is slow (compiling)
    a = [{"epoch_time_s": t, "reported_at": at} for t, at in ((5.0, 10.0), (1.0, 11.0), (1.0, 12.0), (1.0, 13.0))]
    b = [{"epoch_time_s": t, "reported_at": at} for t, at in ((6.0, 10.5), (1.0, 11.5), (1.0, 12.5), (1.0, 13.5))]
    timing = bench.epoch_timing([a, b])
    assert timing["first_epoch_s"] == 5.5 and timing["steady_epoch_s"] == 1.0 and timing["epochs"] == 8
    assert timing["steady_epochs_per_s"] == pytest.approx(5 / 2.5)  # epochs ending in (10.5, 13.0]: both at 1/s
    assert timing["overall_epochs_per_s"] == pytest.approx(8 / (13.5 - 4.5))


def test_keras_tuners_side_samples_the_same_space_as_rtunes() -> None:
    """Article E's space in Keras Tuner's hp API draws exactly the values of rtune's mlp_kerastuner."""
    import keras_tuner

    from rtune_fashion.spaces import get_space

    hp = keras_tuner.HyperParameters()
    for num_layers in (1, 2, 3):  # conditional units: what each depth declares
        hp.values["num_layers"] = num_layers
        config = _load_script().article_e_config(hp, 32)
        assert config["num_layers"] == num_layers and sorted(k for k in config if k.startswith("units_")) == [
            f"units_{i}" for i in range(1, num_layers + 1)]  # fmt: skip
    space = get_space("mlp_kerastuner")
    declared = {h.name: h for h in hp.space}
    for name in ("num_layers", "units_1", "units_2", "units_3", "dropout", "optimizer", "learning_rate"):
        h = declared[name]
        values = list(h.values) if hasattr(h, "values") else list(range(h.min_value, h.max_value + 1, h.step or 1))
        assert sorted(values, key=str) == sorted(space.values_of(name), key=str), name
    assert {k: v for k, v in config.items() if k in ("momentum", "nesterov")} == {
        k: space.params[k] for k in ("momentum", "nesterov")}  # fmt: skip
