"""scripts/reproduce_articles.py: trains the presets, writes the JSON and the table next to the articles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ENV, HANG_TIMEOUT_S

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "reproduce_articles.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=ENV, capture_output=True, text=True,
                          timeout=HANG_TIMEOUT_S, check=False)  # fmt: skip


@pytest.mark.slow
def test_presets_are_trained_per_seed_and_tabled_next_to_the_articles(tmp_path: Path) -> None:
    doc, out = tmp_path / "results.md", tmp_path / "runs.json"
    doc.write_text("# Results\n\nhand-written text that must stay\n")
    done = _run("--presets", "baseline_softmax", "lenet", "--seeds", "0", "1", "--epochs", "1", "--train-size",
                "300", "--val-size", "200", "--test-size", "200", "--json", str(out), "--doc", str(doc))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
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
    assert _run("--from-json", str(out), "--doc", str(rebuilt)).returncode == 0
    assert row in rebuilt.read_text()  # the same table from the saved runs, nothing trained


def test_unreadable_runs_and_bad_values_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    done = _run("--from-json", str(tmp_path / "bad.json"), "--doc", str(tmp_path / "r.md"))
    assert done.returncode == 2 and "Cannot read the runs" in done.stderr and "Fix: give the JSON files" in done.stderr
    assert not (tmp_path / "r.md").exists()
    done = _run("--epochs", "0")
    assert done.returncode == 2 and "--epochs must be a positive integer, got 0" in done.stderr
