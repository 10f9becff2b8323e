"""Shared fixtures: seeds, a small slice of the real Fashion-MNIST, Ray started once per module."""

from __future__ import annotations

import os
import random

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from rtune_fashion.cpus import usable_cpus
from rtune_fashion.data import Dataset, load_fashion_mnist

SMALL = {"train": 600, "val": 300, "test": 300}


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def small_data() -> Dataset:
    """A stratified slice of the real data (the CI installs Debian's dataset-fashion-mnist)."""
    return load_fashion_mnist(subset=SMALL)


RAY_CPUS = min(2, usable_cpus())


def ensure_ray():
    """Real Ray in this process, started on first use and shared by every test after it (each start costs
    seconds on a slow machine). A test that needs its own cluster shuts it down first.

    :data:`RAY_CPUS` CPUs: 2, or 1 where this process may use one core only (``taskset -c 0``). There a
    second trial at once gains nothing and costs a second trial worker, which imports Keras (about 5 s of
    that core); with one slot, Tune reuses one worker for every trial of a search."""
    import ray

    from rtune_fashion.experiment import WORKER_RUNTIME_ENV

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, runtime_env=WORKER_RUNTIME_ENV,
                 logging_level="ERROR")  # fmt: skip
    return ray


@pytest.fixture(scope="module")
def ray_local():
    """The shared local Ray (see :func:`ensure_ray`)."""
    return ensure_ray()


@pytest.fixture(scope="session", autouse=True)
def _ray_stopped_at_the_end():
    yield
    import ray

    ray.shutdown()


def synthetic_data(n: int = 64, *, fill: float | None = None) -> Dataset:
    """64 random 28x28 images (or all ``fill``); for tests where the data does not matter."""
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float32) if fill is None else np.full((n, 28, 28, 1), fill, np.float32)
    y = rng.integers(0, 10, n)
    return Dataset(x, y, x[: n // 2], y[: n // 2], x[: n // 2], y[: n // 2])
