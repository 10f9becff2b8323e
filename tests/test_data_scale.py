"""A dataset larger than the object store can serve is refused before the search, naming the limit (its own Ray,
with a 100 MiB object store, so that a 64-MB dataset is too large)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import ray

from rtune_fashion.data import Dataset
from rtune_fashion.errors import ExperimentError
from rtune_fashion.experiment import ExperimentSettings, data_bytes, run_experiment

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]  # its own Ray, as test_cluster.py


def _dataset(examples: int) -> Dataset:
    x = np.zeros((examples, 28, 28, 1), np.float32)
    y = np.arange(examples) % 10
    return Dataset(x, y, x[:1000], y[:1000], x[:1000], y[:1000])


def test_a_dataset_above_half_the_object_store_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    ray.shutdown()  # the tests' shared Ray has a store of gigabytes; the next test that needs it starts it again
    ray.init(num_cpus=1, object_store_memory=100 * 2**20, include_dashboard=False, logging_level="ERROR")
    try:
        store = ray.nodes()[0]["Resources"]["object_store_memory"]
        data = _dataset(18_000)
        assert data_bytes(data) == 20_000 * 28 * 28 * 4 + 20_000 * 8 > store / 2
        settings = ExperimentSettings(space="mlp_hyperas", searcher="random", num_samples=1, max_epochs=1,
                                      storage=str(tmp_path))  # fmt: skip
        with pytest.raises(ExperimentError) as caught:
            run_experiment(settings, echo=lambda _: None, data=data)
        message = str(caught.value)
        assert message.startswith(f"The dataset takes 0.06 GB as arrays, more than 50% of the object store of Ray "
                                  f"node {ray.nodes()[0]['NodeManagerAddress']} ({store / 1e9:.2f} GB)")
        fit = int(0.5 * store / (28 * 28 * 4 + 8))
        assert (f"Nothing was written. Fix: a stratified subset (--train-size, --val-size, --test-size; about {fit:,} "
                "examples in all fit), a larger object store (ray start --object-store-memory BYTES on each node), "
                "or nodes with more memory.") in message
        assert fit < 20_000 and 0.5 * store - 3144 < data_bytes(_dataset(fit - 2_000)) <= 0.5 * store
        assert not settings.experiment_dir.exists()
        settings = dataclasses.replace(settings, retrain=False)
        run_experiment(settings, echo=lambda _: None, data=_dataset(fit - 2_000))  # the most it serves
        assert json.loads((settings.experiment_dir / "summary.json").read_text())["trials"]["finished"] == 1
    finally:
        ray.shutdown()
