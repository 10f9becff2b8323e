"""Shared fixtures: seeds, a small slice of the real Fashion-MNIST, one Ray shared by the tests."""

from __future__ import annotations

import contextlib
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
SHARED_RAY_SETTLE_S = 60.0  # how long a finished test's actors and tasks may take to give their CPUs back
_shared_ray: dict[str, str] = {}  # the shared Ray's GCS address, and the last test that asked for it


def ensure_ray(test: str = "a module fixture"):
    """Real Ray in this process, started on first use and shared by every test after it (each start costs
    seconds on a slow machine). A test that needs its own cluster shuts it down first.

    :data:`RAY_CPUS` CPUs: 2, or 1 where this process may use one core only (``taskset -c 0``). There a
    second trial at once gains nothing and costs a second trial worker, which imports Keras (about 5 s of
    that core); with one slot, Tune reuses one worker for every trial of a search.

    ``test`` gets the shared Ray with every CPU free (see :func:`release_if_held`); a process left connected
    to another Ray by an earlier test is disconnected first, with a warning."""
    import ray

    from rtune_fashion.experiment import WORKER_RUNTIME_ENV

    before = _shared_ray.get("test", "an earlier test")
    if ray.is_initialized() and ray.get_runtime_context().gcs_address != _shared_ray.get("address"):
        warnings.warn(f"{before} left this process connected to another Ray; disconnected", stacklevel=2)
        ray.shutdown()
    release_if_held(before)
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, runtime_env=WORKER_RUNTIME_ENV,
                 logging_level="ERROR")  # fmt: skip
        _shared_ray["address"] = ray.get_runtime_context().gcs_address
    _shared_ray["test"] = test
    return ray


def release_if_held(test: str) -> None:
    """Leave the shared Ray (if it runs) with every CPU free: ``test``'s actors and tasks get SHARED_RAY_SETTLE_S
    to give their CPUs back, and a CPU still held after that is a warning naming ``test`` and what holds it,
    and the Ray is shut down (the next test starts a fresh one). Once in CI, and once here, a CPU was never
    given back, and a later test that needed it waited for its 30-minute hang guard."""
    import ray

    if not ray.is_initialized() or ray.get_runtime_context().gcs_address != _shared_ray.get("address"):
        return
    deadline = time.monotonic() + SHARED_RAY_SETTLE_S
    try:
        while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources().get("CPU", 0.0):
            if time.monotonic() > deadline:
                warnings.warn(f"{test} left CPUs of the shared Ray held {SHARED_RAY_SETTLE_S:g} s after it: "
                              f"{what_holds_cpus()}; the shared Ray was shut down", stacklevel=2)  # fmt: skip
                ray.shutdown()
                return
            time.sleep(0.1)
    except Exception as error:  # a Ray that cannot say its CPUs is no Ray to hand on
        warnings.warn(f"the shared Ray could not be read after {test} ({error!r}); shut down", stacklevel=2)
        ray.shutdown()


def what_holds_cpus() -> str:
    """The shared Ray's CPU count, placement groups, live actors and worker processes, in one line (from Ray's
    GCS tables and the raylet's children: the state API needs the dashboard, which the shared Ray lacks)."""
    import ray
    from ray._private import state

    try:
        free, total = ray.available_resources().get("CPU", 0.0), ray.cluster_resources().get("CPU", 0.0)
        groups = [f"placement group {g['placement_group_id'][:8]} {g['state']} {list(g['bundles'].values())}"
                  for g in ray.util.placement_group_table().values() if g["state"] != "REMOVED"]  # fmt: skip
        actors = [f"actor {a['ActorClassName']} (pid {a['Pid']})" for a in state.actors().values()
                  if a["State"] == "ALIVE"]  # fmt: skip
        workers = [f"process {pid} {name}" for pid, name in shared_ray_workers()]
        return f"{free:g} of {total:g} CPUs free; " + "; ".join(groups + actors + workers)
    except Exception as error:  # a diagnosis, never a reason to keep a broken Ray
        return f"(what holds them could not be read: {error!r})"


def shared_ray_workers() -> list[tuple[int, str]]:
    """(pid, command line) of the shared Ray's worker processes (children of its raylet: ``ray::IDLE``,
    ``ray::ImplicitFunc.train``, ...); other Rays on the machine, such as a parallel test worker's, are left out."""
    import psutil  # Ray's own copy (ray/thirdparty_files): importable once ray is, as for every caller here
    from ray._private import ray_constants, worker

    raylet = worker._global_node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    found = []
    for child in psutil.Process(raylet).children():
        with contextlib.suppress(psutil.Error):
            found.append((child.pid, " ".join(child.cmdline())))
    return found


@pytest.fixture
def ray_local(request):
    """The shared local Ray, every CPU free (see :func:`ensure_ray`); after the test, see
    :func:`release_if_held`."""
    yield ensure_ray(request.node.nodeid)
    release_if_held(request.node.nodeid)


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
