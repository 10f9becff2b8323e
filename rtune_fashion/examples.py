"""Examples as a reader returns them, and their split into train, validation and test (rtune_fashion.sources)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from rtune_fashion.data import SPLIT_SEED, VALIDATION_FRACTION, Dataset, train_test_split
from rtune_fashion.errors import DataError

TEST_FRACTION = 1 / 7  # of all examples, when no test split is given: Fashion-MNIST's 10,000 of 70,000


@dataclass
class Examples:
    """Examples as read: ``x`` float32 images (n, h, w, c) in [0, 1], or float32 features (n, f) as given;
    integer labels into ``class_names``; ``test`` and ``val`` (x, y) when the data came with them; ``fixed``:
    Fashion-MNIST's four raw arrays, to be split the articles' way instead."""

    what: str
    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    test: tuple[np.ndarray, np.ndarray] | None = None
    val: tuple[np.ndarray, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    is_table: bool = False
    fixed: tuple[np.ndarray, ...] | None = None

    def class_count_text(self) -> str:
        shown = ", ".join(self.class_names[:6]) + (", ..." if len(self.class_names) > 6 else "")
        return f"{len(self.class_names)} classes ({shown})"

    def split_text(self) -> str:
        if self.fixed is not None:
            return "the articles' split"
        test = "the given test split" if self.test is not None else f"a stratified {TEST_FRACTION:.0%} kept apart"
        val = "the given validation split" if self.val is not None else f"{VALIDATION_FRACTION:.0%} of the rest"
        return f"test: {test}; validation: {val}"

    def notes_text(self) -> str:
        return "".join(f" {note}" for note in self.notes)

    def split(self) -> Dataset:
        """Train, validation and test: as given, else stratified (module doc); tables standardised on the training
        split.

        Raises:
            DataError: no examples, only one class, or a class with too few examples for the splits to make.
        """
        x, y, names = self.x, self.y, self.class_names
        if len(y) == 0:
            raise DataError(f"{self.what} has no examples. Fix: give the training examples.")
        if len(names) < 2:
            raise DataError(f"{self.what} has one class ({names[0]}): there is nothing to classify. Fix: give "
                            "examples of two classes or more.")  # fmt: skip
        missing = [split for split, given in (("test", self.test), ("validation", self.val)) if given is None]
        needed = 1 + len(missing)
        counts = np.bincount(y, minlength=len(names))
        rarest = int(np.argmin(counts))
        if counts[rarest] < needed:
            raise DataError(f"{self.what}: class {names[rarest]!r} has {counts[rarest]} example(s), too few to keep "
                            f"one for training and one for the {' and '.join(missing) or 'training'} split. Fix: add "
                            f"examples of it (at least {needed}), or remove the class.")  # fmt: skip
        if self.test is not None:
            x_test, y_test = self.test
        else:
            x, x_test, y, y_test = stratified_split(x, y, TEST_FRACTION)
        if self.val is not None:
            x_val, y_val = self.val
        else:
            x, x_val, y, y_val = stratified_split(x, y, VALIDATION_FRACTION)
        if self.is_table:  # fitted on the training split only, as the folds of crossval.py
            from rtune_fashion.tabular import standardizer

            scale = standardizer(x)
            x, x_val, x_test = scale(x), scale(x_val), scale(x_test)
        return Dataset(x, y.astype(np.int64), x_val, y_val.astype(np.int64), x_test, y_test.astype(np.int64),
                       class_names=names)  # fmt: skip


def stratified_split(x: np.ndarray, y: np.ndarray, fraction: float) -> list[np.ndarray]:
    """(x_kept, x_held, y_kept, y_held): about ``fraction`` held out, stratified with the articles' seed, and every
    class with two examples or more on both sides (a rare class that the proportions would leave out of the held
    side is given one example there, in exchange for one of the largest class)."""
    classes = np.unique(y)
    held = min(max(round(len(y) * fraction), len(classes)), len(y) - len(classes))
    kept_index, held_index = train_test_split(np.arange(len(y)), test_size=held, stratify=y, random_state=SPLIT_SEED)
    kept_index, held_index = list(kept_index), list(held_index)
    for side, other in ((held_index, kept_index), (kept_index, held_index)):
        for label in classes:
            if not any(y[i] == label for i in side):
                give = next(i for i in other if y[i] == label)
                largest = Counter(int(y[i]) for i in side).most_common(1)[0][0]
                take = next(i for i in side if y[i] == largest)
                other.remove(give)
                side.remove(take)
                side.append(give)
                other.append(take)
    kept_index, held_index = sorted(kept_index), sorted(held_index)
    return [x[kept_index], x[held_index], y[kept_index], y[held_index]]
