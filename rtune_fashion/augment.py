"""Data augmentation layers that are fast under every Keras backend.

Keras' ``RandomTranslation`` interpolates through ``ops.image.affine_transform``; under JAX on a GPU that
made a search's first epochs take 123-232 s instead of 8-13 s, and a steady epoch 60x longer (measured
on an H100: docs/benchmarks.md). :class:`RandomShift` moves whole pixels with two gathers instead: there,
a steady epoch as fast as with no shifts at all.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rtune_fashion")
class RandomShift(keras.layers.Layer):
    """While training, shift each image by a random whole number of pixels, independently per image and axis.

    ``factor`` is the largest shift as a fraction of the image's height and width (0.1 of 28 pixels: up to
    3 pixels either way, rounded to the nearest pixel). What moves out of the frame is lost; what comes in
    is zeros (Fashion-MNIST's background). At inference the layer is the identity. Inputs: (batch, height,
    width, channels).
    """

    def __init__(self, factor: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = float(factor)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def max_shifts(self, height: int, width: int) -> tuple[int, int]:
        """The largest shift in pixels along the height and the width."""
        return round(self.factor * height), round(self.factor * width)

    def call(self, images: Any, training: bool | None = None) -> Any:
        height, width = images.shape[1], images.shape[2]
        max_rows, max_cols = self.max_shifts(height, width)
        if not training or (max_rows == 0 and max_cols == 0):
            return images
        padded = ops.pad(images, [[0, 0], [max_rows, max_rows], [max_cols, max_cols], [0, 0]])
        batch = ops.shape(images)[0]
        # Offset of each image's window in the padded image: max_shift means no shift.
        rows = keras.random.randint((batch, 1), 0, 2 * max_rows + 1, seed=self.seed_generator)
        cols = keras.random.randint((batch, 1), 0, 2 * max_cols + 1, seed=self.seed_generator)
        row_index = ops.expand_dims(ops.expand_dims(rows + ops.arange(height), -1), -1)  # (batch, height, 1, 1)
        col_index = ops.expand_dims(ops.expand_dims(cols + ops.arange(width), 1), -1)  # (batch, 1, width, 1)
        shifted = ops.take_along_axis(padded, row_index, axis=1)
        return ops.take_along_axis(shifted, col_index, axis=2)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}
