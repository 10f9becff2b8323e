"""Per-trial CPU threads and GPU memory policy, for whichever Keras backend runs.

Several trials can share one machine (each gets ``cpus`` cores) and one GPU (each gets a ``gpus``
fraction, as Ray Tune's ``{"gpu": 0.25}``). Ray gives every trial on a GPU the same device id, so each
backend must be told not to take the whole card:

* TensorFlow: intra-op threads = cpus; on a GPU, memory growth (allocate as needed). That caps nothing:
  trials sharing a card take what they need, and one that needs more than its share takes it (or fails
  with an out-of-memory error if the card is full);
* JAX: no preallocation, ``XLA_PYTHON_CLIENT_MEM_FRACTION`` = the trial's GPU share (a cap, if set before
  JAX's GPU client starts), and the persistent compilation cache in ``$RTUNE_CACHE_DIR/jax`` for every
  program (trials of one architecture differ only in values the program reads as variables: the learning
  rate, dropout rates, the L2 factor, :mod:`rtune_fashion.runtime_values`; so later trials, in this process
  or another, read the first one's compiled steps: :mod:`rtune_fashion.compilations`). CPU threads are not
  limited: XLA sizes its CPU thread pool when JAX starts, before a trial's resources are known;
* PyTorch: ``torch.cuda.set_per_process_memory_fraction`` = the trial's GPU share (a cap), ``set_num_threads``.

What was set is returned: ``threads`` is None where nothing limits them, ``gpu_memory`` says whether the
share is a cap.

Must run in the trial process before the backend's first operation. Settings that a backend refuses
once initialised (a reused actor's second trial) keep their first, identical, values.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import keras

from rtune_fashion.cpus import usable_cpus
from rtune_fashion.storage import cache_root

# Every program is cached, however short its compilation: a search then compiles each architecture's steps
# once per machine (rtune_fashion.compilations), whatever the machine's speed.
JAX_CACHE_MIN_COMPILE_S = 0.0
# Leave a little of each share for the CUDA context and fragmentation.
_GPU_SHARE_HEADROOM = 0.95


def cpu_description() -> str:
    """The CPUs this process may use and the CPU's model, e.g. "1 of 2 CPUs (AMD EPYC)" (what
    `lscpu | grep "Model name"` names): benchmark figures are only comparable with these beside them."""
    usable = usable_cpus()
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{usable} of {os.cpu_count()} CPUs ({model})"


def gpu_memory_fraction(gpus: float) -> float | None:
    """The fraction of one GPU's memory a trial may use; None when it has a whole GPU or none."""
    if gpus <= 0 or gpus >= 1:
        return None
    return round(gpus * _GPU_SHARE_HEADROOM, 4)


def configure(cpus: float, gpus: float) -> dict[str, object]:
    """Apply the policy for the running backend; return what was set (recorded in the trial's log)."""
    backend = keras.backend.backend()
    threads = max(1, int(cpus))
    fraction = gpu_memory_fraction(gpus)
    applied: dict[str, object] = {"backend": backend, "threads": threads, "gpu_memory_fraction": fraction}
    if fraction is not None:
        applied["gpu_memory"] = "grows as needed, not capped" if backend == "tensorflow" else "capped at the share"
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
            for gpu in tf.config.list_physical_devices("GPU"):
                tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            applied["note"] = "TensorFlow already initialised in this process; earlier settings kept"
    elif backend == "jax":
        applied["threads"] = None  # XLA's CPU thread pool was sized when JAX started
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if fraction is not None:
            os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = str(fraction)
        applied["compilation_cache"] = enable_jax_compilation_cache()
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
        if fraction is not None and torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(fraction)
    return applied


def enable_jax_compilation_cache(directory: Path | None = None) -> str:
    """Turn on JAX's persistent compilation cache (shared by the trials of one machine); return its path."""
    import jax

    path = directory or jax_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", JAX_CACHE_MIN_COMPILE_S)
    return str(path)


def jax_cache_dir() -> Path:
    """JAX's persistent compilation cache of this machine: ``$RTUNE_CACHE_DIR/jax``."""
    return cache_root() / "jax"
