"""Tabular CSV datasets: numeric feature columns and a label column, for cross-validated searches.

:func:`load_csv` reads a CSV file (with or without a header row), checks every cell and returns a
:class:`TabularData`. The label column is the last one unless named (``label="Outcome"``) or given by
index; labels may be any values and are numbered in sorted order. Nothing is scaled here:
standardisation is fitted on each fold's training rows (:mod:`rtune_fashion.crossval`).

:func:`pima_csv` finds the Pima Indians diabetes table of article B: an explicit path, else the copy in
Keras' cache, else a download from a public copy, verified against its SHA-256 before it is kept.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtune_fashion.errors import DataError
from rtune_fashion.files import download_verified, keras_home
from rtune_fashion.labels import class_numbers

PIMA_FILE = "pima-indians-diabetes.csv"
PIMA_URL = "https://raw.githubusercontent.com/jbrownlee/Datasets/master/pima-indians-diabetes.data.csv"
PIMA_SHA256 = "6bfe5d0f379d17a0e0819b996407e3c09bf80febd4287f2ed212190dfff154af"
PIMA_URL_VARIABLE = "RTUNE_PIMA_URL"


@dataclass
class TabularData:
    """Features as float32 (rows x columns), labels as int64 class indices into ``class_names``."""

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    label_name: str
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_csv(path: str | os.PathLike, label: str | int | None = None) -> TabularData:
    """Read a CSV of numeric features and one label column.

    Args:
        label: the label column's header name or 0-based index; None = the last column.

    Raises:
        DataError: a missing or empty file, rows of different lengths, a non-numeric or empty feature cell
            (row and column named), an unknown label column, or fewer than two classes.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist. Fix: give the path of a CSV file (--csv PATH).")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a byte-order mark is not in the first name
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error}). Fix: save the table as UTF-8 CSV.") from None
    if not rows:
        raise DataError(f"{path} is empty. Fix: a CSV with one row per example and a label column.")
    header = [cell.strip() for cell in rows[0]] if _has_header(rows, label) else None
    body = rows[1:] if header else rows
    width = len(rows[0])
    names = header or [f"column_{i}" for i in range(width)]
    if width < 2 or not body:
        raise DataError(f"{path} needs at least one feature column, a label column and one data row.")
    for number, row in enumerate(body, start=2 if header else 1):
        if len(row) != width:
            raise DataError(f"{path} line {number} has {len(row)} columns, the first row has {width}. "
                            "Fix: every row needs the same columns.")  # fmt: skip
    label_index = _label_index(label, names, path)
    features = [i for i in range(width) if i != label_index]
    x = np.empty((len(body), len(features)), dtype=np.float32)
    for r, row in enumerate(body):
        for c, i in enumerate(features):
            try:
                x[r, c] = float(row[i])
            except ValueError:
                line = r + (2 if header else 1)
                raise DataError(f"{path} line {line}, column {names[i]!r}: {row[i]!r} is not a number. Fix: "
                                "numeric feature columns only (encode categories first).") from None  # fmt: skip
    if not np.isfinite(x).all():
        r, c = np.argwhere(~np.isfinite(x))[0]
        raise DataError(f"{path} line {r + (2 if header else 1)}, column {names[features[c]]!r} is NaN or "
                        "infinite. Fix: fill or drop missing values first.")  # fmt: skip
    first_line = 2 if header else 1
    y, classes = class_numbers([row[label_index] for row in body],
                               lambda r: f"{path} line {r + first_line}, column {names[label_index]!r}")  # fmt: skip
    if len(classes) < 2:
        raise DataError(f"{path}: the label column {names[label_index]!r} has only {list(classes)}. Fix: name the "
                        "label column (--label) or check the file.")  # fmt: skip
    return TabularData(x, y, tuple(names[i] for i in features), names[label_index], classes)


def standardizer(x_train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Features scaled by the training rows' mean and standard deviation only (a constant column stays
    constant instead of dividing by zero); float32."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return lambda x: ((x - mean) / std).astype(np.float32)


def _has_header(rows: list[list[str]], label: str | int | None) -> bool:
    """Whether the first row names the columns: ``label`` is a column name, or a cell of the first row is
    text in a column whose other cells are all numbers. A text cell in a text column (labels such as
    ``tested_positive``) says nothing, so a headerless table with text labels keeps its first row."""
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        return True
    first, rest = rows[0], rows[1:]
    return any(not _is_number(cell) and rest and all(_is_number(row[i]) for row in rest if i < len(row))
               for i, cell in enumerate(first))  # fmt: skip


def _label_index(label: str | int | None, names: list[str], path: Path) -> int:
    if label is None:
        return len(names) - 1
    if isinstance(label, int) or (isinstance(label, str) and label.lstrip("-").isdigit()):
        index = int(label)
        if -len(names) <= index < len(names):
            return index % len(names)
    elif label in names:
        return names.index(label)
    raise DataError(f"{path} has no label column {label!r}; its columns are: {', '.join(names)}. Fix: --label "
                    "with one of these names or a 0-based index.")  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_pima(path: Path) -> None:
    digest = sha256(path)
    if digest != PIMA_SHA256:
        raise DataError(f"SHA-256 {digest}, not {PIMA_SHA256} (not the expected Pima table)")


def pima_csv(path: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The Pima CSV: ``path`` if given, else Keras' cache, else downloaded (and checked) into the cache.

    Raises:
        DataError: no copy, and the download failed or did not match the checksum.
    """
    if path is not None:
        return Path(path).expanduser()
    cached = keras_home() / "datasets" / PIMA_FILE
    if cached.is_file() and sha256(cached) == PIMA_SHA256:
        return cached
    if not download:
        raise DataError(f"No Pima CSV given and none in {cached}. Fix: --csv PATH.")
    url = os.environ.get(PIMA_URL_VARIABLE, PIMA_URL)
    download_verified(url, cached, _check_pima, "--csv PATH to a copy of the table.")
    return cached
