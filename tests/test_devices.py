"""The per-trial device policy of each Keras backend (rtune_fashion.devices), in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rtune_fashion.devices import cpu_description, gpu_memory_fraction
from tests.helpers import ENV, HANG_TIMEOUT_S

PROBE = """
import json, os
from rtune_fashion import devices
applied = devices.configure({cpus}, {gpus})
import jax
print(json.dumps({{"applied": applied, "fraction": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
                  "preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
                  "cache_dir": jax.config.jax_compilation_cache_dir}}))
"""


def test_gpu_share_leaves_headroom_and_whole_gpus_are_not_capped() -> None:
    assert gpu_memory_fraction(0.25) == pytest.approx(0.2375)
    assert gpu_memory_fraction(0.5) == pytest.approx(0.475)
    assert gpu_memory_fraction(0) is None and gpu_memory_fraction(1) is None and gpu_memory_fraction(2) is None


def _probe(backend: str, cpus: float, gpus: float, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE.format(cpus=cpus, gpus=gpus)],
                          env={**ENV, "KERAS_BACKEND": backend, **env}, capture_output=True, text=True,
                          timeout=HANG_TIMEOUT_S, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_jax_trials_sharing_a_gpu_get_their_share_no_preallocation_and_a_compilation_cache(tmp_path: Path) -> None:
    probe = _probe("jax", cpus=2, gpus=0.25, RTUNE_CACHE_DIR=str(tmp_path))
    cache = probe["applied"].pop("compilation_cache")
    assert probe["applied"] == {"backend": "jax", "threads": None, "gpu_memory_fraction": 0.2375,
                                "gpu_memory": "capped at the share"}  # fmt: skip
    assert cache == str(tmp_path / "jax") and Path(cache).is_dir()
    assert probe["cache_dir"] == cache  # JAX itself was told
    assert probe["fraction"] == "0.2375" and probe["preallocate"] == "false"


def test_tensorflow_threads_follow_the_trial_cpus() -> None:
    probe = _probe("tensorflow", cpus=3, gpus=0.5)
    assert probe["applied"]["backend"] == "tensorflow" and probe["applied"]["threads"] == 3
    assert probe["fraction"] is None  # TensorFlow uses memory growth instead of a fraction ...
    assert probe["applied"]["gpu_memory"] == "grows as needed, not capped"  # ... and says that it caps nothing


def test_cpu_description_names_the_cpus_this_process_may_use_and_the_model() -> None:
    described = cpu_description()
    assert described.startswith(f"{len(os.sched_getaffinity(0))} of {os.cpu_count()} CPUs (")
    assert described.endswith(")")


@pytest.mark.parametrize(("cpu_max", "limit"), [
    ("max 100000\n", None),  # no quota
    ("150000 100000\n", 2),  # docker --cpus 1.5: a second core is partly usable
    ("50000 100000\n", 1),
    (None, None),  # no cgroup v2 file
    ("garbage\n", None),
])  # fmt: skip
def test_usable_cpus_are_the_affinity_cut_by_a_cgroup_quota(tmp_path: Path, cpu_max: str | None, limit) -> None:
    from rtune_fashion.cpus import usable_cpus

    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(path) == (affinity if limit is None else min(affinity, limit))
