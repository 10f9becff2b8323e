from __future__ import annotations

import gzip
import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from rtune_fashion import data as data_module
from rtune_fashion.data import (
    CLASS_NAMES,
    IDX_FILES,
    DataError,
    download_dataset,
    find_data_dir,
    load_fashion_mnist,
    load_raw,
    parse_idx,
)

LABELS = "t10k-labels-idx1-ubyte"


@pytest.fixture(scope="module")
def source_dir() -> Path:
    return find_data_dir(download=False)


@pytest.fixture
def copy_dir(tmp_path: Path, source_dir: Path) -> Path:
    """A writable copy of the real gzipped idx files."""
    target = tmp_path / "fm"
    target.mkdir()
    for name in IDX_FILES:
        src = source_dir / f"{name}.gz"
        if src.exists():
            shutil.copy(src, target / f"{name}.gz")
        else:
            (target / f"{name}.gz").write_bytes(gzip.compress((source_dir / name).read_bytes()))
    return target


def _content(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def test_real_files_parse_with_expected_shapes(source_dir: Path) -> None:
    train_images, train_labels, test_images, test_labels = load_raw(source_dir)
    assert train_images.shape == (60000, 28, 28) and train_images.dtype == np.uint8
    assert test_images.shape == (10000, 28, 28)
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert np.bincount(test_labels).tolist() == [1000] * 10


def test_uncompressed_files_are_accepted(copy_dir: Path) -> None:
    gz = copy_dir / f"{LABELS}.gz"
    (copy_dir / LABELS).write_bytes(_content(gz))
    gz.unlink()
    labels = parse_idx(copy_dir / LABELS, IDX_FILES[LABELS])
    assert labels.shape == (10000,)


def test_truncated_gzip_names_the_file(copy_dir: Path) -> None:
    path = copy_dir / f"{LABELS}.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=rf"{LABELS}.gz is a damaged gzip file.*truncated.*Fix:"):
        load_raw(copy_dir)


def _flip_last_label(content: bytearray) -> None:
    content[-1] = (content[-1] + 1) % 10


def _set_magic(content: bytearray) -> None:
    content[3] = 0x99


def _set_count(content: bytearray) -> None:
    content[4:8] = (9999).to_bytes(4, "big")


def _truncate(content: bytearray) -> None:
    del content[5000:]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, r"is truncated: 5000 bytes of content, expected 10008"),
        (_flip_last_label, r"fails its checksum.*not the official Fashion-MNIST"),
        (_set_magic, r"magic number 2201, expected 2049"),
        (_set_count, r"declares shape \(9999,\), expected \(10000,\)"),
    ],
)
def test_damaged_content_is_named(copy_dir: Path, damage, message: str) -> None:
    path = copy_dir / f"{LABELS}.gz"
    content = bytearray(_content(path))
    damage(content)
    path.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match=rf"{LABELS}.gz .*{message}.*Fix:"):
        load_raw(copy_dir)


def test_missing_explicit_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere \(from --data-dir\) does not exist"):
        find_data_dir(tmp_path / "nowhere")


def test_incomplete_directory_lists_missing_files(copy_dir: Path) -> None:
    (copy_dir / f"{LABELS}.gz").unlink()
    with pytest.raises(DataError, match=rf"lacks {LABELS} \(plain or .gz\)"):
        find_data_dir(copy_dir)


def test_environment_variable_is_used_and_named(monkeypatch, copy_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("RTUNE_DATA_DIR", str(copy_dir))
    assert find_data_dir() == copy_dir
    monkeypatch.setenv("RTUNE_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="from RTUNE_DATA_DIR"):
        find_data_dir()


def test_keras_cache_comes_before_debian(monkeypatch, copy_dir: Path, tmp_path: Path) -> None:
    monkeypatch.delenv("RTUNE_DATA_DIR", raising=False)
    home = tmp_path / "keras-home"
    (home / "datasets").mkdir(parents=True)
    (home / "datasets" / "fashion-mnist").symlink_to(copy_dir)
    monkeypatch.setenv("KERAS_HOME", str(home))  # where Keras itself keeps its cache
    assert find_data_dir() == home / "datasets" / "fashion-mnist"
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setattr(data_module, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(DataError, match="was not found"):
        find_data_dir(download=False)


@pytest.fixture
def http_server(copy_dir: Path):
    """A real HTTP server on 127.0.0.1 serving copy_dir, standing in for the official mirror."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(copy_dir))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_download_verifies_and_caches(http_server: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    download_dataset(cache, base_url=http_server)
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in IDX_FILES)
    assert load_raw(cache)[1].shape == (60000,)


def test_corrupted_download_never_stays_in_cache(http_server: str, copy_dir: Path, tmp_path: Path) -> None:
    path = copy_dir / f"{LABELS}.gz"
    content = bytearray(_content(path))
    content[100] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(content)))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=rf"download of .*{LABELS}.gz is not valid.*checksum"):
        download_dataset(cache, base_url=http_server)
    assert not any(LABELS in p.name for p in cache.iterdir())  # no partial or bad file left


def test_unreachable_download_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Downloading .* failed.*RTUNE_DATA_URL"):
        download_dataset(tmp_path / "cache", base_url="http://127.0.0.1:9/")
    assert list((tmp_path / "cache").iterdir()) == []


def test_split_is_the_articles_split(source_dir: Path) -> None:
    dataset = load_fashion_mnist(source_dir)
    assert dataset.sizes() == {"train": 48000, "val": 12000, "test": 10000}
    train_images, train_labels, _, _ = load_raw(source_dir)
    _, x_val, _, y_val = train_test_split(train_images, train_labels, test_size=0.2, random_state=12345)
    np.testing.assert_array_equal(dataset.y_val, y_val)
    np.testing.assert_allclose(dataset.x_val[..., 0], x_val / 255.0, atol=1e-7)
    assert dataset.x_train.min() == 0.0 and dataset.x_train.max() == 1.0
    assert dataset.x_train.shape[1:] == (28, 28, 1) and dataset.input_shape == (28, 28, 1)
    assert dataset.class_names == CLASS_NAMES and dataset.num_classes == 10


def test_split_and_subset_are_deterministic(source_dir: Path) -> None:
    first = load_fashion_mnist(source_dir, subset={"train": 500, "val": 200, "test": 100}, subset_seed=3)
    second = load_fashion_mnist(source_dir, subset={"train": 500, "val": 200, "test": 100}, subset_seed=3)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert first.sizes() == {"train": 500, "val": 200, "test": 100}
    # stratified: the classes (not exactly balanced in the 48,000 training images) stay within one of 50
    assert all(abs(count - 50) <= 1 for count in np.bincount(first.y_train))
    assert np.bincount(first.y_test).tolist() == [10] * 10  # the test file is exactly balanced


def test_a_subset_that_leaves_out_fewer_examples_than_classes(source_dir: Path) -> None:
    """47,995 of 48,000: a stratified split cannot leave out 5 examples of 10 classes (it raised a traceback)."""
    data = load_fashion_mnist(source_dir, subset={"train": 47995, "test": 9999})
    assert data.sizes() == {"train": 47995, "val": 12000, "test": 9999}
    left_out = np.bincount(load_fashion_mnist(source_dir).y_train) - np.bincount(data.y_train, minlength=10)
    assert left_out.min() >= 0 and left_out.sum() == 5  # every class kept, but for 5 examples in all


def test_invalid_subset_is_refused(source_dir: Path) -> None:
    with pytest.raises(DataError, match=r"Invalid subset.*at least 10"):
        load_fashion_mnist(source_dir, subset={"train": 5})
    with pytest.raises(DataError, match="Invalid subset"):
        load_fashion_mnist(source_dir, subset={"training": 100})
