"""Fashion-MNIST: find the idx files, verify them, parse them, split them the articles' way.

Search order for the four idx files (gzipped or not):

1. an explicit directory (``data_dir`` argument, ``--data-dir``, or ``RTUNE_DATA_DIR``): used alone,
   never falling back elsewhere, so a typo is an error rather than a silent switch of dataset;
2. Keras' cache ``$KERAS_HOME/datasets/fashion-mnist`` (``KERAS_HOME`` defaults to ``~/.keras``);
3. Debian's ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``);
4. a download from the official source into Keras' cache (atomically: a bad download never stays).

Every file is verified before use (idx magic number, counts and shapes, and the SHA-256 of its
decompressed content); any problem is a :class:`DataError` naming the file, the problem and the fix.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtune_fashion.errors import DataError
from rtune_fashion.files import download_verified, keras_home

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# The articles' protocol: 80/20 split of the 60,000 training images with this seed.
VALIDATION_FRACTION = 0.2
SPLIT_SEED = 12345



def keras_cache_dir() -> Path:
    """Fashion-MNIST's folder in Keras' cache (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``)."""
    return keras_home() / "datasets" / "fashion-mnist"

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DATA_DIR_ENV = "RTUNE_DATA_DIR"
DOWNLOAD_URL_ENV = "RTUNE_DATA_URL"


@dataclass(frozen=True)
class IdxFile:
    """One standard Fashion-MNIST file: its name, idx magic number, shape, and content checksum."""

    name: str
    magic: int
    shape: tuple[int, ...]
    sha256: str  # of the decompressed content


IDX_FILES: dict[str, IdxFile] = {
    f.name: f
    for f in (
        IdxFile("train-images-idx3-ubyte", 2051, (60000, 28, 28),
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        IdxFile("train-labels-idx1-ubyte", 2049, (60000,),
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        IdxFile("t10k-images-idx3-ubyte", 2051, (10000, 28, 28),
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        IdxFile("t10k-labels-idx1-ubyte", 2049, (10000,),
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    )
}  # fmt: skip

_FIX = (
    "Fix: install Debian's package (apt-get install dataset-fashion-mnist), point --data-dir or "
    f"{DATA_DIR_ENV} at a directory holding the four idx files, or delete the file so it is downloaded again."
)


@dataclass(frozen=True)
class Dataset:
    """Image arrays as float32 in [0, 1] with shape (n, height, width, channels); labels as int64.

    The test split is kept apart: only the final evaluation of the chosen model may read it.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def subset(self, sizes: dict[str, int], seed: int = 0) -> Dataset:
        """Stratified subsets of the named splits (the same draw as ``load_fashion_mnist(subset=...)``)."""
        chosen = {}
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            chosen[split] = stratified_subset(x, y, int(sizes.get(split, len(y))), seed)
        return Dataset(*chosen["train"], *chosen["val"], *chosen["test"], class_names=self.class_names)


# ---------------------------------------------------------------------------------------------------
# Reading and verifying one idx file


def _read_bytes(path: Path, fix: str = _FIX) -> bytes:
    """The decompressed content of ``path`` (gzip detected by its magic bytes, not its name)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"Cannot read {path}: {error.strerror}. {fix}") from error
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is a damaged gzip file ({error}); it is truncated or corrupted. {fix}") from error


IDX_UBYTE = 0x08  # the idx type code of unsigned bytes, the only one image datasets of this format use


def read_idx(path: Path, fix: str = _FIX, *, expected: IdxFile | None = None) -> np.ndarray:
    """Parse any idx file of unsigned bytes (images ``n x rows x cols``, labels ``n``); return a read-only uint8
    array of the shape its header declares (``expected``: the magic number and shape it must have).

    Raises:
        DataError: unreadable file, bad gzip, a header that is not idx (magic bytes ``0 0 8 d``) or not
            ``expected``'s, or a size that differs from what the header declares; each names the file and ends
            with ``fix``.
    """
    content = _read_bytes(path, fix)
    if len(content) < 4:
        raise DataError(f"{path} is truncated: {len(content)} bytes, too short for an idx header. {fix}")
    magic = int.from_bytes(content[:4], "big")
    ndim = content[3]
    if expected is not None and magic != expected.magic:
        raise DataError(f"{path} has idx magic number {magic}, expected {expected.magic} for {expected.name}: it is "
                        f"not that file, or it is corrupted. {fix}")  # fmt: skip
    if content[:2] != b"\0\0" or content[2] != IDX_UBYTE or not 1 <= ndim <= 4:
        raise DataError(f"{path} has idx magic number {magic}, expected 2051 (images) or 2049 (labels): it is not "
                        f"an idx file of bytes, or it is corrupted. {fix}")  # fmt: skip
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(f"{path} is truncated inside its header ({len(content)} bytes). {fix}")
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if expected is not None and shape != expected.shape:
        raise DataError(f"{path} declares shape {shape}, expected {expected.shape} for {expected.name}. {fix}")
    expected_size = header_size + int(np.prod(shape))
    if len(content) != expected_size:
        problem = "truncated" if len(content) < expected_size else "longer than its header says"
        raise DataError(f"{path} is {problem}: {len(content)} bytes of content, expected {expected_size}. {fix}")
    array = np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(shape)
    array.flags.writeable = False
    return array


def idx_sha256(array: np.ndarray) -> str:
    """The SHA-256 of the idx file content (header and bytes, decompressed) that :func:`read_idx` read."""
    header = bytes([0, 0, IDX_UBYTE, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def parse_idx(path: Path, spec: IdxFile, *, verify_checksum: bool = True) -> np.ndarray:
    """Parse one idx file (:func:`read_idx`) and verify it against ``spec``; return a uint8 array of ``spec.shape``.

    Raises:
        DataError: what :func:`read_idx` raises (with ``spec``'s magic number and shape expected), or a content
            checksum that differs from the official file's.
    """
    array = read_idx(path, expected=spec)
    if verify_checksum:
        digest = idx_sha256(array)
        if digest != spec.sha256:
            raise DataError(
                f"{path} fails its checksum: SHA-256 of the content is {digest[:16]}..., expected "
                f"{spec.sha256[:16]}...; the file is corrupted or not the official Fashion-MNIST. {_FIX}"
            )
    return array


# ---------------------------------------------------------------------------------------------------
# Finding the files


def idx_path(directory: Path, name: str) -> Path | None:
    """The idx file ``name`` in ``directory``, gzipped (``.gz``) or plain; None when neither is there."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _complete_dir(directory: Path) -> bool:
    return all(idx_path(directory, name) is not None for name in IDX_FILES)


def find_data_dir(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The directory to read the four idx files from, following the module's search order.

    Raises:
        DataError: an explicit directory that is missing or incomplete, or no copy found and the
            download failed (or ``download`` is False).
    """
    explicit = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if explicit is not None:
        directory = Path(explicit).expanduser()
        source = "--data-dir" if data_dir is not None else DATA_DIR_ENV
        if not directory.is_dir():
            raise DataError(
                f"Data directory {directory} (from {source}) does not exist. Fix: point {source} at a "
                "directory holding the four Fashion-MNIST idx files, or leave it unset to use the "
                "Keras cache, Debian's dataset-fashion-mnist package or a download."
            )
        missing = [name for name in IDX_FILES if idx_path(directory, name) is None]
        if missing:
            raise DataError(
                f"Data directory {directory} (from {source}) lacks {', '.join(missing)} (plain or .gz). "
                f"Fix: copy the missing files there, or point {source} elsewhere."
            )
        return directory
    for directory in (keras_cache_dir(), DEBIAN_DIR):
        if _complete_dir(directory):
            return directory
    if not download:
        raise DataError(f"Fashion-MNIST was not found in {keras_cache_dir()} or {DEBIAN_DIR}. {_FIX}")
    return download_dataset(keras_cache_dir())


def download_dataset(target: Path, base_url: str | None = None) -> Path:
    """Download the four gzipped idx files into ``target``, verifying each before it is moved in.

    Each file is written to a temporary file in ``target`` and renamed only after it parsed and matched
    its checksum, so an interrupted or corrupted download never stays in the cache.
    """
    base_url = base_url or os.environ.get(DOWNLOAD_URL_ENV) or DOWNLOAD_URL
    target.mkdir(parents=True, exist_ok=True)
    fix = f"check the network, set {DOWNLOAD_URL_ENV} to a mirror, or install Debian's dataset-fashion-mnist package."
    for name, spec in IDX_FILES.items():
        final = target / f"{name}.gz"
        if not final.is_file():
            url = base_url.rstrip("/") + f"/{name}.gz"
            download_verified(url, final, lambda path, spec=spec: parse_idx(path, spec), fix)
    return target


# ---------------------------------------------------------------------------------------------------
# The dataset


def load_raw(data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_images, train_labels, test_images, test_labels) as verified uint8 arrays."""
    directory = find_data_dir(data_dir)
    arrays = []
    for name, spec in IDX_FILES.items():
        path = idx_path(directory, name)
        assert path is not None  # find_data_dir checked
        arrays.append(parse_idx(path, spec))
    train_images, train_labels, test_images, test_labels = arrays
    if int(train_labels.max()) >= len(CLASS_NAMES) or int(test_labels.max()) >= len(CLASS_NAMES):
        raise DataError(f"Labels in {directory} exceed the {len(CLASS_NAMES)} Fashion-MNIST classes. {_FIX}")
    return train_images, train_labels, test_images, test_labels


def _scale(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def train_test_split(*arrays: np.ndarray, **options) -> list[np.ndarray]:
    """scikit-learn's ``train_test_split``, imported on first use: Ray's trial workers import this module but
    never split, and importing scikit-learn costs each of them over a second on a slow core."""
    from sklearn.model_selection import train_test_split as split

    return split(*arrays, **options)


def stratified_subset(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` examples of (x, y) with the class proportions kept; all of them when n >= len(y). A class with a
    single example keeps it (a stratified split cannot divide it). When fewer examples are left out than there
    are classes (which a stratified split cannot do either), a seeded random ``n`` of them: leaving out so few
    cannot change a class's share by more than those few. (Sizes below the number of classes are refused by
    :func:`load_fashion_mnist` and :meth:`rtune_fashion.sources.DataSource.load`.)
    """
    if n >= len(y):
        return x, y
    classes, counts = np.unique(y, return_counts=True)
    if len(y) - n < len(classes):
        keep = np.random.default_rng(seed).choice(len(y), size=n, replace=False)
    else:
        single = np.isin(y, classes[counts == 1])
        rest = np.flatnonzero(~single)
        kept, _ = train_test_split(rest, train_size=n - int(single.sum()), stratify=y[rest], random_state=seed)
        keep = np.concatenate([np.flatnonzero(single), kept])
    keep = np.sort(keep)
    return x[keep], y[keep]


def check_subset(subset: int | dict[str, int], classes: int) -> dict[str, int]:
    """``subset`` as sizes per split (one size: the same for train, val and test).

    Raises:
        DataError: a split other than train/val/test, or a size below ``classes`` (one example per class).
    """
    sizes = subset if isinstance(subset, dict) else dict.fromkeys(("train", "val", "test"), subset)
    if set(sizes) - {"train", "val", "test"} or any(int(n) < classes for n in sizes.values()):
        raise DataError(f"Invalid subset {subset!r}: give one size or sizes for train/val/test, each at least "
                        f"{classes} (one example per class). Fix: larger --train-size / --val-size / --test-size.")
    return {split: int(n) for split, n in sizes.items()}


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    subset: int | dict[str, int] | None = None,
    subset_seed: int = 0,
) -> Dataset:
    """The articles' split: train 48,000 / validation 12,000 from the training file, test 10,000 apart.

    Args:
        data_dir: explicit directory of idx files (see the module docstring for the search order).
        subset: a stratified subset for smoke runs and tests: ``n`` examples per split, or a dict of
            ``{"train": n, "val": n, "test": n}``. The split itself is always the full, exact one.
        subset_seed: seed of the subset draw.
    """
    return articles_split(*load_raw(data_dir), subset=subset, subset_seed=subset_seed)


def articles_split(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                   test_labels: np.ndarray, *, subset: int | dict[str, int] | None = None,
                   subset_seed: int = 0) -> Dataset:  # fmt: skip
    """Fashion-MNIST's four verified arrays split as the articles did (:func:`load_fashion_mnist`)."""
    x_train, x_val, y_train, y_val = train_test_split(
        train_images, train_labels, test_size=VALIDATION_FRACTION, random_state=SPLIT_SEED
    )
    splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (test_images, test_labels)}
    if subset is not None:
        sizes = check_subset(subset, len(CLASS_NAMES))
        splits = {
            split: stratified_subset(x, y, sizes.get(split, len(y)), subset_seed)
            for split, (x, y) in splits.items()
        }
    return Dataset(
        x_train=_scale(splits["train"][0]),
        y_train=splits["train"][1].astype(np.int64),
        x_val=_scale(splits["val"][0]),
        y_val=splits["val"][1].astype(np.int64),
        x_test=_scale(splits["test"][0]),
        y_test=splits["test"][1].astype(np.int64),
    )
