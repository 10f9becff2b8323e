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
