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
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtune_fashion.data import (
    CLASS_NAMES,
    IDX_FILES,
    SPLIT_SEED,
    VALIDATION_FRACTION,
    Dataset,
    articles_split,
    check_subset,
    idx_path,
    idx_sha256,
    load_fashion_mnist,
    read_idx,
    train_test_split,
)
from rtune_fashion.errors import DataError
from rtune_fashion.labels import class_numbers, indices_into

FASHION_MNIST = "fashion_mnist"
KINDS = ("fashion_mnist", "images", "npz", "idx", "csv")
COLORS = ("grayscale", "rgb")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}
TEST_FRACTION = 1 / 7  # of all examples, when no test split is given: Fashion-MNIST's 10,000 of 70,000
READ_THREADS = 8  # images decoded at once: Pillow's decoders release the GIL
_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # more than 8 bits per pixel, grey
_GREY_MODES = ("1", "L", "LA", "La", *_DEEP_MODES)
_ORIENTATION = 0x0112  # EXIF orientation: 5 to 8 swap width and height

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
# What a reader returns, and the split


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


# ---------------------------------------------------------------------------------------------------
# Image folders


def _image_files(class_dir: Path) -> tuple[list[Path], list[Path]]:
    """(images by extension, other files), sorted, in the folder and below; hidden files are neither."""
    images, others = [], []
    for path in sorted(class_dir.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(class_dir).parts):
            (images if path.suffix.lower() in IMAGE_EXTENSIONS else others).append(path)
    return images, others


def _class_folders(root: Path) -> list[Path]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no class folders. Fix: put each class's images in a subfolder named after the "
                        f"class ({root}/cat/1.png, {root}/dog/1.png, ...); {_KINDS_HELP}.")  # fmt: skip
    return folders


def _split_folders(root: Path) -> dict[str, Path]:
    """The folder of each split: {"train": root} for a folder of class folders; ``train/``, and ``val/``
    (``validation/``) and ``test/`` where they are, for a folder split already.

    Raises:
        DataError: a ``val/`` or ``test/`` folder without ``train/`` (a split layout with its training part missing).
    """
    found = {split: next((root / n for n in names if (root / n).is_dir()), None)
             for split, names in SPLIT_FOLDERS.items()}  # fmt: skip
    if found["train"] is None:
        others = [path.name for path in found.values() if path is not None]
        if others:
            raise DataError(f"{root} has {' and '.join(others)} folder(s) but no train/ folder: a folder split into "
                            "train/ (and val/, test/) needs train/; a folder of classes must not name a class "
                            f"{others[0]!r}. Fix: add train/, or rename the folder.")  # fmt: skip
        return {"train": root}
    return {split: path for split, path in found.items() if path is not None}


@dataclass
class _Image:
    """An image file as its header says: where, its size once upright, its mode; opened, not decoded."""

    path: Path
    size: tuple[int, int]  # (height, width)
    mode: str
    label: str


def _header(path: Path, label: str) -> _Image:
    """The image's size (upright, by its EXIF orientation) and mode, from its header.

    Raises:
        DataError: the file is not an image Pillow can open (named).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            height, width = image.height, image.width
            if image.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):
                height, width = width, height
            return _Image(path, (height, width), image.mode, label)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise DataError(f"{path} is not a readable image ({error}). Fix: replace or delete the file.") from None


def _decode(item: _Image, grey: bool, size: tuple[int, int], deep: bool) -> tuple[np.ndarray, bool, bool]:
    """(pixels (h, w, 1 or 3) at ``size``, in [0, 255] as uint8, or as float32 when ``deep``; whether its content
    is grey; whether it had transparency).

    Raises:
        DataError: the file cannot be decoded (named).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(item.path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise DataError(f"{item.path} is not a readable image ({error}). Fix: replace or delete the file.") from None
    resample = Image.Resampling.BILINEAR
    transparent = image.mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in image.info
    if image.mode in _DEEP_MODES:
        plane = np.asarray(image, dtype=np.float32)
        plane = plane / 65535.0 * 255.0 if image.mode != "F" else plane * (255.0 if plane.max() <= 1.0 else 1.0)
        picture = Image.fromarray(np.clip(plane, 0, 255).astype(np.float32), "F")
        if (picture.height, picture.width) != size:
            picture = picture.resize((size[1], size[0]), resample)
        pixels = np.asarray(picture, dtype=np.float32)[..., np.newaxis]
        return (pixels if grey else np.repeat(pixels, 3, axis=-1)), True, False
    if transparent:  # laid over black, Fashion-MNIST's background
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    rgb = image.convert("RGB")
    if (rgb.height, rgb.width) != size:
        rgb = rgb.resize((size[1], size[0]), resample)
    array = np.asarray(rgb)
    content_grey = bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())
    pixels = array[..., :1] if grey else array
    return (pixels.astype(np.float32) if deep else pixels), content_grey, transparent


def read_image_folder(root: Path, color: str | None = None, size: tuple[int, int] | None = None) -> Examples:
    """A folder of class folders, or of split folders of them: see the module doc. Two passes: the headers
    (sizes, modes), then each image decoded once into its place in the arrays.

    Raises:
        DataError: no class folder, an empty class folder, a split folder with classes the training one lacks, an
            unreadable image (named).
    """
    folders = _split_folders(root)
    items: dict[str, list[_Image]] = {}
    skipped = 0
    for split, folder in folders.items():
        paths, labels = [], []
        for class_folder in _class_folders(folder):
            found, others = _image_files(class_folder)
            skipped += len(others)
            if not found:
                extra = f" ({len(others)} file(s), none of them {'/'.join(IMAGE_EXTENSIONS)})" if others else ""
                raise DataError(f"Class folder {class_folder} has no images{extra}. Fix: add images of class "
                                f"{class_folder.name!r} or remove the folder.")  # fmt: skip
            paths += found
            labels += [class_folder.name] * len(found)
        with ThreadPoolExecutor(READ_THREADS) as pool:
            items[split] = list(pool.map(_header, paths, labels))
    names = tuple(sorted({item.label for item in items["train"]}))
    for split in ("val", "test"):
        unknown = sorted({item.label for item in items.get(split, [])} - set(names))
        if unknown:
            raise DataError(f"{folders[split]} has class folders that {folders['train']} lacks: {', '.join(unknown)}. "
                            "Fix: the same class folders in every split.")  # fmt: skip
    every = [item for split_items in items.values() for item in split_items]
    sizes = Counter(item.size for item in every)
    size = size or sizes.most_common(1)[0][0]
    deep = any(item.mode in _DEEP_MODES for item in every)
    grey = color == "grayscale" or (color is None and all(item.mode in _GREY_MODES for item in every))

    def arrays(split_items: list[_Image], as_grey: bool) -> tuple[np.ndarray, list[bool], int]:
        out = np.empty((len(split_items), *size, 1 if as_grey else 3), dtype=np.float32 if deep else np.uint8)

        def place(i: int) -> tuple[bool, bool]:
            out[i], content_grey, transparent = _decode(split_items[i], as_grey, size, deep)
            return content_grey, transparent

        with ThreadPoolExecutor(READ_THREADS) as pool:
            decoded = list(pool.map(place, range(len(split_items))))
        return out, [g for g, _ in decoded], sum(t for _, t in decoded)

    decoded = {split: arrays(split_items, grey) for split, split_items in items.items()}
    if color is None and not grey and all(g for _, greys, _ in decoded.values() for g in greys):
        decoded = {split: (x[..., :1], greys, t) for split, (x, greys, t) in decoded.items()}  # RGB files, grey content
        grey = True
    scaled = {split: x.astype(np.float32) / 255.0 for split, (x, _, _) in decoded.items()}
    labels = {split: np.array([names.index(item.label) for item in split_items], dtype=np.int64)
              for split, split_items in items.items()}  # fmt: skip
    notes = []
    resized = sum(n for shape, n in sizes.items() if shape != size)
    if resized:
        notes.append(f"{resized} of {len(every)} images were resized to {size[0]}x{size[1]} (sizes found: "
                     f"{_most_common(sizes, lambda s: f'{s[0]}x{s[1]}')}).")  # fmt: skip
    mode = "L" if grey else "RGB"
    modes = Counter(item.mode for item in every)
    converted = sum(n for m, n in modes.items() if m != mode)
    if converted:
        notes.append(f"{converted} images converted to {'grayscale' if grey else 'rgb'} (modes found: "
                     f"{_most_common(modes, str)}).")  # fmt: skip
    transparent = sum(t for _, _, t in decoded.values())
    if transparent:
        notes.append(f"{transparent} images with transparency were laid over black.")
    if skipped:
        notes.append(f"{skipped} file(s) skipped: not {'/'.join(IMAGE_EXTENSIONS)} images by their extension.")
    layout = f" ({', '.join(f'{s}/' for s in folders)})" if len(folders) > 1 else ""
    what = f"{len(every)} images from {root}{layout}, {size[0]}x{size[1]} {'grayscale' if grey else 'rgb'}"
    pair = {split: (scaled[split], labels[split]) for split in ("val", "test") if split in scaled}
    return Examples(what, scaled["train"], labels["train"], names, test=pair.get("test"), val=pair.get("val"),
                    notes=notes)  # fmt: skip


def _most_common(counts: Counter, show: Callable[[Any], str]) -> str:
    return ", ".join(f"{show(key)} ({n})" for key, n in counts.most_common(4)) + (", ..." if len(counts) > 4 else "")


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
