"""Shared fixtures: seeds, a small slice of the real Fashion-MNIST, one Ray shared by the tests."""

from __future__ import annotations

import os
import random
import time
import warnings

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
SHARED_RAY_SETTLE_S = 60.0  # how long the last test's trial actors and tasks may take to give their CPUs back
_shared_ray: dict[str, str] = {}  # the shared Ray's GCS address, and the last test that used it


def ensure_ray(test: str = "a module fixture"):
    """Real Ray in this process, started on first use and shared by every test after it (each start costs
    seconds on a slow machine). A test that needs its own cluster shuts it down first.

    :data:`RAY_CPUS` CPUs: 2, or 1 where this process may use one core only (``taskset -c 0``). There a
    second trial at once gains nothing and costs a second trial worker, which imports Keras (about 5 s of
    that core); with one slot, Tune reuses one worker for every trial of a search.

    Every test gets the shared Ray with all its CPUs free: the last test's actors and tasks have
    SHARED_RAY_SETTLE_S to give them back. A CPU still held after that (once in CI, and once here, a CPU
    was never given back, and a test that needed it waited for its 30-minute hang guard) is reported as
    a warning that names the test before and what holds the CPU, and this test gets a fresh Ray. So does
    a test after one that left this process connected to another Ray."""
    import ray

    from rtune_fashion.experiment import WORKER_RUNTIME_ENV

    if ray.is_initialized():
        before = _shared_ray.get("test")
        if ray.get_runtime_context().gcs_address != _shared_ray.get("address"):
            warnings.warn(f"{before} left this process connected to another Ray; disconnected", stacklevel=2)
            ray.shutdown()
        elif not _all_cpus_freed(ray, SHARED_RAY_SETTLE_S):
            warnings.warn(f"the shared Ray kept CPUs held {SHARED_RAY_SETTLE_S:g} s after {before} (the last test "
                          f"that asked for it): {_what_holds_cpus(ray)}; a fresh Ray was started for {test}",
                          stacklevel=2)  # fmt: skip
            ray.shutdown()
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, runtime_env=WORKER_RUNTIME_ENV,
                 logging_level="ERROR")  # fmt: skip
        _shared_ray["address"] = ray.get_runtime_context().gcs_address
    _shared_ray["test"] = test
    return ray


def _all_cpus_freed(ray, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources().get("CPU", 0.0):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _what_holds_cpus(ray) -> str:
    """The shared Ray's CPU count, placement groups and live actors, in one line (Ray's GCS tables: the state
    API needs the dashboard, which the shared Ray does not start)."""
    from ray._private import state

    groups = [f"placement group {g['placement_group_id'][:8]} {g['state']} {list(g['bundles'].values())}"
              for g in ray.util.placement_group_table().values() if g["state"] != "REMOVED"]  # fmt: skip
    actors = [f"actor {a['ActorClassName']} (pid {a['Pid']})" for a in state.actors().values() if a["State"] == "ALIVE"]
    free, total = ray.available_resources().get("CPU", 0.0), ray.cluster_resources().get("CPU", 0.0)
    return f"{free:g} of {total:g} CPUs free; " + ("; ".join(groups + actors) or "no placement group or live actor")


@pytest.fixture
def ray_local(request):
    """The shared local Ray, all its CPUs free (see :func:`ensure_ray`)."""
    return ensure_ray(request.node.nodeid)


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
