"""Class labels of any strings or numbers -> class indices and names, the same way for every kind of data."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rtune_fashion.errors import DataError


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def class_numbers(labels: Sequence[Any] | np.ndarray,
                  where: Callable[[int], str]) -> tuple[np.ndarray, tuple[str, ...]]:  # fmt: skip
    """(int64 class indices, class names): classes in sorted order, by value when every label is a number or
    a numeric string (``"2"`` before ``"10"``; ``1`` and ``"1.0"`` are one class, named ``1``), else as text
    (bytes decoded as UTF-8). ``where(i)`` names label ``i`` in messages (``"line 5"``, ``"y_train[4]"``).

    Raises:
        DataError: an empty, NaN or infinite label, named by ``where``.
    """
    values = [v.item() if isinstance(v, np.generic) else v for v in np.asarray(labels, dtype=object).tolist()]
    values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    values = [v.strip() if isinstance(v, str) else v for v in values]
    numbers = [_as_number(v) for v in values]
    for i, (value, number) in enumerate(zip(values, numbers, strict=True)):
        if value is None or value == "" or (number is not None and not math.isfinite(number)):
            raise DataError(f"{where(i)}: the label is {value!r}. Fix: give every example a class (or drop the "
                            "examples without one).")  # fmt: skip
    if all(n is not None for n in numbers):
        classes = sorted(set(numbers))
        names = tuple(str(int(c)) if float(c).is_integer() else str(c) for c in classes)
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[n] for n in numbers], dtype=np.int64), names
    texts = [str(v) for v in values]
    names = tuple(sorted(set(texts)))
    index = {c: i for i, c in enumerate(names)}
    return np.array([index[t] for t in texts], dtype=np.int64), names


def indices_into(labels: Sequence[Any] | np.ndarray, names: tuple[str, ...], what: str) -> np.ndarray:
    """Labels of a second split (test, validation) as indices into the first split's class ``names``.

    Raises:
        DataError: an empty or NaN label, or a class the first split does not have.
    """
    found, own = class_numbers(labels, lambda i: f"{what}[{i}]")
    unknown = sorted(set(own) - set(names))
    if unknown:
        raise DataError(f"{what} has classes the training split does not: {', '.join(unknown[:5])}. Fix: the same "
                        "classes in every split.")  # fmt: skip
    return np.array([names.index(own[i]) for i in found], dtype=np.int64)
