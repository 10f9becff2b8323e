"""Keep the console readable: TensorFlow's C++ start-up lines, printed once per process, are silenced.

TensorFlow 2.21 writes "oneDNN custom operations are on", "Could not find cuda drivers" and the CPU
feature notice straight to file descriptor 2 while it is imported, before ``TF_CPP_MIN_LOG_LEVEL`` is
read, so every Ray worker printed them through the driver. :func:`import_keras` imports Keras (and its
backend) with descriptor 2 pointed at a temporary file (the captured text is shown again if the import
fails), and sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless it is set, so later native log lines (such as
"failed call to cuInit" on a machine without a GPU) stay quiet too. ``RTUNE_SHOW_BACKEND_LOGS=1``
turns all of this off.

:func:`setup_worker` is the ``worker_process_setup_hook`` that experiments give Ray: the same quiet
import in each worker process before any trial code runs, and no line per checkpoint from Ray Train.
Workers import Keras *lean*: the optional packages that Keras and TensorFlow import when installed, for
features a trial never uses (scikit-learn for ``keras.wrappers``, matplotlib for
``keras.visualization``, JAX for TFLite's converter), are refused during that import. Each of Ray's
trial workers pays the import, one per trial actor; refusing them cut it from 7.7 s to about 5 s on one
core here (docs/benchmarks.md). In a worker, those Keras features then report their package missing (the
packages themselves still import normally afterwards); ``RTUNE_LEAN_WORKERS=0`` turns this off.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

from rtune_fashion.files import keras_home

SHOW_LOGS_VARIABLE = "RTUNE_SHOW_BACKEND_LOGS"
LEAN_WORKERS_VARIABLE = "RTUNE_LEAN_WORKERS"
# Imported by Keras / TensorFlow only for features trials never use (see the module docstring).
KERAS_EXTRAS = ("sklearn", "matplotlib")
JAX = "jax"  # an extra too, unless it is the backend


class _RefuseImports(importlib.abc.MetaPathFinder):
    """Makes ``import name`` (and its submodules) raise ModuleNotFoundError while installed."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (refused while importing Keras)", name=fullname)
        return None


@contextlib.contextmanager
def _refused(names: tuple[str, ...]) -> Iterator[None]:
    finder = _RefuseImports(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def configured_backend() -> str | None:
    """The backend Keras will use, as Keras decides it: ``KERAS_BACKEND``, else ``keras.json`` in
    ``KERAS_HOME`` (default ``~/.keras``), else TensorFlow; None when that file cannot be read."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = keras_home() / "keras.json"
    try:
        return str(json.loads(config.read_text()).get("backend", "tensorflow")) if config.exists() else "tensorflow"
    except (OSError, ValueError, AttributeError):
        return None


def lean_extras() -> tuple[str, ...]:
    """The packages a lean import refuses: :data:`KERAS_EXTRAS`, and JAX unless JAX is (or may be) the backend."""
    return KERAS_EXTRAS + ((JAX,) if configured_backend() in ("tensorflow", "torch") else ())


def import_keras(*, lean: bool = False) -> None:
    """Import Keras and its backend with the backend's native start-up output discarded; with ``lean``,
    without the packages of :func:`lean_extras` (see the module docstring). A no-op once Keras is imported.

    Raises:
        ImportError (or whatever the import raises): after printing the captured output to stderr.
    """
    if "keras" in sys.modules:
        return
    with _refused(lean_extras() if lean else ()):
        _import_keras_quietly()


def _import_keras_quietly() -> None:
    if os.environ.get(SHOW_LOGS_VARIABLE) == "1":
        import keras  # noqa: F401 - the user asked to see the lines

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def setup_worker() -> None:
    """Ray's ``worker_process_setup_hook``: the backend import, quiet and lean (unless ``RTUNE_LEAN_WORKERS=0``),
    once per worker process."""
    import_keras(lean=os.environ.get(LEAN_WORKERS_VARIABLE) != "0")
    if os.environ.get(SHOW_LOGS_VARIABLE) != "1":
        logging.getLogger("ray.train").setLevel(logging.WARNING)  # "Checkpoint successfully created" per epoch
        # "Restored on <ip> from checkpoint: ..." each time BOHB resumes a paused trial
        logging.getLogger("ray.tune.trainable.trainable").setLevel(logging.WARNING)
        # A reused actor builds a new model per trial, so TensorFlow traces a new train step each time and
        # warns about "excessive retracing" from the sixth trial on: expected here, not a user's problem.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def quiet_tune_driver() -> None:
    """No warning per trial that has not reported yet when Tune's results are read (a search interrupted or
    out of time before a trial's first epoch): that is a state rtune reports itself, not a fault."""
    if os.environ.get(SHOW_LOGS_VARIABLE) != "1":
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
