"""Your own data, searched like Fashion-MNIST: what ``--data`` names, read, checked and split into a Dataset.

``--data`` (``ExperimentSettings.data``) is one of:

* ``fashion_mnist`` (the default): :func:`rtune_fashion.data.load_fashion_mnist`, its idx files found as
  ``--data-dir`` says and checked against their official checksums;
* an **image folder**: one subfolder per class, PNG/JPEG/BMP/GIF images in it (the layout of
  ``keras.utils.image_dataset_from_directory``); or a folder holding ``train/`` and optionally ``val/`` (or
  ``validation/``) and ``test/`` folders of that layout, whose splits are then used as they are. Images become
  grey or RGB (``color``; default: grey when every image is, by its mode or by equal channels) and
  ``image_size`` (default: the size most images have; the others are resized, and the count is said). JPEGs
  are turned upright by their EXIF orientation; 16-bit images keep their depth (scaled by 65,535);
  transparent pixels are laid over black (Fashion-MNIST's background), and counted. Files that are not images
  by their extension are skipped and counted;
* a **NumPy archive** (``.npz``) with ``x_train`` and ``y_train``, optionally ``x_val``/``y_val`` and
  ``x_test``/``y_test`` (each pair whole), and ``class_names`` (for integer labels 0..n-1). Images are
  ``(n, h, w)`` or ``(n, h, w, c)`` with 1 or 3 channels; ``(n, features)`` is a table;
* a folder of **idx files** of Fashion-MNIST's format under its four names (MNIST, KMNIST, ...): checked for
  magic numbers, shapes and sizes; when their checksums are Fashion-MNIST's own, it is read exactly as
  ``fashion_mnist`` (the articles' split);
* a **CSV table** (``.csv``): numeric features and a label column (``label``: its name or index; default the
  last), read by :func:`rtune_fashion.tabular.load_csv`, for MLP spaces.

Labels may be any strings or numbers (:func:`rtune_fashion.labels.class_numbers`: sorted, numbers by value);
class names are kept (folder names for image folders). Image pixels are scaled to [0, 1] from uint8 or from
[0, 255], once for all splits; floats already in [0, 1] are kept. Table features are standardised with the
training split's mean and standard deviation. Without a test split, a stratified 1/7 of the examples is kept
apart as the test split (as Fashion-MNIST's 10,000 of 70,000) and read only by the final model; 20% of the
rest validates; both stratified with the articles' split seed, every class on each side of each split.

Every problem is a :class:`DataError` raised while reading, before Ray starts and before anything is written,
naming the file or array, the value, and the fix.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtune_fashion.data import (
    CLASS_NAMES,
    IDX_FILES,
    Dataset,
    articles_split,
    check_subset,
    idx_path,
    idx_sha256,
    load_fashion_mnist,
    read_idx,
)
from rtune_fashion.errors import DataError
from rtune_fashion.examples import Examples
from rtune_fashion.labels import class_numbers, indices_into

FASHION_MNIST = "fashion_mnist"
KINDS = ("fashion_mnist", "images", "npz", "idx", "csv")
COLORS = ("grayscale", "rgb")

_KINDS_HELP = ("--data takes fashion_mnist, a folder of class subfolders of images, a folder of idx files "
               "(train-images-idx3-ubyte[.gz] and the other three), an .npz with x_train and y_train, or a .csv table")


@dataclass(frozen=True)
class DataSource:
    """What ``--data`` and its options name; :meth:`load` reads it."""

    data: str = FASHION_MNIST
    color: str | None = None  # images: grayscale or rgb (None: grey when every image is)
    image_size: tuple[int, int] | None = None  # images: (height, width) (None: the most common size)
    label: str | None = None  # csv: the label column's name or 0-based index (None: the last)
    data_dir: str | None = None  # fashion_mnist: the idx files' folder (None: the usual search)

    @property
    def kind(self) -> str:
        """One of :data:`KINDS`.

        Raises:
            DataError: a path that does not exist or is none of the kinds.
        """
        if self.data == FASHION_MNIST:
            return FASHION_MNIST
        path = Path(self.data).expanduser()
        if path.is_file():
            suffix = path.suffix.lower()
            if suffix in (".npz", ".csv"):
                return suffix[1:]
            raise DataError(f"--data {self.data}: a {suffix or 'extensionless'} file is not data rtune reads. "
                            f"Fix: {_KINDS_HELP}.")  # fmt: skip
        if not path.is_dir():
            raise DataError(f"--data {self.data} does not exist. Fix: {_KINDS_HELP}.")
        if any(idx_path(path, name) for name in IDX_FILES):
            return "idx"
        return "images"

    def describe(self) -> str:
        return "Fashion-MNIST" if self.data == FASHION_MNIST else f"{self.kind} {self.data}"

    def check_options(self) -> None:
        """Refuse options that the kind does not take (a typo would otherwise change nothing).

        Raises:
            DataError: naming the option and the kind it belongs to.
        """
        kind = self.kind
        if self.color is not None and self.color not in COLORS:
            raise DataError(f"--color must be one of {', '.join(COLORS)}, got {self.color!r}.")
        if kind != "images" and (self.color is not None or self.image_size is not None):
            given = "--color" if self.color is not None else "--image-size"
            raise DataError(f"{given} applies to image folders; --data {self.data} is {kind}. Fix: leave it out.")
        if kind != "csv" and self.label is not None:
            raise DataError(f"--label applies to CSV tables; --data {self.data} is {kind}. Fix: leave it out.")
        if kind != FASHION_MNIST and self.data_dir is not None:
            raise DataError(f"--data-dir names Fashion-MNIST's idx folder; with --data {self.data} leave it out.")

    def load(self, *, subset: dict[str, int] | None = None, subset_seed: int = 0,
             echo: Callable[[str], None] = lambda _: None) -> Dataset:  # fmt: skip
        """The dataset, split and scaled (see the module doc); ``subset``: stratified sizes per split, drawn with
        ``subset_seed``; ``echo`` gets one line saying what was read (nothing for Fashion-MNIST).

        Raises:
            DataError: see the module doc.
        """
        self.check_options()
        kind = self.kind
        if kind == FASHION_MNIST:
            return load_fashion_mnist(self.data_dir, subset=subset, subset_seed=subset_seed)
        path = Path(self.data).expanduser()
        from rtune_fashion.image_folders import read_image_folder  # imports Pillow: only for image folders

        read = {"images": lambda: read_image_folder(path, self.color, self.image_size),
                "npz": lambda: read_npz(path), "idx": lambda: read_idx_folder(path),
                "csv": lambda: read_csv_table(path, self.label)}[kind]  # fmt: skip
        examples = read()
        if examples.fixed is not None:  # Fashion-MNIST's own files: the articles' split
            dataset = articles_split(*examples.fixed, subset=subset, subset_seed=subset_seed)
        else:
            dataset = examples.split()
            if subset:
                check_subset(subset, dataset.num_classes)
                dataset = dataset.subset(subset, seed=subset_seed)
        sizes = dataset.sizes()
        echo(f"Data: {examples.what}; {examples.class_count_text()}; train {sizes['train']}, validation "
             f"{sizes['val']}, test {sizes['test']} ({examples.split_text()})." + examples.notes_text())
        return dataset


def parse_image_size(text: str) -> tuple[int, int]:
    """``"48x40"`` -> (48, 40); ``"48"`` -> (48, 48).

    Raises:
        DataError: not one or two positive integers joined by x.
    """
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise DataError(f"--image-size must be HEIGHTxWIDTH in pixels (e.g. 48x48), got {text!r}.")
    return values[0], values[1]


# ---------------------------------------------------------------------------------------------------
# Arrays (.npz), idx folders, CSV tables


def _check_finite(x: np.ndarray, what: str) -> None:
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise DataError(f"{what} holds {x[index]} at index {index}. Fix: remove or fill the examples with NaN or "
                        "infinite values.")  # fmt: skip


def _pixel_divisor(arrays: dict[str, np.ndarray], where: str) -> float:
    """255 for uint8 and for numbers in [0, 255], 1 for floats already in [0, 1]: one scale for all splits.

    Raises:
        DataError: not numbers, NaN or infinite values, values outside both scales (array, min and max named), or
            splits on different scales.
    """
    for name, x in arrays.items():
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{where}: {name} has dtype {x.dtype}, not numbers. Fix: images as numbers in [0, 1] "
                            "or [0, 255].")  # fmt: skip
        _check_finite(x, f"{where}: {name}")
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > 255:
            raise DataError(f"{where}: {name} has pixel values from {low:g} to {high:g}, outside both known scales "
                            "([0, 1] and [0, 255]). Fix: rescale the images to [0, 1] (or give uint8 images).")
    unit = {name: bool(np.issubdtype(x.dtype, np.floating) and float(x.max()) <= 1.0) for name, x in arrays.items()}
    if len(set(unit.values())) > 1:
        ones = [name for name, is_unit in unit.items() if is_unit]
        others = [name for name, is_unit in unit.items() if not is_unit]
        raise DataError(f"{where}: {', '.join(ones)} holds floats in [0, 1] but {', '.join(others)} goes beyond 1 "
                        "(the [0, 255] scale). Fix: one scale for every split.")  # fmt: skip
    return 1.0 if all(unit.values()) else 255.0


def _image_array(x: np.ndarray, what: str) -> np.ndarray:
    """(n, h, w) or (n, h, w, 1|3) -> (n, h, w, c)."""
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{what} has shape {x.shape}: images must be (n, height, width) or (n, height, width, "
                        "channels) with 1 or 3 channels, a table (n, features). Fix: reshape it.")  # fmt: skip
    return x


def read_npz(path: Path) -> Examples:
    """An .npz of arrays: see the module doc.

    Raises:
        DataError: not a readable .npz, no x_train or y_train, a pair given by half, no examples, labels of another
            length than their images, NaN or infinite values, pixels outside [0, 1] and [0, 255], shapes that
            differ between splits, or class_names that do not fit the labels.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise DataError(f"{path} is not a readable .npz archive ({error}). Fix: save it with numpy.savez.") from None
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(f"{path} has no {key} (it has: {', '.join(sorted(arrays)) or 'nothing'}). Fix: save the "
                            "training images as x_train and their labels as y_train (numpy.savez(path, x_train=..., "
                            "y_train=...)).")  # fmt: skip
    splits = [split for split in ("train", "val", "test") if f"x_{split}" in arrays or f"y_{split}" in arrays]
    for split in splits:
        if (f"x_{split}" in arrays) != (f"y_{split}" in arrays):
            raise DataError(f"{path} has only one of x_{split} and y_{split}. Fix: both or neither.")
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) == 0:
            raise DataError(f"{path}: x_{split} has no examples. Fix: give examples, or leave the split out.")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{path}: y_{split} has shape {y.shape}, x_{split} has {len(x)} examples. Fix: one label "
                            f"per example (shape ({len(x)},)).")  # fmt: skip
    is_table = arrays["x_train"].ndim == 2
    xs = {}
    for split in splits:
        x, name = arrays[f"x_{split}"], f"x_{split}"
        if is_table:
            if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
                raise DataError(f"{path}: {name} has shape {x.shape} and dtype {x.dtype}; x_train is a table (n, "
                                "features). Fix: every split of the same form.")  # fmt: skip
            _check_finite(x, f"{path}: {name}")
        else:
            x = _image_array(x, f"{path}: {name}")
        if split != "train" and x.shape[1:] != xs["train"].shape[1:]:
            raise DataError(f"{path}: {name} has examples of shape {x.shape[1:]}, x_train {xs['train'].shape[1:]}. "
                            "Fix: the same shape in every split.")  # fmt: skip
        xs[split] = x
    if is_table:
        xs = {split: x.astype(np.float32) for split, x in xs.items()}
    else:
        divisor = _pixel_divisor({f"x_{split}": x for split, x in xs.items()}, str(path))
        xs = {split: x.astype(np.float32) / divisor for split, x in xs.items()}
    if "class_names" in arrays:  # integer labels index the names in every split
        y, names = _named_classes(arrays, path)
        others = {split: (xs[split], arrays[f"y_{split}"].astype(np.int64)) for split in ("val", "test") if split in xs}
    else:
        y, names = class_numbers(arrays["y_train"], lambda i: f"{path}: y_train[{i}]")
        others = {split: (xs[split], indices_into(arrays[f"y_{split}"], names, f"{path}: y_{split}"))
                  for split in ("val", "test") if split in xs}  # fmt: skip
    shape = "x".join(map(str, xs["train"].shape[1:]))
    return Examples(f"{len(y)} training examples of {shape} from {path}", xs["train"], y, names,
                    test=others.get("test"), val=others.get("val"), is_table=is_table)  # fmt: skip


def _named_classes(arrays: dict[str, np.ndarray], path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """(y_train, class_names) when the .npz names its classes: integer labels 0..n-1 in every split index them.

    Raises:
        DataError: labels that are not integers in [0, n) (the label and n named).
    """
    names = tuple(str(n) for n in arrays["class_names"].tolist())
    for split in ("train", "val", "test"):
        labels = arrays.get(f"y_{split}")
        if labels is None:
            continue
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= len(names):
            bad = (labels[0] if not np.issubdtype(labels.dtype, np.integer)
                   else labels.min() if labels.min() < 0 else labels.max()).item()  # fmt: skip
            raise DataError(f"{path}: y_{split} holds {bad!r}, but with {len(names)} class_names the labels must be "
                            f"integers 0 to {len(names) - 1}. Fix: integer labels, or leave class_names out.")
    y = arrays["y_train"].astype(np.int64)
    missing = sorted(set(range(len(names))) - set(y.tolist()))
    if missing:
        raise DataError(f"{path}: class_names names {len(names)} classes, but y_train has no example of "
                        f"{', '.join(names[i] for i in missing[:5])}. Fix: give training examples of every class, or "
                        "drop the names of the classes you do not have.")  # fmt: skip
    return y, names


def read_idx_folder(directory: Path) -> Examples:
    """The four idx files of Fashion-MNIST's format (MNIST, KMNIST, ...): see the module doc.

    Raises:
        DataError: a missing file, a damaged one (:func:`rtune_fashion.data.read_idx`), or images and labels of
            different counts or shapes.
    """
    fix = ("Fix: the folder needs train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
           "t10k-labels-idx1-ubyte (each plain or .gz) of one dataset.")  # fmt: skip
    missing = [name for name in IDX_FILES if idx_path(directory, name) is None]
    if missing:
        raise DataError(f"{directory} lacks {', '.join(missing)} (plain or .gz). {fix}")
    arrays = {name: read_idx(idx_path(directory, name), fix) for name in IDX_FILES}  # type: ignore[arg-type]
    train_x, train_y, test_x, test_y = arrays.values()
    for images, labels, which in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or len(labels) == 0:
            raise DataError(f"{directory}: {which} images have shape {images.shape} and labels {labels.shape}; "
                            f"expected (n, rows, cols) images and n labels, n > 0. {fix}")  # fmt: skip
    if test_x.shape[1:] != train_x.shape[1:]:
        raise DataError(f"{directory}: test images are {test_x.shape[1:]}, training images {train_x.shape[1:]}. {fix}")
    shape = f"{len(train_x)} + {len(test_x)} images of {train_x.shape[1]}x{train_x.shape[2]}"
    if all(idx_sha256(arrays[name]) == spec.sha256 for name, spec in IDX_FILES.items()):
        return Examples(f"Fashion-MNIST's idx files in {directory} (checksums verified), {shape}", train_x, train_y,
                        CLASS_NAMES, fixed=(train_x, train_y, test_x, test_y))  # fmt: skip
    y, names = class_numbers(train_y, lambda i: f"{directory}: training label {i}")
    test = (_unit_images(test_x), indices_into(test_y, names, f"{directory}: test labels"))
    what = f"idx files in {directory} (no known checksum: checked for magic numbers, shapes and sizes), {shape}"
    return Examples(what, _unit_images(train_x), y, names, test=test)


def _unit_images(images: np.ndarray) -> np.ndarray:
    """uint8 (n, h, w) -> float32 (n, h, w, 1) in [0, 1]."""
    return images[..., np.newaxis].astype(np.float32) / 255.0


def read_csv_table(path: Path, label: str | None = None) -> Examples:
    """A CSV table (:func:`rtune_fashion.tabular.load_csv`); features standardised when split."""
    from rtune_fashion.tabular import load_csv

    table = load_csv(path, label=int(label) if label is not None and label.lstrip("-").isdigit() else label)
    return Examples(f"{len(table.y)} rows of {table.x.shape[1]} features from {path} (label {table.label_name!r})",
                    table.x, table.y, table.class_names, is_table=True)  # fmt: skip
