"""Layers whose shape-free hyperparameters are runtime values, not constants of the compiled program.

A Keras step is traced into one program per model. A hyperparameter held as a Python number (Keras'
``Dropout(0.3)``, ``L2(1e-4)``) is baked into that program, so two trials of one architecture that differ
only in dropout compile twice, and JAX's persistent compilation cache (:mod:`rtune_fashion.devices`) cannot
serve the second. Here the dropout rate and the L2 factor are non-trainable variables of their layer (the
learning rate already is one, in the optimizer): the program takes them as inputs, and every trial of one
:func:`rtune_fashion.config.architecture` runs the same program. That gain is JAX's (its compilation cache
outlives a model, and a process); TensorFlow and PyTorch trace every model anew whatever its values.

Contract: a model built with these layers trains exactly as with Keras' own (same random draws, same
arithmetic: tests/test_runtime_values.py compares the weights after an epoch). Whether a layer has dropout or
an L2 penalty at all is part of the architecture (a rate of 0 builds no dropout layer, as before), so only
the amounts are runtime values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
from keras import ops


def _scalar(layer: keras.layers.Layer, name: str, value: float) -> keras.Variable:
    # float32 whatever the layer's dtype policy, as the Python number Keras would use (never cast to bfloat16)
    return layer.add_weight(shape=(), initializer=keras.initializers.Constant(value), dtype="float32",
                            trainable=False, autocast=False, name=name)  # fmt: skip


@keras.saving.register_keras_serializable(package="rtune_fashion")
class RuntimeDropout(keras.layers.Dropout):
    """``keras.layers.Dropout`` whose keep probability, ``1 - rate``, is the non-trainable variable
    ``keep_value`` under JAX (``rate`` keeps the value the layer was built with, for its config).

    Under JAX this is Keras' own JAX dropout (a Bernoulli mask drawn as ``uniform < keep``, kept inputs
    scaled by ``1 / keep``), written with ops that take a traced ``keep``: Keras' version branches on the rate in
    Python. TensorFlow and PyTorch run Keras' own dropout with the built rate: they trace every model anew, so
    a variable would gain nothing there. The rate must be in (0, 1): for 0 no layer is built.
    """

    def __init__(self, rate: float, **kwargs: Any) -> None:
        if not 0 < rate < 1:
            raise ValueError(f"RuntimeDropout needs a rate in (0, 1), got {rate}; build no layer for 0.")
        if kwargs.get("noise_shape") is not None:
            raise ValueError("RuntimeDropout drops single values: give no noise_shape.")
        super().__init__(rate, **kwargs)

    def _build_at_init(self) -> None:  # Dropout's __init__ ends here, and no state may be added after it
        # 1 - rate in double precision, then float32: the keep probability Keras' dropout computes
        self.keep_value = _scalar(self, "keep", 1.0 - self.rate)
        super()._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or keras.backend.backend() != "jax":
            return super().call(inputs, training=training)
        keep = ops.convert_to_tensor(self.keep_value)  # float32, as Keras' Bernoulli draw compares
        kept = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator) < keep
        # Keras divides by a constant keep, which XLA turns into a product with its reciprocal: the same here,
        # so that the numbers agree bit for bit in float32 (under a mixed-precision policy they may not).
        return ops.where(kept, inputs * ops.cast(1.0 / keep, inputs.dtype), ops.zeros_like(inputs))


class _FactorL2(keras.regularizers.Regularizer):
    """``keras.regularizers.L2``'s penalty, ``factor * sum(x ** 2)``, with the factor a variable of the layer
    (never serialized itself: the layer stores its ``l2`` and makes a new one)."""

    def __init__(self, factor: keras.Variable) -> None:
        self.factor = factor

    def __call__(self, x: Any) -> Any:
        return ops.cast(self.factor, dtype=x.dtype) * ops.sum(ops.square(x))


class _RuntimeL2:
    """Mixin for a layer with a ``kernel_regularizer``: an ``l2`` above 0 becomes the non-trainable variable
    ``l2_value``, read by the kernel's penalty; 0 means no penalty (and no variable), as Keras' None."""

    def _init_l2(self, l2: float) -> None:
        self.l2 = float(l2)
        if self.l2 > 0:
            self.l2_value = _scalar(self, "l2", self.l2)
            self.kernel_regularizer = _FactorL2(self.l2_value)

    # Dense and Conv2D save their kernel and bias by index and expect as many entries as they have variables;
    # the factor takes the next index.
    def _l2_index(self) -> str:
        return str(2 if self.use_bias else 1)  # type: ignore[attr-defined]

    def save_own_variables(self, store: Any) -> None:
        super().save_own_variables(store)  # type: ignore[misc]
        if self.l2 > 0:
            store[self._l2_index()] = self.l2_value

    def load_own_variables(self, store: Any) -> None:
        super().load_own_variables(store)  # type: ignore[misc]
        if self.l2 > 0:
            self.l2_value.assign(store[self._l2_index()])

    def get_config(self) -> dict[str, Any]:
        regularizer, self.kernel_regularizer = self.kernel_regularizer, None  # the layer's l2 stands for it
        try:
            config = super().get_config()  # type: ignore[misc]
        finally:
            self.kernel_regularizer = regularizer
        return {**config, "l2": self.l2}


@keras.saving.register_keras_serializable(package="rtune_fashion")
class RuntimeL2Dense(_RuntimeL2, keras.layers.Dense):
    """``keras.layers.Dense`` with ``kernel_regularizer=L2(l2)``, the factor a runtime value."""

    def __init__(self, units: int, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self._init_l2(l2)


@keras.saving.register_keras_serializable(package="rtune_fashion")
class RuntimeL2Conv2D(_RuntimeL2, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` with ``kernel_regularizer=L2(l2)``, the factor a runtime value."""

    def __init__(self, filters: int, kernel_size: int, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, **kwargs)
        self._init_l2(l2)


def hyperparameter_values(layer: keras.layers.Layer) -> list[keras.Variable]:
    """The runtime hyperparameter variables of ``layer`` and of the layers it holds."""
    layers = [layer, *getattr(layer, "_flatten_layers", lambda: [])(include_self=False)]
    return [getattr(one, name) for one in layers for name in ("keep_value", "l2_value") if hasattr(one, name)]


def parameter_count(layer: keras.layers.Layer) -> int:
    """``layer.count_params()`` (a model or one layer) without its runtime hyperparameters: the weights only."""
    return int(layer.count_params()) - len(hyperparameter_values(layer))


@contextlib.contextmanager
def constant_layers() -> Iterator[None]:
    """Within it, :mod:`rtune_fashion.models` builds with Keras' own ``Dropout`` and ``L2``-regularized ``Dense`` /
    ``Conv2D``, the values constants of the program: the reference that tests and benchmarks compare with."""
    from rtune_fashion import models

    def with_l2(layer: type) -> Any:
        return lambda *args, l2=0.0, **kwargs: layer(
            *args, kernel_regularizer=keras.regularizers.L2(l2) if l2 else None, **kwargs)

    replaced = {"RuntimeDropout": keras.layers.Dropout, "RuntimeL2Dense": with_l2(keras.layers.Dense),
                "RuntimeL2Conv2D": with_l2(keras.layers.Conv2D)}  # fmt: skip
    saved = {name: getattr(models, name) for name in replaced}
    try:
        for name, layer in replaced.items():
            setattr(models, name, layer)
        yield
    finally:
        for name, layer in saved.items():
            setattr(models, name, layer)
