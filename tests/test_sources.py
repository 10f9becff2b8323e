"""--data: image folders, .npz arrays, idx folders and CSV tables read into a split Dataset, and every bad input
refused with a message that names the file or value and the fix (rtune_fashion.sources).

The data is made here from slices of the real Fashion-MNIST: 48x48 PNGs in 4 class folders (article C's shape),
a colour folder, an .npz, an MNIST-format idx set and a CSV.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rtune_fashion.data import CLASS_NAMES, load_raw
from rtune_fashion.errors import DataError, SearchSpaceError
from rtune_fashion.sources import DataSource, parse_image_size
from rtune_fashion.spaces import SPACES, check_fits_data

FOUR_CLASSES = ("coat", "dress", "pullover", "shirt")  # Fashion-MNIST's 4, 3, 2, 6: alike, so not trivial


@functools.cache
def _raw() -> tuple[np.ndarray, ...]:
    return load_raw()


def fashion_slice(per_class: int, classes: tuple[int, ...] = (4, 3, 2, 6)) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` real training images of each of ``classes`` (uint8 28x28) and their positions in ``classes``."""
    images, labels, _, _ = _raw()
    chosen = [np.flatnonzero(labels == c)[:per_class] for c in classes]
    index = np.concatenate(chosen)
    return images[index], np.repeat(np.arange(len(classes)), per_class)


def write_image_folder(root: Path, per_class: int = 20, *, size: int = 48, rgb: bool = False,
                       names: tuple[str, ...] = FOUR_CLASSES) -> Path:  # fmt: skip
    """Real Fashion-MNIST images as PNGs, one folder per class (article C: 48x48 grey, 4 classes)."""
    images, labels = fashion_slice(per_class, (4, 3, 2, 6)[: len(names)])
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(image).resize((size, size))
        if rgb:  # a tint per class, so that colour carries information too
            tint = np.array([[1.0, 0.6, 0.3], [0.3, 1.0, 0.6], [0.6, 0.3, 1.0], [1.0, 1.0, 0.4]])[label]
            picture = Image.fromarray((np.asarray(picture)[..., None] * tint).astype(np.uint8), "RGB")
        picture.save(folder / f"{i}.png")
    return root


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_idx_folder(root: Path, per_class: int = 12) -> Path:
    """An MNIST-format set (the four standard names) that is not Fashion-MNIST: 4 classes labelled 0, 1, 7, 9."""
    root.mkdir(parents=True, exist_ok=True)
    images, labels = fashion_slice(per_class)
    digits = np.array([0, 1, 7, 9])[labels]
    half = len(labels) // 2
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[half:], order[:half]
    write_idx(root / "train-images-idx3-ubyte.gz", images[train])
    write_idx(root / "train-labels-idx1-ubyte.gz", digits[train])
    write_idx(root / "t10k-images-idx3-ubyte.gz", images[test])
    write_idx(root / "t10k-labels-idx1-ubyte.gz", digits[test])
    return root


def write_npz(path: Path, per_class: int = 20, **extra: np.ndarray) -> Path:
    images, labels = fashion_slice(per_class)
    arrays = {"x_train": images, "y_train": np.array(FOUR_CLASSES)[labels], **extra}
    np.savez(path, **arrays)
    return path


def write_csv(path: Path, rows: int = 90) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 4)) * [1, 10, 100, 0.1] + [0, 5, 50, 1]
    label = np.where(x[:, 0] + x[:, 1] / 10 > 0.5, "yes", "no")
    lines = ["a,b,c,d,answer"] + [",".join([*(f"{v:.4f}" for v in row), lab]) for row, lab in zip(x, label,
                                                                                                  strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------------
# Each kind, read


def test_an_image_folder_is_read_split_stratified_and_said(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images", per_class=21)
    (root / "coat" / "notes.txt").write_text("not an image")
    lines: list[str] = []
    data = DataSource(str(root)).load(echo=lines.append)
    assert data.input_shape == (48, 48, 1) and data.class_names == FOUR_CLASSES
    assert data.x_train.dtype == np.float32 and data.x_train.min() >= 0 and data.x_train.max() <= 1
    sizes = data.sizes()
    assert sum(sizes.values()) == 84 and sizes["test"] == 12 and sizes["val"] == 14  # 1/7, then 20% of the rest
    for split in ("train", "val", "test"):  # stratified: every class in every split, in equal numbers
        counts = np.bincount(getattr(data, f"y_{split}"), minlength=4)
        assert counts.max() - counts.min() <= 1, (split, counts)
    assert len(lines) == 1 and lines[0].startswith(f"Data: 84 images from {root}, 48x48 grayscale; 4 classes (coat, ")
    assert "1 file(s) skipped: not .png/.jpg/.jpeg/.bmp/.gif images by their extension." in lines[0]
    again = DataSource(str(root)).load()  # the same split every time (the articles' split seed)
    assert np.array_equal(again.x_test, data.x_test)


def test_a_colour_folder_of_mixed_sizes_is_resized_and_said(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "colour", per_class=6, size=32, rgb=True)
    Image.fromarray(np.zeros((40, 36, 3), np.uint8), "RGB").save(root / "coat" / "odd.png")
    Image.fromarray(np.zeros((32, 32), np.uint8), "L").save(root / "dress" / "grey.png")
    lines: list[str] = []
    data = DataSource(str(root)).load(echo=lines.append)
    assert data.input_shape == (32, 32, 3)  # the size most images have; colour, since some are not grey
    assert "1 of 26 images were resized to 32x32 (sizes found: 32x32 (25), 40x36 (1))." in lines[0]
    assert "1 images converted to rgb (modes found: RGB (25), L (1))." in lines[0]
    grey = DataSource(str(root), color="grayscale", image_size=(24, 20)).load()
    assert grey.input_shape == (24, 20, 1)


def test_a_folder_with_train_and_test_folders_keeps_its_test_split(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "split" / "train", per_class=10, size=28)
    write_image_folder(tmp_path / "split" / "test", per_class=3, size=28)
    lines: list[str] = []
    data = DataSource(str(tmp_path / "split")).load(echo=lines.append)
    assert data.sizes() == {"train": 32, "val": 8, "test": 12}
    assert "test: the given test split" in lines[0]


def test_an_npz_with_text_labels_and_its_own_test_split(tmp_path: Path) -> None:
    images, labels = fashion_slice(3)
    path = write_npz(tmp_path / "arrays.npz", x_test=images, y_test=np.array(FOUR_CLASSES)[labels])
    data = DataSource(str(path)).load()
    assert data.class_names == FOUR_CLASSES and data.input_shape == (28, 28, 1)
    assert data.sizes() == {"train": 64, "val": 16, "test": 12}
    assert np.allclose(data.x_test, images[..., None] / 255.0)  # uint8 divided by 255
    unit = np.savez(tmp_path / "unit.npz", x_train=images / 255.0, y_train=labels)
    assert unit is None and np.allclose(DataSource(str(tmp_path / "unit.npz")).load().x_test.max(), 1.0, atol=0.2)
    assert [FOUR_CLASSES[i] for i in data.y_test] == [FOUR_CLASSES[i] for i in labels]


def test_an_npz_with_integer_labels_takes_its_class_names(tmp_path: Path) -> None:
    images, labels = fashion_slice(10)
    names = np.array(["zeta", "alpha", "mu", "beta"])  # not in sorted order: label i is names[i]
    np.savez(tmp_path / "named.npz", x_train=images, y_train=labels, class_names=names,
             x_test=images[:8], y_test=labels[:8])  # fmt: skip
    data = DataSource(str(tmp_path / "named.npz")).load()
    assert data.class_names == tuple(names) and np.array_equal(data.y_test, labels[:8])
    assert sorted(np.unique(data.y_train)) == [0, 1, 2, 3]


def test_labels_that_are_numbers_sort_by_value_whatever_their_type(tmp_path: Path) -> None:
    images, _ = fashion_slice(3)
    text = np.array(["2", "10", "1.0"] * 4)  # numeric strings: by value, and 1.0 is class 1
    np.savez(tmp_path / "numbers.npz", x_train=images, y_train=text)
    data = DataSource(str(tmp_path / "numbers.npz")).load()
    assert data.class_names == ("1", "2", "10")
    everything = np.concatenate([data.y_train, data.y_val, data.y_test])
    assert sorted(np.bincount(everything)) == [4, 4, 4]


def test_an_idx_folder_of_another_dataset_is_read_without_a_checksum(tmp_path: Path) -> None:
    root = write_idx_folder(tmp_path / "mnist_like")
    lines: list[str] = []
    data = DataSource(str(root)).load(echo=lines.append)
    assert data.class_names == ("0", "1", "7", "9") and data.input_shape == (28, 28, 1)
    assert data.sizes()["test"] == 24  # its own t10k files
    assert "no known checksum: checked for magic numbers, shapes and sizes" in lines[0]


def test_fashion_mnist_s_own_idx_folder_is_read_as_fashion_mnist() -> None:
    """Known by its checksums: the articles' split, exactly as --data fashion_mnist reads it."""
    from rtune_fashion.data import find_data_dir, load_fashion_mnist

    sizes = {"train": 100, "val": 50, "test": 50}
    lines: list[str] = []
    data = DataSource(str(find_data_dir())).load(subset=sizes, echo=lines.append)
    same = load_fashion_mnist(subset=sizes)
    assert data.class_names == CLASS_NAMES and data.sizes() == sizes
    assert all(np.array_equal(getattr(data, k), getattr(same, k)) for k in ("x_train", "y_train", "x_val", "x_test"))
    assert "(checksums verified)" in lines[0] and "(the articles' split)" in lines[0]


def test_a_csv_table_is_standardised_on_its_training_split(tmp_path: Path) -> None:
    data = DataSource(str(write_csv(tmp_path / "table.csv")), label="answer").load()
    assert data.input_shape == (4,) and data.class_names == ("no", "yes")
    assert np.allclose(data.x_train.mean(axis=0), 0, atol=1e-5) and np.allclose(data.x_train.std(axis=0), 1, atol=1e-4)
    assert not np.allclose(data.x_test.mean(axis=0), 0, atol=1e-3)  # the test rows use the training statistics


def test_image_sizes_are_parsed() -> None:
    assert parse_image_size("48x40") == (48, 40) and parse_image_size("32") == (32, 32)
    with pytest.raises(DataError, match=r"--image-size must be HEIGHTxWIDTH in pixels \(e.g. 48x48\), got '48x'"):
        parse_image_size("48x")


# ---------------------------------------------------------------------------------------------------
# Bad data: refused with the file or value and the fix


def _corrupt_png(root: Path) -> str:
    path = root / "coat" / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return rf"{path} is not a readable image \(.*\)\. Fix: replace or delete the file\."


def _empty_class(root: Path) -> str:
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("nothing")
    return (rf"Class folder {root / 'empty'} has no images \(1 file\(s\), none of them .png/.jpg/.jpeg/.bmp/.gif\)\. "
            r"Fix: add images of class 'empty' or remove the folder\.")


def _single_class(root: Path) -> str:
    for name in FOUR_CLASSES[1:]:
        for path in (root / name).iterdir():
            path.unlink()
        (root / name).rmdir()
    return r"has one class \(coat\): there is nothing to classify\. Fix: give examples of two classes or more\."


def _rare_class(root: Path) -> str:
    for path in sorted((root / "shirt").iterdir())[1:]:
        path.unlink()
    return (r"class 'shirt' has 1 example\(s\), too few to keep one for training and one for the test and validation "
            r"split\. Fix: add examples of it \(at least 3\), or remove the class\.")


def _no_class_folders(root: Path) -> str:
    for name in FOUR_CLASSES:
        for path in (root / name).iterdir():
            path.rename(root / f"{name}_{path.name}")
        (root / name).rmdir()
    return rf"{root} has no class folders\. Fix: put each class's images in a subfolder named after the class"


@pytest.mark.parametrize("damage", [_corrupt_png, _empty_class, _single_class, _rare_class, _no_class_folders])
def test_a_bad_image_folder_is_refused_naming_the_problem(tmp_path: Path, damage) -> None:
    root = write_image_folder(tmp_path / "images", per_class=4, size=16)
    message = damage(root)
    with pytest.raises(DataError, match=message):
        DataSource(str(root)).load()


def _npz(tmp_path: Path, **arrays: np.ndarray) -> str:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


IMAGES = np.zeros((12, 8, 8), np.uint8)
LABELS = np.arange(12) % 3


@pytest.mark.parametrize(("arrays", "message"), [
    ({"y_train": LABELS}, r"has no x_train \(it has: y_train\)\. Fix: save the training images as x_train"),
    ({"x_train": IMAGES, "y_train": LABELS[:10]},
     r"y_train has shape \(10,\), x_train has 12 examples\. Fix: one label per example \(shape \(12,\)\)\."),
    ({"x_train": np.where(np.arange(12)[:, None, None] == 5, np.nan, IMAGES / 255.0), "y_train": LABELS},
     r"x_train holds nan at index \(5, 0, 0, 0\)\. Fix: remove or fill the examples with NaN or infinite values\."),
    ({"x_train": np.full((12, 8, 8), np.inf), "y_train": LABELS}, r"x_train holds inf at index \(0, 0, 0, 0\)"),
    ({"x_train": IMAGES.astype(np.float32) - 3.0, "y_train": LABELS},
     r"x_train has pixel values from -3 to -3, outside both known scales \(\[0, 1\] and \[0, 255\]\)\. Fix: rescale"),
    ({"x_train": IMAGES.astype(np.int32) + 1000, "y_train": LABELS}, r"pixel values from 1000 to 1000, outside"),
    ({"x_train": np.zeros((12, 8, 8, 2)), "y_train": LABELS},
     r"x_train has shape \(12, 8, 8, 2\): images must be \(n, height, width\) or \(n, height, width, channels\)"),
    ({"x_train": IMAGES, "y_train": LABELS, "x_test": IMAGES},
     r"has only one of x_test and y_test\. Fix: both or neither\."),
    ({"x_train": IMAGES, "y_train": LABELS, "x_test": np.zeros((3, 9, 9), np.uint8), "y_test": LABELS[:3]},
     r"x_test has examples of shape \(9, 9, 1\), x_train \(8, 8, 1\)\. Fix: the same shape in every split\."),
    ({"x_train": IMAGES.astype(np.float32) + 7, "y_train": LABELS, "x_test": IMAGES[:3] / 255.0, "y_test": LABELS[:3]},
     r"x_test holds floats in \[0, 1\] but x_train goes beyond 1 \(the \[0, 255\] scale\)\. Fix: one scale"),
    ({"x_train": IMAGES, "y_train": LABELS, "x_test": IMAGES[:3], "y_test": np.array([0, 1, 5])},
     r"y_test has classes the training split does not: 5\. Fix: the same classes in every split\."),
])  # fmt: skip
def test_bad_arrays_are_refused_naming_the_array_and_value(tmp_path: Path, arrays, message: str) -> None:
    with pytest.raises(DataError, match=message):
        DataSource(_npz(tmp_path, **arrays)).load()


def test_a_file_that_is_not_an_npz_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.npz"
    path.write_text("not an archive")
    with pytest.raises(DataError, match=rf"{path} is not a readable \.npz archive .*Fix: save it with numpy\.savez\."):
        DataSource(str(path)).load()


def test_a_damaged_idx_folder_is_refused_naming_the_file(tmp_path: Path) -> None:
    root = write_idx_folder(tmp_path / "idx")
    labels = root / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:-3]))
    with pytest.raises(DataError, match=rf"{labels} is truncated: 29 bytes of content, expected 32\. Fix: the folder "
                                        "needs train-images-idx3-ubyte"):  # fmt: skip
        DataSource(str(root)).load()
    labels.unlink()
    with pytest.raises(DataError, match=rf"{root} lacks t10k-labels-idx1-ubyte \(plain or \.gz\)"):
        DataSource(str(root)).load()


@pytest.mark.parametrize(("source", "message"), [
    (DataSource("/no/such/folder"), r"--data /no/such/folder does not exist\. Fix: --data takes fashion_mnist, a "),
    (DataSource(__file__), r"a \.py file is not data rtune reads\. Fix: --data takes fashion_mnist"),
    (DataSource("fashion_mnist", color="rgb"), r"--color applies to image folders; --data fashion_mnist is fashion_"),
    (DataSource("fashion_mnist", label="x"), r"--label applies to CSV tables; --data fashion_mnist is fashion_mnist"),
])  # fmt: skip
def test_options_that_do_not_fit_the_data_are_refused(source: DataSource, message: str) -> None:
    with pytest.raises(DataError, match=message):
        source.load()


def test_a_subset_below_one_example_per_class_is_refused(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images", per_class=6, size=16)
    with pytest.raises(DataError, match=r"Invalid subset \{'train': 3\}: give one size or sizes for train/val/test, "
                                        r"each at least 4 \(one example per class\)\. Fix: larger --train-size"):
        DataSource(str(root)).load(subset={"train": 3})


@pytest.mark.parametrize(("space", "shape", "message"), [
    ("cnn_article_c", (4,), r"space 'cnn_article_c' builds CNNs, which need images \(height x width x channels\); "
                            r"csv t\.csv has examples of shape 4\. Fix: an MLP space \(mlp_hyperas, "),
    ("mlp_wide", (4,), r"space 'mlp_wide' searches augment_flip, augment_translate, which flip or shift images"),
    ("cnn_wide", (6, 6, 1), r"space 'cnn_wide' on 6x6x1 images allows an impossible CNN"),
])  # fmt: skip
def test_a_space_whose_models_cannot_take_the_data_is_refused(space: str, shape, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        check_fits_data(SPACES[space], shape, "csv t.csv")
    check_fits_data(SPACES["mlp_hyperas"], shape)  # an MLP without augmentation takes anything


# ---------------------------------------------------------------------------------------------------
# Layouts, image formats and small classes (a review found each of these wrong once)


def test_a_folder_with_train_and_val_folders_uses_both(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "split" / "train", per_class=14, size=28)
    write_image_folder(tmp_path / "split" / "val", per_class=2, size=28)
    lines: list[str] = []
    data = DataSource(str(tmp_path / "split")).load(echo=lines.append)
    assert data.class_names == FOUR_CLASSES and data.sizes() == {"train": 48, "val": 8, "test": 8}
    assert "(train/, val/)" in lines[0] and "validation: the given validation split" in lines[0]


def test_a_val_folder_without_train_is_refused(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "split" / "val", per_class=2, size=16)
    write_image_folder(tmp_path / "split" / "test", per_class=2, size=16)
    with pytest.raises(DataError, match=r"has val and test folder\(s\) but no train/ folder: a folder split into "
                                        r"train/ \(and val/, test/\) needs train/"):  # fmt: skip
        DataSource(str(tmp_path / "split")).load()


def test_image_formats_keep_their_content(tmp_path: Path) -> None:
    """16-bit grey keeps its depth; a palette or RGB file with grey content counts as grey; EXIF orientation is
    applied; transparency is laid over black and counted."""
    root = tmp_path / "formats"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):  # plain grey images, so that each class has enough for the split
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / name / f"plain{i}.png")
    deep = np.full((8, 8), 30000, np.uint16)
    Image.fromarray(deep).save(root / "a" / "deep.png")  # mode I;16
    grey_rgb = np.repeat(np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 3, 3, axis=-1)
    Image.fromarray(grey_rgb, "RGB").save(root / "a" / "rgb_but_grey.png")
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert("P").save(root / "b" / "palette.png")
    transparent = np.zeros((8, 8, 4), np.uint8)
    transparent[..., :3], transparent[..., 3] = 200, 0  # white-ish pixels, fully transparent
    Image.fromarray(transparent, "RGBA").save(root / "b" / "clear.png")
    wide = Image.fromarray(np.tile(np.arange(16, dtype=np.uint8) * 16, (8, 1)))  # 8 high, 16 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: upright it is 16 high, 8 wide
    wide.convert("RGB").save(root / "b" / "rotated.jpg", exif=exif)
    lines: list[str] = []
    data = DataSource(str(root), image_size=(8, 8)).load(echo=lines.append)
    assert data.input_shape == (8, 8, 1)  # every image grey in content: one channel
    everything = np.concatenate([data.x_train, data.x_val, data.x_test])
    assert any(np.allclose(image, 30000 / 65535, atol=1e-3) for image in everything)  # not clipped to 1.0
    assert "1 images with transparency were laid over black." in lines[0]
    clear = DataSource(str(root), image_size=(8, 8), color="rgb").load()
    assert clear.input_shape == (8, 8, 3)
    assert not any(np.allclose(image, 200 / 255, atol=0.02) for image in np.concatenate([clear.x_train, clear.x_test,
                                                                                          clear.x_val]))  # fmt: skip


def test_exif_orientation_decides_the_size(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            exif = Image.Exif()
            exif[0x0112] = 6
            Image.new("RGB", (30, 20), (i * 50, 0, 0)).save(root / name / f"{i}.jpg", exif=exif)
    assert DataSource(str(root)).load().input_shape == (30, 20, 3)  # stored 20 high and 30 wide, shown upright


def test_a_class_with_one_example_per_split_survives_subsets_and_splits(tmp_path: Path) -> None:
    images, labels = fashion_slice(40, (4, 3))
    rare = fashion_slice(3, (9,))[0]
    np.savez(tmp_path / "rare.npz", x_train=np.concatenate([images, rare]),
             y_train=np.array(["coat"] * 40 + ["dress"] * 40 + ["boot"] * 3))  # fmt: skip
    data = DataSource(str(tmp_path / "rare.npz")).load()
    boot = data.class_names.index("boot")
    assert [int((getattr(data, f"y_{s}") == boot).sum()) for s in ("train", "val", "test")] == [1, 1, 1]
    small = DataSource(str(tmp_path / "rare.npz")).load(subset={"train": 20, "val": 10, "test": 5})
    assert all(boot in getattr(small, f"y_{s}") for s in ("train", "val", "test"))


@pytest.mark.parametrize(("content", "message"), [
    (b"PK\x03\x04 truncated", r"is not a readable \.npz archive \(.*\)\. Fix: save it with numpy\.savez\."),
])  # fmt: skip
def test_a_truncated_npz_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "cut.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        DataSource(str(path)).load()


def test_empty_and_misnamed_arrays_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"x_train has no examples\. Fix: give examples, or leave the split out\."):
        DataSource(_npz(tmp_path, x_train=np.zeros((0, 8, 8)), y_train=np.zeros(0))).load()
    with pytest.raises(DataError, match=r"y_train holds 7, but with 3 class_names the labels must be integers 0 to 2"):
        DataSource(_npz(tmp_path, x_train=IMAGES, y_train=np.arange(12) % 8,
                        class_names=np.array(["a", "b", "c"]))).load()  # fmt: skip
    with pytest.raises(DataError, match=r"y_train\[4\]: the label is ''\. Fix: give every example a class"):
        DataSource(_npz(tmp_path, x_train=IMAGES, y_train=np.array(["a", "b", "c", "a", "", "b"] * 2))).load()


def test_bad_csv_tables_are_refused(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,b,label\n1,2,caf\xe9\n3,4,th\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{latin} is not UTF-8 text \(.*\)\. Fix: save the table as UTF-8 CSV\."):
        DataSource(str(latin)).load()
    blank = tmp_path / "blank.csv"
    blank.write_text("a,b,label\n1,2,yes\n3,4,\n5,6,no\n")
    with pytest.raises(DataError, match=rf"{blank} line 3, column 'label': the label is ''\. Fix: give every example"):
        DataSource(str(blank)).load()
    bom = tmp_path / "bom.csv"
    bom.write_text("\ufeffanswer,b\n" + "".join(f"{'yes' if i % 2 else 'no'},{i}\n" for i in range(30)))
    assert DataSource(str(bom), label="answer").load().class_names == ("no", "yes")  # the mark is not in the name


def test_image_sizes_are_the_same_setting_however_written() -> None:
    from rtune_fashion.experiment import ExperimentSettings

    assert ExperimentSettings(space="cnn_article_c", searcher="random", image_size="48").image_size == "48x48"
