"""CSV tables for cross-validated searches: the Pima table, named labels, and every bad input refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtune_fashion.errors import DataError
from rtune_fashion.tabular import PIMA_SHA256, load_csv, pima_csv, sha256
from tests.helpers import ROOT

PIMA = ROOT.parent / "shared" / "data" / "pima-indians-diabetes.csv"
needs_pima = pytest.mark.skipif(not PIMA.exists(), reason="the Pima CSV of ../shared/data is not here")


@needs_pima
def test_pima_table_reads_as_the_article_describes() -> None:
    data = load_csv(PIMA)
    assert data.x.shape == (768, 8) and data.x.dtype == np.float32
    assert data.class_names == ("0", "1") and np.bincount(data.y).tolist() == [500, 268]
    assert data.x[0].tolist() == pytest.approx([6, 148, 72, 35, 0, 33.6, 0.627, 50])
    assert sha256(PIMA) == PIMA_SHA256


def test_header_and_named_label_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("kind,a,b\nyes,1,2\nno,3,4\nyes,5,6\n")
    data = load_csv(path, label="kind")
    assert data.feature_names == ("a", "b") and data.label_name == "kind"
    assert data.class_names == ("no", "yes") and data.y.tolist() == [1, 0, 1]
    assert load_csv(path, label="0").label_name == "kind"


def test_a_headerless_table_with_text_labels_keeps_its_first_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("6,148,tested_positive\n1,85,tested_negative\n8,183,tested_positive\n")
    data = load_csv(path)
    assert len(data.y) == 3 and data.x[0].tolist() == [6, 148] and data.label_name == "column_2"
    assert data.class_names == ("tested_negative", "tested_positive") and data.y.tolist() == [1, 0, 1]


@pytest.mark.parametrize(("text", "label", "message"), [
    ("", None, "is empty"),
    ("1,2,0\n3,4\n", None, "line 2 has 2 columns, the first row has 3"),
    ("a,b,y\n1,x,0\n2,3,1\n", None, "line 2, column 'b': 'x' is not a number"),
    ("1,nan,0\n2,3,1\n", None, "line 1, column 'column_1' is NaN or infinite"),
    ("1,2,0\n3,4,0\n", None, "has only ['0']"),
    ("a,b,y\n1,2,0\n3,4,1\n", "z", "has no label column 'z'; its columns are: a, b, y"),
])  # fmt: skip
def test_bad_tables_are_refused_with_the_problem_named(tmp_path: Path, text: str, label, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match="Fix:") as error:
        load_csv(path, label=label)
    assert message in str(error.value)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope.csv does not exist. Fix: give the path of a CSV file"):
        load_csv(tmp_path / "nope.csv")


@needs_pima
def test_download_is_kept_only_when_its_checksum_matches(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    corrupted = tmp_path / "corrupted.csv"
    corrupted.write_bytes(PIMA.read_bytes()[:-10])
    monkeypatch.setenv("RTUNE_PIMA_URL", corrupted.as_uri())
    with pytest.raises(DataError, match=r"is not valid: SHA-256 .* \(not the expected Pima table\)"):
        pima_csv()
    assert not list((tmp_path / "keras" / "datasets").iterdir())  # nothing half-written stays
    monkeypatch.setenv("RTUNE_PIMA_URL", PIMA.as_uri())
    cached = pima_csv()
    assert cached == tmp_path / "keras" / "datasets" / "pima-indians-diabetes.csv" and sha256(cached) == PIMA_SHA256
    monkeypatch.setenv("RTUNE_PIMA_URL", corrupted.as_uri())
    assert pima_csv() == cached  # the verified copy is used, no second download
