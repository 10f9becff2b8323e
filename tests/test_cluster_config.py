"""cluster.yaml must pass Ray's own validation (the schema Ray ships), so a typo fails CI."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"


def _load() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_cluster_yaml_passes_rays_schema() -> None:
    validate_config(prepare_config(_load()))


def test_cluster_yaml_pins_the_installed_ray_version() -> None:
    import ray

    assert f"rayproject/ray:{ray.__version__}-" in _load()["docker"]["image"]


def test_schema_check_catches_a_typo() -> None:
    config = copy.deepcopy(_load())
    config["available_node_types"]["gpu_worker"]["min_worker"] = 0  # typo of min_workers
    with pytest.raises(Exception, match="min_worker"):
        validate_config(prepare_config(config))


# What each Keras backend needs on a GPU node, as a requirement of an extra of pyproject.toml.
GPU_PACKAGE = {"jax": "jax[cuda12]", "tensorflow": "tensorflow[and-cuda]", "torch": "torch"}


def _extras() -> dict[str, list[str]]:
    import tomllib

    pyproject = tomllib.loads((CLUSTER_YAML.parent / "pyproject.toml").read_text())
    return pyproject["project"]["optional-dependencies"]


def _installed_requirements(commands: list[str]) -> list[str]:
    """The requirements the pip commands install: packages named, and the extras of this project's install."""
    import re
    import shlex

    found: list[str] = []
    for command in commands:
        words = shlex.split(command)
        if "pip" not in words or "install" not in words:
            continue
        for word in words[words.index("install") + 1:]:
            match = re.fullmatch(r"(?:/home/ray/rtune_fashion|\.)\[([\w,]+)\]", word)
            if match:
                found += [req for extra in match.group(1).split(",") for req in _extras()[extra]]
            elif not word.startswith("-"):
                found.append(word)
    return found


def test_every_node_installs_what_its_keras_backend_needs_on_a_gpu() -> None:
    """cluster.yaml selects the backend for every process in its containers (docker run_options: --env
    KERAS_BACKEND=...); the setup commands that run on every node must install that backend's CUDA build, and Ray's
    job server (ray[default]) for `ray job submit`."""
    config = _load()
    options = " ".join(config["docker"]["run_options"])
    backend = next((o.split("=", 1)[1] for o in options.split() if o.startswith("KERAS_BACKEND=")), "tensorflow")
    assert backend == "jax"  # the path measured on a GPU (docs/results.md)
    installed = _installed_requirements(config["setup_commands"])
    assert any(req.replace(" ", "").startswith(GPU_PACKAGE[backend]) for req in installed), installed
    assert any(req.startswith("ray[default]") for req in installed), installed
    gpu_types = [t for t in config["available_node_types"].values() if t["resources"].get("GPU")]
    assert gpu_types and not config["worker_setup_commands"]  # every GPU node gets the setup_commands above


def test_the_installed_check_reads_what_the_commands_say() -> None:
    assert _installed_requirements(['pip install -q -e "/home/ray/rtune_fashion[gpu]"']) == _extras()["gpu"]
    assert _installed_requirements(["pip install -q tensorflow[and-cuda]"]) == ["tensorflow[and-cuda]"]
    assert _installed_requirements(["echo pip"]) == []
