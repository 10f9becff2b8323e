"""Image folders (``--data FOLDER``): one subfolder per class, or train/, val/ and test/ folders of them.

See :mod:`rtune_fashion.sources` for what is read and how; two passes: the headers (sizes, modes, EXIF
orientation), then each image decoded once, made upright, grey or RGB, resized, into its place in the arrays.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtune_fashion.errors import DataError
from rtune_fashion.examples import Examples

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}
READ_THREADS = 8  # images decoded at once: Pillow's decoders release the GIL
_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # more than 8 bits per pixel, grey
_GREY_MODES = ("1", "L", "LA", "La", *_DEEP_MODES)
_ORIENTATION = 0x0112  # EXIF orientation: 5 to 8 swap width and height


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
                        f"class ({root}/cat/1.png, {root}/dog/1.png, ...), or give --data another kind (see --help).")
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
