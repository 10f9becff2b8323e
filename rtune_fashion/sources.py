"""Your own data, searched like Fashion-MNIST: what ``--data`` names, read, checked and split into a Dataset.

``--data`` (``ExperimentSettings.data``) is one of:

* ``fashion_mnist`` (the default): :func:`rtune_fashion.data.load_fashion_mnist`, its idx files found as
  ``--data-dir`` says and checked against their official checksums;
* an **image folder**: one subfolder per class, PNG/JPEG/BMP/GIF images in it (the layout of
  ``keras.utils.image_dataset_from_directory``); or a folder holding ``train/`` and ``test/`` folders of that
  layout, the test split then read from ``test/``. Images become grey or RGB (``color``; default: grey when
  every image is grey) and ``image_size`` (default: the size most images have; the others are resized, and
  the count is said). Files that are not images by their extension are skipped and counted;
* a **NumPy archive** (``.npz``) with ``x_train`` and ``y_train``, optionally ``x_val``/``y_val`` and
  ``x_test``/``y_test`` (each pair whole), and ``class_names``. Images are ``(n, h, w)`` or ``(n, h, w, c)``
  with 1 or 3 channels; ``(n, features)`` is a table;
* a folder of **idx files** of Fashion-MNIST's format under its four names (MNIST, KMNIST, ...): checked for
  magic numbers, shapes and sizes; by checksum only when they are Fashion-MNIST's own files;
* a **CSV table** (``.csv``): numeric features and a label column (``label``: its name or index; default the
  last), read by :func:`rtune_fashion.tabular.load_csv`, for MLP spaces.

Labels may be any strings or numbers: classes are numbered in sorted order (numbers by value), and their names
are kept (folder names for image folders). Image pixels are scaled to [0, 1] from uint8 or from [0, 255];
floats already in [0, 1] are kept. Table features are standardised with the training split's mean and
standard deviation. Without a test split, a stratified 1/7 of the examples is kept apart as the test split (as
Fashion-MNIST's 10,000 of 70,000) and read only by the final model; 20% of the rest validates (the articles'
split), with the articles' split seed.

Every problem is a :class:`DataError` raised while reading, before Ray starts and before anything is written,
naming the file or array, the value, and the fix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtune_fashion.data import (
    IDX_FILES,
    SPLIT_SEED,
    VALIDATION_FRACTION,
    Dataset,
    idx_sha256,
    load_fashion_mnist,
    read_idx,
    train_test_split,
)
from rtune_fashion.errors import DataError

FASHION_MNIST = "fashion_mnist"
KINDS = ("fashion_mnist", "images", "npz", "idx", "csv")
COLORS = ("grayscale", "rgb")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TEST_FRACTION = 1 / 7  # of all examples, when no test split is given: Fashion-MNIST's 10,000 of 70,000
# Each class needs one example in each of train, validation and test for a stratified split.
MIN_PER_CLASS = 3
# Images read at once: decoding is mostly in Pillow's C code, which releases the GIL.
READ_THREADS = 8

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
        if any(_idx_file(path, name) for name in IDX_FILES):
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
        read = {"images": lambda: read_image_folder(path, self.color, self.image_size),
                "npz": lambda: read_npz(path), "idx": lambda: read_idx_folder(path),
                "csv": lambda: read_csv_table(path, self.label)}[kind]  # fmt: skip
        examples = read()
        dataset = examples.split()
        if subset:
            _check_subset(subset, dataset.num_classes)
            dataset = dataset.subset(subset, seed=subset_seed)
        sizes = dataset.sizes()
        echo(f"Data: {examples.what}; {examples.class_count_text()}; train {sizes['train']}, validation "
             f"{sizes['val']}, test {sizes['test']} ({examples.split_text()})." + examples.notes_text())
        return dataset


def parse_image_size(text: str) -> tuple[int, int]:
    """``"48x48"`` (or ``"48"``) -> (48, 48).

    Raises:
        DataError: not two positive integers joined by x.
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
# What a reader returns, and the split


@dataclass
class Examples:
    """Examples as read: ``x`` float32 images (n, h, w, c) in [0, 1], or float32 features (n, f) as given;
    integer labels into ``class_names``; ``test`` and ``val`` (x, y) when the data came with them."""

    what: str
    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    test: tuple[np.ndarray, np.ndarray] | None = None
    val: tuple[np.ndarray, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    is_table: bool = False

    def class_count_text(self) -> str:
        shown = ", ".join(self.class_names[:6]) + (", ..." if len(self.class_names) > 6 else "")
        return f"{len(self.class_names)} classes ({shown})"

    def split_text(self) -> str:
        test = "the given test split" if self.test is not None else f"a stratified {TEST_FRACTION:.0%} kept apart"
        val = "the given validation split" if self.val is not None else f"{VALIDATION_FRACTION:.0%} of the rest"
        return f"test: {test}; validation: {val}"

    def notes_text(self) -> str:
        return "".join(f" {note}" for note in self.notes)

    def split(self) -> Dataset:
        """Train, validation and test: as given, else stratified (module doc); scaled (images) or standardised on
        the training split (tables).

        Raises:
            DataError: a class with too few examples for a stratified split, or only one class.
        """
        x, y = self.x, self.y
        names = self.class_names
        if len(names) < 2:
            raise DataError(f"{self.what} has one class ({names[0] if names else 'none'}): there is nothing to "
                            "classify. Fix: give examples of two classes or more.")  # fmt: skip
        parts = [self.test is None, self.val is None]
        needed = 1 + sum(parts)
        counts = np.bincount(y, minlength=len(names))
        rarest = int(np.argmin(counts))
        if counts[rarest] < needed:
            splits = " and ".join(s for s, missing in zip(("test", "validation"), parts, strict=True) if missing)
            raise DataError(f"{self.what}: class {names[rarest]!r} has {counts[rarest]} example(s), too few to "
                            f"keep one for training and one for the {splits} split. Fix: add examples of it "
                            f"(at least {needed}), or remove the class.")  # fmt: skip
        if self.test is not None:
            x_test, y_test = self.test
        else:
            x, x_test, y, y_test = _stratified_split(x, y, TEST_FRACTION)
        if self.val is not None:
            x_val, y_val = self.val
        else:
            x, x_val, y, y_val = _stratified_split(x, y, VALIDATION_FRACTION)
        scale = self._scaler(x)
        return Dataset(scale(x), y.astype(np.int64), scale(x_val), y_val.astype(np.int64), scale(x_test),
                       y_test.astype(np.int64), class_names=names)  # fmt: skip

    def _scaler(self, x_train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Tables: standardised with the training split's statistics only (as the folds of crossval.py);
        images: already in [0, 1]."""
        if not self.is_table:
            return lambda x: x
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0  # a constant column stays 0
        return lambda x: ((x - mean) / std).astype(np.float32)


def _stratified_split(x: np.ndarray, y: np.ndarray, fraction: float) -> list[np.ndarray]:
    """scikit-learn's stratified split with the articles' seed; at least one example of each class on each side."""
    classes = len(np.unique(y))
    held = min(max(round(len(y) * fraction), classes), len(y) - classes)
    return train_test_split(x, y, test_size=held, stratify=y, random_state=SPLIT_SEED)


def _check_subset(subset: dict[str, int], classes: int) -> None:
    if any(int(n) < classes for n in subset.values()):
        raise DataError(f"Invalid subset {subset!r}: each size must be at least {classes} (one example per class). "
                        "Fix: larger --train-size / --val-size / --test-size.")  # fmt: skip


def class_numbers(labels: Sequence[Any], what: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels of any strings or numbers -> (int64 indices, class names in sorted order: numbers by value).

    Raises:
        DataError: a label that is NaN or infinite.
    """
    values = [v.item() if isinstance(v, np.generic) else v for v in np.asarray(labels).tolist()]
    for i, value in enumerate(values):
        if isinstance(value, float) and not np.isfinite(value):
            raise DataError(f"{what}: label {i} is {value}. Fix: give every example a class.")
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    classes = sorted(set(values)) if numeric else sorted({str(v) for v in values})
    index = {value: i for i, value in enumerate(classes)}
    y = np.array([index[v if numeric else str(v)] for v in values], dtype=np.int64)
    names = tuple(str(int(c)) if numeric and float(c).is_integer() else str(c) for c in classes)
    return y, names


def _as_indices(labels: np.ndarray, names: tuple[str, ...], what: str) -> np.ndarray:
    """Labels of a second split (test, validation) as indices into the first split's classes.

    Raises:
        DataError: a class the training split does not have.
    """
    found, own = class_numbers(labels, what)
    unknown = sorted(set(own) - set(names))
    if unknown:
        raise DataError(f"{what} has classes the training split does not: {', '.join(unknown[:5])}. Fix: the same "
                        "classes in every split.")  # fmt: skip
    return np.array([names.index(own[i]) for i in found], dtype=np.int64)


# ---------------------------------------------------------------------------------------------------
# Image folders


def _image_files(class_dir: Path) -> tuple[list[Path], list[Path]]:
    """(images by extension, other files), sorted; hidden files (``.DS_Store``) are neither."""
    images, others = [], []
    for path in sorted(class_dir.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            (images if path.suffix.lower() in IMAGE_EXTENSIONS else others).append(path)
    return images, others


def _class_folders(root: Path) -> list[Path]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no class folders. Fix: put each class's images in a subfolder named after the "
                        f"class ({root}/cat/1.png, {root}/dog/1.png, ...); {_KINDS_HELP}.")  # fmt: skip
    return folders


def _open_image(path: Path) -> tuple[Any, str]:
    """The decoded Pillow image and its mode.

    Raises:
        DataError: the file cannot be read or decoded (named).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image.copy(), image.mode
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DataError(f"{path} is not a readable image ({error}). Fix: replace or delete the file.") from None


def _is_grey(image: Any) -> bool:
    if image.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return True
    if image.mode == "P":
        palette = image.convert("RGB")
        array = np.asarray(palette)
        return bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())
    return False


def _read_images(paths: list[Path]) -> list[Any]:
    with ThreadPoolExecutor(READ_THREADS) as pool:
        return [image for image, _ in pool.map(_open_image, paths)]


def _folder_images(root: Path) -> tuple[list[Any], list[str], list[Path], int]:
    """(images, their class names, their paths, files skipped) of one folder of class folders.

    Raises:
        DataError: no class folder, or an empty one.
    """
    images, labels, paths, skipped = [], [], [], 0
    for folder in _class_folders(root):
        found, others = _image_files(folder)
        skipped += len(others)
        if not found:
            extra = f" ({len(others)} file(s), none of them {'/'.join(IMAGE_EXTENSIONS)})" if others else ""
            raise DataError(f"Class folder {folder} has no images{extra}. Fix: add images of class {folder.name!r} "
                            "or remove the folder.")  # fmt: skip
        paths += found
        labels += [folder.name] * len(found)
    images = _read_images(paths)
    return images, labels, paths, skipped


def read_image_folder(root: Path, color: str | None = None, size: tuple[int, int] | None = None) -> Examples:
    """A folder of class folders (or of ``train/`` and ``test/`` folders of them): see the module doc.

    Raises:
        DataError: no class folder, an empty class folder, an unreadable image (named).
    """
    split_layout = (root / "train").is_dir() and (root / "test").is_dir()
    parts = {"train": root / "train", "test": root / "test"} if split_layout else {"train": root}
    read = {name: _folder_images(folder) for name, folder in parts.items()}
    every = [image for images, *_ in read.values() for image in images]
    color = color or ("grayscale" if all(_is_grey(image) for image in every) else "rgb")
    sizes = Counter((image.height, image.width) for image in every)
    if size is None:
        size = sizes.most_common(1)[0][0]
    resized = sum(n for shape, n in sizes.items() if shape != size)
    mode = "L" if color == "grayscale" else "RGB"
    modes = Counter(image.mode for image in every)

    def array_of(images: list[Any]) -> np.ndarray:
        out = np.empty((len(images), size[0], size[1], 1 if mode == "L" else 3), dtype=np.uint8)
        for i, image in enumerate(images):
            image = image.convert(mode)
            if (image.height, image.width) != size:
                image = image.resize((size[1], size[0]), _resample())
            out[i] = np.asarray(image).reshape(out.shape[1:])
        return out.astype(np.float32) / 255.0

    names = tuple(sorted({label for _, labels, _, _ in read.values() for label in labels}))
    train_images, train_labels, _, skipped = read["train"]
    y = np.array([names.index(label) for label in train_labels], dtype=np.int64)
    test = None
    if "test" in read:
        test_images, test_labels, _, test_skipped = read["test"]
        skipped += test_skipped
        unknown = sorted(set(test_labels) - set(train_labels))
        if unknown:
            raise DataError(f"{root / 'test'} has class folders that {root / 'train'} lacks: {', '.join(unknown)}. "
                            "Fix: the same class folders in both.")  # fmt: skip
        test = (array_of(test_images), np.array([names.index(label) for label in test_labels], dtype=np.int64))
    notes = []
    if resized:
        notes.append(f"{resized} of {len(every)} images were resized to {size[0]}x{size[1]} (sizes found: "
                     f"{_most_common(sizes, lambda s: f'{s[0]}x{s[1]}')}).")  # fmt: skip
    converted = sum(n for m, n in modes.items() if m != mode)
    if converted:
        notes.append(f"{converted} images converted to {color} (modes found: {_most_common(modes, str)}).")
    if skipped:
        notes.append(f"{skipped} file(s) skipped: not {'/'.join(IMAGE_EXTENSIONS)} images by their extension.")
    what = f"{len(every)} images from {root}" + (" (train/ and test/)" if split_layout else "")
    return Examples(f"{what}, {size[0]}x{size[1]} {color}", array_of(train_images), y, names, test=test, notes=notes)


def _resample() -> Any:
    from PIL import Image

    return Image.Resampling.BILINEAR


def _most_common(counts: Counter, show: Callable[[Any], str]) -> str:
    return ", ".join(f"{show(key)} ({n})" for key, n in counts.most_common(4)) + (", ..." if len(counts) > 4 else "")


# ---------------------------------------------------------------------------------------------------
# Arrays (.npz), idx folders, CSV tables


def _check_finite(x: np.ndarray, what: str) -> None:
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise DataError(f"{what} holds {x[index]} at index {index}. Fix: remove or fill the examples with NaN or "
                        "infinite values.")  # fmt: skip


def _pixels(x: np.ndarray, what: str) -> np.ndarray:
    """Image arrays as float32 in [0, 1]: uint8 and numbers in [0, 255] divided by 255, floats in [0, 1] kept.

    Raises:
        DataError: not numbers, NaN or infinite values, or values outside both scales (min and max named).
    """
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{what} has dtype {x.dtype}, not numbers. Fix: images as numbers in [0, 1] or [0, 255].")
    _check_finite(x, what)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 255:
        raise DataError(f"{what} has pixel values from {low:g} to {high:g}, outside both known scales ([0, 1] and "
                        "[0, 255]). Fix: rescale the images to [0, 1] (or give uint8 images).")  # fmt: skip
    if np.issubdtype(x.dtype, np.floating) and high <= 1.0:
        return x.astype(np.float32)
    return x.astype(np.float32) / 255.0


def _image_array(x: np.ndarray, what: str) -> np.ndarray:
    """(n, h, w) or (n, h, w, 1|3) pixels (:func:`_pixels`) -> (n, h, w, c)."""
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{what} has shape {x.shape}: images must be (n, height, width) or (n, height, width, "
                        "channels) with 1 or 3 channels, a table (n, features). Fix: reshape it.")  # fmt: skip
    return _pixels(x, what)


def read_npz(path: Path) -> Examples:
    """An .npz of arrays: see the module doc.

    Raises:
        DataError: not a readable .npz, no x_train or y_train, a pair given by half, labels of another length than
            their images, NaN or infinite values, pixels outside [0, 1] and [0, 255], or shapes that differ.
    """
    try:
        archive = np.load(path, allow_pickle=False)
        arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path} is not a readable .npz archive ({error}). Fix: save it with numpy.savez.") from None
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(f"{path} has no {key} (it has: {', '.join(sorted(arrays)) or 'nothing'}). Fix: save the "
                            "training images as x_train and their labels as y_train (numpy.savez(path, x_train=..., "
                            "y_train=...)).")  # fmt: skip
    for split in ("val", "test"):
        if (f"x_{split}" in arrays) != (f"y_{split}" in arrays):
            raise DataError(f"{path} has only one of x_{split} and y_{split}. Fix: both or neither.")
    is_table = arrays["x_train"].ndim == 2
    pairs = {}
    for split in ("train", "val", "test"):
        if f"x_{split}" not in arrays:
            continue
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        what = f"{path}: x_{split}"
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{path}: y_{split} has shape {y.shape}, x_{split} has {len(x)} examples. Fix: one label "
                            f"per example (shape ({len(x)},)).")  # fmt: skip
        if is_table:
            if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
                raise DataError(f"{what} has shape {x.shape} and dtype {x.dtype}; x_train is a table (n, features). "
                                "Fix: every split of the same form.")  # fmt: skip
            _check_finite(x, what)
            x = x.astype(np.float32)
        else:
            x = _image_array(x, what)
        if split != "train" and x.shape[1:] != pairs["train"][0].shape[1:]:
            raise DataError(f"{what} has examples of shape {x.shape[1:]}, x_train {pairs['train'][0].shape[1:]}. "
                            "Fix: the same shape in every split.")  # fmt: skip
        pairs[split] = (x, y)
    y, labels = class_numbers(pairs["train"][1], f"{path}: y_train")
    names = labels
    if "class_names" in arrays:
        given = tuple(str(n) for n in arrays["class_names"].tolist())
        if len(given) != len(labels) or not all(n.isdigit() and int(n) < len(given) for n in labels):
            raise DataError(f"{path}: class_names has {len(given)} names for labels {', '.join(labels[:10])}. Fix: "
                            "labels 0 to n-1 with n class_names, or leave class_names out.")  # fmt: skip
        names = tuple(given[int(n)] for n in labels)
    others = {split: (pairs[split][0], _as_indices(pairs[split][1], labels, f"{path}: y_{split}"))
              for split in ("val", "test") if split in pairs}  # fmt: skip
    x = pairs["train"][0]
    shape = "x".join(map(str, x.shape[1:]))
    return Examples(f"{len(x)} training examples of {shape} from {path}", x, y, names,
                    test=others.get("test"), val=others.get("val"), is_table=is_table)  # fmt: skip


def _idx_file(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def read_idx_folder(directory: Path) -> Examples:
    """The four idx files of Fashion-MNIST's format (MNIST, KMNIST, ...): see the module doc.

    Raises:
        DataError: a missing file, a damaged one (:func:`rtune_fashion.data.read_idx`), images and labels of
            different counts, or labels that are not image files' companions.
    """
    fix = ("Fix: the folder needs train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
           "t10k-labels-idx1-ubyte (each plain or .gz) of one dataset.")  # fmt: skip
    missing = [name for name in IDX_FILES if _idx_file(directory, name) is None]
    if missing:
        raise DataError(f"{directory} lacks {', '.join(missing)} (plain or .gz). {fix}")
    arrays = {name: read_idx(_idx_file(directory, name), fix) for name in IDX_FILES}  # type: ignore[arg-type]
    train_x, train_y, test_x, test_y = arrays.values()
    for images, labels, which in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{directory}: {which} images have shape {images.shape} and labels {labels.shape}; "
                            f"expected (n, rows, cols) images and n labels. {fix}")  # fmt: skip
    if test_x.shape[1:] != train_x.shape[1:]:
        raise DataError(f"{directory}: test images are {test_x.shape[1:]}, training images {train_x.shape[1:]}. {fix}")
    official = all(idx_sha256(arrays[name]) == spec.sha256 for name, spec in IDX_FILES.items())
    if official:
        from rtune_fashion.data import CLASS_NAMES

        y, names = train_y.astype(np.int64), CLASS_NAMES
        test = (_pixels(test_x[..., np.newaxis], ""), test_y.astype(np.int64))
        what = f"Fashion-MNIST's idx files in {directory} (checksums verified)"
    else:
        y, names = class_numbers(train_y, f"{directory}: training labels")
        test = (_pixels(test_x[..., np.newaxis], ""), _as_indices(test_y, names, f"{directory}: test labels"))
        what = f"idx files in {directory} (no known checksum: checked for magic numbers, shapes and sizes)"
    return Examples(f"{what}, {len(train_x)} + {len(test_x)} images of {train_x.shape[1]}x{train_x.shape[2]}",
                    _pixels(train_x[..., np.newaxis], ""), y, names, test=test)  # fmt: skip


def read_csv_table(path: Path, label: str | None = None) -> Examples:
    """A CSV table (:func:`rtune_fashion.tabular.load_csv`): features standardised on the training split."""
    from rtune_fashion.tabular import load_csv

    table = load_csv(path, label=int(label) if label is not None and label.lstrip("-").isdigit() else label)
    return Examples(f"{len(table.y)} rows of {table.x.shape[1]} features from {path} (label {table.label_name!r})",
                    table.x, table.y, table.class_names, is_table=True)  # fmt: skip


def source_from_settings(settings: Any) -> DataSource:
    """The :class:`DataSource` of an :class:`~rtune_fashion.experiment.ExperimentSettings`."""
    size = parse_image_size(settings.image_size) if settings.image_size else None
    return DataSource(settings.data, settings.color, size, settings.label, settings.data_dir)
