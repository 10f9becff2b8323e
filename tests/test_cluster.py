"""Multi-node runs for real, on one machine: a Ray cluster of several raylets (ray.cluster_utils.Cluster).

The head offers no CPUs (as in cluster.yaml), so every trial runs on a worker node. Node ids in each
trial's results say where it ran. GPUs here are logical (Ray schedules them; TensorFlow finds no CUDA
device and trains on the CPU), which is what packing and placement need.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from rtune_fashion.experiment import ExperimentSettings, run_experiment
from rtune_fashion.report import write_report
from rtune_fashion.results import load_experiment
from tests.helpers import (
    HANG_TIMEOUT_S,
    assert_continued_from_checkpoint,
    nodes_of_checkpointed_trials,
    trains_an_epoch_then_waits_to_be_killed,
    trains_once_all_have_started,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]  # one worker: one module fixture
SMALL = {"train_size": 2000, "val_size": 300, "test_size": 300}


def _cluster(*nodes: dict) -> tuple[Cluster, list]:
    ray.shutdown()  # the tests' shared local Ray, if it runs: these runs must join the cluster instead
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(**node) for node in nodes]
    cluster.wait_for_nodes()
    return cluster, workers


@pytest.fixture(scope="module")
def gpu_and_cpu_nodes():
    """A head without CPUs, node A with 2 CPUs and 1 (logical) GPU, node B with 1 CPU."""
    cluster, workers = _cluster({"num_cpus": 2, "num_gpus": 1}, {"num_cpus": 1})
    yield cluster, workers
    cluster.shutdown()


def _settings(tmp_path: Path, address: str, **overrides) -> ExperimentSettings:
    values = {"space": "mlp_hyperas", "searcher": "random", "scheduler": "fifo", "max_epochs": 2,
              "storage": str(tmp_path), "address": address, "retrain": False, **SMALL, **overrides}  # fmt: skip
    return ExperimentSettings(**values)


def test_trials_run_on_several_nodes_with_uri_storage(gpu_and_cpu_nodes, tmp_path: Path, monkeypatch) -> None:
    cluster, (node_a, node_b) = gpu_and_cpu_nodes
    monkeypatch.setenv("RTUNE_CACHE_DIR", str(tmp_path / "cache"))
    remote = tmp_path / "bucket"
    settings = _settings(tmp_path, cluster.address, num_samples=3, storage=f"file://{remote}", retrain=True,
                         gpus_per_trial=0)  # fmt: skip
    summary = run_experiment(settings)  # 3 trials of 1 CPU and no GPU: two fit on A, one on B

    record = load_experiment(settings.experiment_dir)
    assert summary["trials"]["finished"] == 3
    used = {node for trial in record.trials for node in trial.nodes}
    assert used == {node_a.node_id, node_b.node_id}
    # The URI storage holds Tune's trial folders and rtune's files; the local mirror holds no checkpoint.
    for name in ("settings.json", "trials.csv", "summary.json", "best_model.keras"):
        assert (remote / settings.name / name).exists(), name
    assert any((remote / settings.name).glob("trial_*/checkpoint_*"))
    assert not any(settings.experiment_dir.glob("trial_*/checkpoint_*"))
    report = write_report(settings.experiment_uri)
    assert (remote / settings.name / "report.md").exists() and report.record.best() is not None


def test_the_gpu_is_used_unasked_and_packs_four_trials(gpu_and_cpu_nodes, tmp_path: Path) -> None:
    """No --gpus-per-trial on a cluster with a GPU: a quarter GPU per trial, said first. Each trial trains only once
    all four run (a barrier, not a timing): Ray packed them on the one GPU."""
    cluster, (node_a, _) = gpu_and_cpu_nodes
    settings = _settings(tmp_path, cluster.address, num_samples=4, max_epochs=1, cpus_per_trial=0.5)
    lines: list[str] = []
    summary = run_experiment(settings, echo=lines.append, trainable=trains_once_all_have_started,
                             trainable_options={"barrier_dir": str(tmp_path / "started"), "trials": 4})  # fmt: skip
    said = next(i for i, line in enumerate(lines) if line.startswith("Resources: "))
    assert lines[said].startswith("Resources: 4 trials per GPU on 1 GPU(s), 0.5 CPUs each (the default where there "
                                  "are GPUs")  # fmt: skip
    assert "0.5 CPU and 0.25 GPU per trial" in lines[said + 1] and settings.gpus_per_trial == 0.25
    record = load_experiment(settings.experiment_dir)
    assert summary["trials"]["finished"] == 4
    assert {node for trial in record.trials for node in trial.nodes} == {node_a.node_id}  # the only GPU
    assert len(list((tmp_path / "started").iterdir())) == 4  # each trial started once, all side by side


def test_a_lost_node_s_trial_continues_on_the_other_node(tmp_path: Path) -> None:
    """Node B removed once Tune has the checkpoint of B's trial's first epoch (the trial waits there for it, so
    the loss lands between two checkpoints on any machine): the trial continues on A from that checkpoint, with
    the default --max-failures (one retry), and both trials finish."""
    cluster, (node_a, node_b) = _cluster({"num_cpus": 1}, {"num_cpus": 1})
    try:
        settings = _settings(tmp_path, cluster.address, num_samples=2, max_epochs=4)
        removed = threading.Event()

        def remove_b_once_its_trial_has_a_checkpoint() -> None:
            deadline = time.monotonic() + HANG_TIMEOUT_S
            while time.monotonic() < deadline and not any(
                node_b.node_id in nodes for nodes in nodes_of_checkpointed_trials(settings.experiment_dir).values()
            ):
                time.sleep(0.5)
            cluster.remove_node(node_b)
            removed.set()

        remover = threading.Thread(target=remove_b_once_its_trial_has_a_checkpoint, daemon=True)
        remover.start()
        summary = run_experiment(settings, trainable=trains_an_epoch_then_waits_to_be_killed,
                                 trainable_options={"doomed_node": node_b.node_id})  # fmt: skip
        remover.join(timeout=60)
    finally:
        cluster.shutdown()
    assert removed.is_set()
    record = load_experiment(settings.experiment_dir)
    assert summary["trials"]["finished"] == 2 and summary["trials"]["errored"] == 0
    (moved,) = [trial for trial in record.trials if node_b.node_id in trial.nodes]
    assert moved.nodes == [node_b.node_id, node_a.node_id]  # started on B, finished on A
    assert_continued_from_checkpoint(moved.trial_id, [int(row["epoch"]) for row in moved.history], 4)
