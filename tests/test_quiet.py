"""The quiet, lean Keras import of Ray's trial workers (rtune_fashion.quiet), in fresh processes."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtune_fashion import quiet
from tests.helpers import ENV, HANG_TIMEOUT_S

# The worker's setup hook, then what a trial does, then what the refused packages still do afterwards.
WORKER = """
import json, sys
from rtune_fashion import quiet
quiet.setup_worker()
loaded = {name: name in sys.modules for name in ("keras", "sklearn", "matplotlib", "jax")}
import keras, numpy as np
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
loss = model.fit(np.zeros((8, 4), "float32"), np.zeros(8, "int64"), verbose=0).history["loss"][0]
from sklearn.model_selection import train_test_split
import matplotlib
print(json.dumps({"loaded": loaded, "backend": keras.backend.backend(), "loss": loss, "later": matplotlib.__name__}))
"""


def _worker(backend: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", WORKER], env={**ENV, "KERAS_BACKEND": backend, **env},
                          capture_output=True, text=True, timeout=HANG_TIMEOUT_S, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_worker_imports_keras_without_its_extras_and_trains(backend: str) -> None:
    probe = _worker(backend)
    assert probe["backend"] == backend and probe["loss"] > 0
    assert probe["loaded"] == {"keras": True, "sklearn": False, "matplotlib": False, "jax": backend == "jax"}
    assert probe["later"] == "matplotlib"  # refused only while Keras is imported


def test_a_worker_imports_all_of_keras_when_told_to() -> None:
    probe = _worker("tensorflow", RTUNE_LEAN_WORKERS="0")
    assert probe["loaded"] == {"keras": True, "sklearn": True, "matplotlib": True, "jax": True}  # all installed here


def test_the_backend_is_read_as_keras_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert quiet.configured_backend() == "tensorflow" and "jax" in quiet.lean_extras()  # no keras.json
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert quiet.configured_backend() == "jax" and "jax" not in quiet.lean_extras()
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # the variable wins over the file, as in Keras
    assert quiet.configured_backend() == "torch" and "jax" in quiet.lean_extras()
    monkeypatch.delenv("KERAS_BACKEND")
    (tmp_path / "keras.json").write_text("{not json")
    assert quiet.configured_backend() is None and "jax" not in quiet.lean_extras()  # unknown: JAX may be needed
    assert set(quiet.KERAS_EXTRAS) <= set(quiet.lean_extras())


def test_a_refused_import_names_the_module_and_why_and_is_lifted_after() -> None:
    with quiet._refused(("json",)):
        assert importlib.import_module("json") is json  # already imported: not refused
        with pytest.raises(ModuleNotFoundError, match=r"No module named 'json.tool' \(refused while importing Keras\)"):
            importlib.import_module("json.tool")
    assert importlib.import_module("json.tool").__name__ == "json.tool"
