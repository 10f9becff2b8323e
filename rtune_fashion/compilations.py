"""XLA compilations under JAX: counted per epoch, and one per architecture and machine.

JAX tells its monitoring listeners of every XLA compilation, with the compiled function's name (Keras'
training step is ``jit(train_step)``), and of every read from its persistent compilation cache
(:func:`rtune_fashion.devices.enable_jax_compilation_cache`), which comes just before the same "compilation"
event. :class:`CompileCounter` turns those into the numbers a trial reports with each epoch
(:data:`REPORTED`).

The cache serves a program only once it is written, at the end of its first compilation: two trials of one
architecture that start together would both compile it. :class:`FirstStepLock` makes the second wait for
the first one's first training step (its compilation, and one step) on a file lock of the machine, then read
the program from the cache.

Other backends report nothing here: TensorFlow and PyTorch keep no compiled program across models.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import keras

TRAIN_STEP = "jit(train_step)"
LOCK_WAIT_S = 600.0  # the longest a trial waits for another's first step (a hang guard, not a timing)
LOCK_POLL_S = 0.2
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch.BACKEND_COMPILE_EVENT
_CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


@dataclass
class CompileCounts:
    """Counts since a process began counting (or between two snapshots)."""

    train_step_compilations: int = 0  # Keras' training step compiled by XLA
    train_step_cache_hits: int = 0  # ... read from the persistent cache instead
    compilations: int = 0  # every function XLA compiled (the steps, and JAX's small eager operations)
    compile_s: float = 0.0  # seconds those compilations took (cache reads not included)

    def minus(self, before: CompileCounts) -> CompileCounts:
        return CompileCounts(**{f.name: getattr(self, f.name) - getattr(before, f.name) for f in fields(self)})

    def as_metrics(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


REPORTED = tuple(f.name for f in fields(CompileCounts))


class CompileCounter:
    """The process's counts, fed by JAX's listeners (installed once, by :func:`counter`)."""

    def __init__(self) -> None:
        self._counts = CompileCounts()
        self._lock = threading.Lock()
        self._thread = threading.local()  # a cache read and its "compilation" event come in the same thread

    def _on_event(self, event: str, **_: Any) -> None:
        if event == _CACHE_HIT_EVENT:
            self._thread.cache_hit_pending = True

    def _on_duration(self, event: str, duration: float, **kwargs: Any) -> None:
        if event != _COMPILE_EVENT:
            return
        with self._lock:
            train_step = kwargs.get("fun_name") == TRAIN_STEP
            if getattr(self._thread, "cache_hit_pending", False):  # this "compilation" was a read of the cache
                self._thread.cache_hit_pending = False
                self._counts.train_step_cache_hits += train_step
                return
            self._counts.train_step_compilations += train_step
            self._counts.compilations += 1
            self._counts.compile_s += duration

    def snapshot(self) -> CompileCounts:
        with self._lock:
            return CompileCounts(**self._counts.as_metrics())


_counter: CompileCounter | None = None


def counter() -> CompileCounter | None:
    """This process's counter, its listeners installed on the first call; None unless Keras runs on JAX."""
    global _counter
    if keras.backend.backend() != "jax":
        return None
    if _counter is None:
        from jax import monitoring

        _counter = CompileCounter()
        monitoring.register_event_listener(_counter._on_event)
        monitoring.register_event_duration_secs_listener(_counter._on_duration)
    return _counter


def program_key(architecture: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> str:
    """A short name for the training program of one architecture on one data shape."""
    text = json.dumps([architecture, list(input_shape), num_classes, keras.backend.backend()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FirstStepLock(keras.callbacks.Callback):
    """Hold the file lock ``directory/<key>.lock`` from the start of training until the first training step
    has been compiled (or training ends), once: the trials of one machine and one program (:func:`program_key`)
    compile it one at a time, so that all but the first read it from the cache. A lock left by a killed process
    is released by the system with the process."""

    def __init__(self, directory: Path, key: str, wait_s: float = LOCK_WAIT_S) -> None:
        super().__init__()
        self.path = directory / f"{key}.lock"
        self.wait_s = wait_s
        self._file: Any = None
        self._done = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self._done or self._file is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a")  # noqa: SIM115 - held across callbacks, closed in release()
            deadline = time.monotonic() + self.wait_s
            while True:
                try:
                    fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() > deadline:  # a hang guard: compile alongside rather than wait for ever
                        break
                    time.sleep(LOCK_POLL_S)
        except OSError:  # a file system without locks: compile without waiting, as before
            pass
        self.release()

    # Released as the second step begins: the first step's call compiled the program (JAX compiles when it
    # dispatches), and the cache holds it. Not on_train_batch_end: a callback with that hook makes Keras turn
    # every step's metrics into Python numbers, waiting for the device at each step.
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if batch > 0:
            self.release()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.release()

    def release(self) -> None:
        """Let the next trial of the program go (closing the file unlocks it); safe to call again. The trainable
        calls it after training too: Keras skips ``on_train_end`` when training raises."""
        self._done = True
        if self._file is not None:
            self._file.close()
            self._file = None
