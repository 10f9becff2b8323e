"""RandomShift: whole-pixel shifts, independent per image, zero-filled, identity at inference, saved with models."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from rtune_fashion.augment import RandomShift
from rtune_fashion.models import build_model


def _shift(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``image`` moved down by ``rows`` and right by ``cols`` pixels (negative: up, left), zeros coming in."""
    height, width = image.shape[:2]
    out = np.zeros_like(image)
    out[max(rows, 0) : height + min(rows, 0), max(cols, 0) : width + min(cols, 0)] = image[
        max(-rows, 0) : height + min(-rows, 0), max(-cols, 0) : width + min(-cols, 0)
    ]
    return out


def _matching_shift(before: np.ndarray, after: np.ndarray, max_rows: int, max_cols: int) -> tuple[int, int] | None:
    for rows in range(-max_rows, max_rows + 1):
        for cols in range(-max_cols, max_cols + 1):
            if np.array_equal(_shift(before, rows, cols), after):
                return rows, cols
    return None


def test_each_image_is_shifted_by_its_own_whole_pixel_offset_within_the_factor() -> None:
    images = np.random.default_rng(0).random((64, 28, 20, 2), dtype=np.float32) + 1  # no zero pixel inside
    layer = RandomShift(0.1, seed=3)
    assert layer.max_shifts(28, 20) == (3, 2)  # 2.8 and 2.0 pixels, rounded
    shifted = np.asarray(layer(images, training=True))
    offsets = [_matching_shift(before, after, 3, 2) for before, after in zip(images, shifted, strict=True)]
    assert None not in offsets  # every output is its input moved by whole pixels, zero-filled
    assert len(set(offsets)) > 10  # drawn per image, not once per batch
    assert {rows for rows, _ in offsets} == set(range(-3, 4)) and {cols for _, cols in offsets} == set(range(-2, 3))


def test_identity_at_inference_and_when_the_factor_rounds_to_zero() -> None:
    images = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(RandomShift(0.1)(images, training=False), images)
    np.testing.assert_array_equal(RandomShift(0.01)(images, training=True), images)  # 0.28 px: no shift


def test_a_model_with_shifts_saves_and_loads(tmp_path: Path) -> None:
    model = build_model({"model": "cnn", "num_blocks": 1, "filters": 4, "dense_units": 8, "augment_translate": 0.05})
    assert isinstance(model.get_layer("augment_translate"), RandomShift)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert loaded.get_layer("augment_translate").get_config()["factor"] == 0.05
    x = np.random.default_rng(2).random((3, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
