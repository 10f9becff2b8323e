"""scripts/reproduce_articles.py: trains the presets, writes the JSON and the table next to the articles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import load_script

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "reproduce_articles.py"


def _run(capsys, *args: str) -> tuple[int, str]:
    """``python scripts/reproduce_articles.py ARGS``, in this process: (exit code, standard error)."""
    try:
        code = load_script(SCRIPT).main(list(args))
    except SystemExit as exit_:  # argparse's refusals
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_presets_are_trained_per_seed_and_tabled_next_to_the_articles(tmp_path: Path, capsys) -> None:
    doc, out = tmp_path / "results.md", tmp_path / "runs.json"
    doc.write_text("# Results\n\nhand-written text that must stay\n")
    code, err = _run(capsys, "--presets", "baseline_softmax", "lenet", "--seeds", "0", "1", "--epochs", "1",
                     "--train-size", "300", "--val-size", "200", "--test-size", "200", "--json", str(out),
                     "--doc", str(doc))  # fmt: skip
    assert code == 0, err[-3000:]
    runs = json.loads(out.read_text())
    assert [(r["preset"], r["seed"]) for r in runs] == [("baseline_softmax", 0), ("baseline_softmax", 1),
                                                        ("lenet", 0), ("lenet", 1)]  # fmt: skip
    assert all(r["epochs"] == 1 and 0 <= r["test"] <= 1 and r["best_val"] >= r["val"] for r in runs)
    assert runs[0]["test"] != runs[1]["test"] or runs[0]["val"] != runs[1]["val"]  # the seed matters
    text = doc.read_text()
    assert "hand-written text that must stay" in text
    row = next(line for line in text.splitlines() if line.startswith("| baseline_softmax |"))
    assert "1 (--epochs)" in row and "(2 seeds)" in row and "0.8587 / 0.8552 / 0.8375" in row
    assert "| lenet | D |" in text and "0.9321 / 0.9091 / -" in text

    rebuilt = tmp_path / "rebuilt.md"
    assert _run(capsys, "--from-json", str(out), "--doc", str(rebuilt))[0] == 0
    assert row in rebuilt.read_text()  # the same table from the saved runs, nothing trained


def test_unreadable_runs_and_bad_values_are_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    code, err = _run(capsys, "--from-json", str(tmp_path / "bad.json"), "--doc", str(tmp_path / "r.md"))
    assert code == 2 and "Cannot read the runs" in err and "Fix: give the JSON files" in err
    assert not (tmp_path / "r.md").exists()
    code, err = _run(capsys, "--epochs", "0")
    assert code == 2 and "--epochs must be a positive integer, got 0" in err
