"""Dropout rates and the L2 factor as runtime values: the same training as with Keras' own layers, the same
compiled program for every value (under JAX), and models that save and load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from rtune_fashion import models
from rtune_fashion.runtime_values import RuntimeDropout, constant_layers

ROOT = Path(__file__).resolve().parents[1]
MLP = {"model": "mlp", "num_layers": 2, "units": 32, "dropout_1": 0.3, "dropout_2": 0.55, "l2": 1e-3,
       "batch_size": 32}  # fmt: skip
CNN = {"model": "cnn", "num_blocks": 2, "convs_per_block": 1, "filters": 4, "dropout": 0.25, "num_dense": 1,
       "dense_units": 16, "dense_dropout": 0.4, "l2": 3e-4, "batch_size": 32}  # fmt: skip


def _weights_after_an_epoch(config: dict[str, Any]) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    x, y = rng.random((96, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 96)
    keras.backend.clear_session()
    keras.utils.set_random_seed(7)
    model = models.build_model(config)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=True, verbose=0)
    return [np.asarray(w) for w in model.trainable_weights]


def same_weights_both_ways() -> dict[str, bool]:
    """For MLP and CNN: are the weights after one epoch equal, bit for bit, with runtime values and with Keras'
    own layers (same seed)?"""
    runtime = {name: _weights_after_an_epoch(config) for name, config in (("mlp", MLP), ("cnn", CNN))}
    with constant_layers():
        own = {name: _weights_after_an_epoch(config) for name, config in (("mlp", MLP), ("cnn", CNN))}
    return {name: all(np.array_equal(a, b) for a, b in zip(runtime[name], own[name], strict=True)) for name in own}


def test_the_same_weights_after_an_epoch_as_with_keras_own_layers() -> None:
    """Under this process's backend (TensorFlow in the suite; tests/test_compilations.py runs the same check under
    JAX): bit for bit, and the values are not the same without dropout or L2 (so the comparison can tell)."""
    assert same_weights_both_ways() == {"mlp": True, "cnn": True}
    plain = _weights_after_an_epoch({**MLP, "dropout_1": 0, "dropout_2": 0, "l2": 0})
    assert not np.array_equal(plain[0], _weights_after_an_epoch(MLP)[0])


# The model is saved untrained (its optimizer unbuilt): Keras warns that it loads no optimizer variables.
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_the_values_are_variables_saved_and_loaded_with_the_model(tmp_path: Path) -> None:
    model = models.build_model(CNN)
    values = {v.path: float(np.asarray(v)) for v in model.non_trainable_variables if v.path.endswith(("keep", "l2"))}
    assert values == pytest.approx({
        "block1_dropout/keep": 0.75, "block2_dropout/keep": 0.75, "dense1_dropout/keep": 0.6,
        "block1_conv1/l2": 3e-4, "block2_conv1/l2": 3e-4, "dense1/l2": 3e-4})  # fmt: skip
    penalty = float(sum(np.asarray(loss) for loss in model.losses))
    assert penalty == pytest.approx(3e-4 * sum(float(np.sum(np.square(model.get_layer(n).kernel)))
                                               for n in ("block1_conv1", "block2_conv1", "dense1")), rel=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")

    def saved(m: keras.Model) -> list[Any]:  # Keras saves no random generator states (nor for its own Dropout)
        return [np.asarray(v).tolist() for v in m.variables if "seed_generator" not in v.path]

    assert saved(loaded) == saved(model) and len(saved(model)) == 14
    assert float(sum(np.asarray(loss) for loss in loaded.losses)) == pytest.approx(penalty, rel=1e-6)
    assert loaded.get_layer("dense1").get_config()["l2"] == 3e-4
    without = models.build_model({**CNN, "l2": 0, "dropout": 0, "dense_dropout": 0})
    assert not without.losses and not [v for v in without.variables if v.path.endswith(("keep", "l2"))]


def test_a_dropout_layer_of_rate_0_or_1_is_refused() -> None:
    for rate in (0.0, 1.0):
        with pytest.raises(ValueError, match=rf"RuntimeDropout needs a rate in \(0, 1\), got {rate}; build no layer"):
            RuntimeDropout(rate)
