"""`ray up cluster.yaml` rehearsed for real on this machine: Ray's own autoscaler reads cluster.yaml's node types
(rtune_fashion.rehearsal), starts workers for the main job's waiting trials, submitted with `ray job submit`,
and stops them when idle, and replaces one terminated mid-search; the resource and storage checks see the node
types it may start. No test stops a Ray it did not start: a bystander Ray, started here, must outlive them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import ray
import yaml

from rtune_fashion import cluster
from rtune_fashion.errors import ExperimentError
from rtune_fashion.experiment import ExperimentSettings, run_experiment
from rtune_fashion.rehearsal import (
    FAKE_HEAD_TYPE,
    LocalAutoscalingCluster,
    own_ports,
    processes_of,
    rehearsal_config,
    rehearse,
    wait_until,
    worker_nodes,
)
from rtune_fashion.results import load_experiment
from tests.helpers import (
    ENV,
    HANG_TIMEOUT_S,
    ROOT,
    assert_continued_from_checkpoint,
    nodes_of_checkpointed_trials,
    trains_an_epoch_then_waits_to_be_killed,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]  # one worker with the other own-Ray tests
CLUSTER_YAML = ROOT / "cluster.yaml"


@pytest.fixture(scope="module")
def bystander():
    """A Ray of someone else's on this machine (its own temp dir and port), which the tests must leave alone."""
    import psutil

    ray.shutdown()  # the tests' shared local Ray: these tests connect to their own clusters
    temp_dir = tempfile.mkdtemp(prefix="rtb-", dir="/tmp")
    subprocess.run([str(Path(sys.executable).parent / "ray"), "start", "--head", "--port=0", f"--temp-dir={temp_dir}",
                    "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats", *own_ports()],
                   env={**os.environ, "RAY_AUTH_MODE": "disabled"}, check=True, capture_output=True)  # fmt: skip
    processes = processes_of(temp_dir)
    core = [p for p in processes if p.name() in ("raylet", "gcs_server")]  # what must outlive the tests
    assert len(core) == 2
    yield core
    left = processes_of(temp_dir)
    for process in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(left, timeout=10)
    assert not processes_of(temp_dir)


def test_the_rehearsal_config_is_cluster_yaml_s_node_types() -> None:
    spec = yaml.safe_load(CLUSTER_YAML.read_text())
    config = rehearsal_config(spec, "127.0.0.1:1")
    workers = {name: t for name, t in spec["available_node_types"].items() if name != spec["head_node_type"]}
    assert set(config["available_node_types"]) == {FAKE_HEAD_TYPE, *workers}
    head = spec["available_node_types"][spec["head_node_type"]]
    assert config["available_node_types"][FAKE_HEAD_TYPE]["resources"] == head["resources"]
    for name, node_type in workers.items():
        rehearsed = config["available_node_types"][name]
        assert {k: v for k, v in rehearsed["resources"].items() if k != "object_store_memory"} == node_type["resources"]
        assert rehearsed["min_workers"] == node_type["min_workers"]
        assert rehearsed["max_workers"] == node_type["max_workers"]
    assert (config["max_workers"], config["upscaling_speed"]) == (spec["max_workers"], spec["upscaling_speed"])
    assert config["idle_timeout_minutes"] < spec["idle_timeout_minutes"]  # scaled down, and only that
    assert config["provider"]["module"] == "rtune_fashion.rehearsal_provider.RehearsalNodeProvider"


def test_a_rehearsal_s_workers_count_as_this_machine_and_a_cloud_s_as_others(tmp_path: Path) -> None:
    spec = yaml.safe_load(CLUSTER_YAML.read_text())
    rehearsal = tmp_path / "autoscaling.json"  # what LocalAutoscalingCluster hands to `ray start`
    rehearsal.write_text(json.dumps(rehearsal_config(spec, "127.0.0.1:1")))
    assert cluster.read_autoscaler_config(rehearsal).local
    assert not cluster.read_autoscaler_config(CLUSTER_YAML).local
    stray = tmp_path / "stray.yaml"  # a cloud provider's config with a stray module key
    stray.write_text(yaml.safe_dump({**spec, "provider": {"type": "aws", "module": "x.Y"}}))
    assert not cluster.read_autoscaler_config(stray).local


def test_the_rehearsal_provider_drops_a_worker_whose_raylet_exited(monkeypatch) -> None:
    """As a cloud's API stops listing a terminated instance: a worker whose raylet has exited is no longer listed,
    and what is left of it is stopped; a worker whose raylet runs, and the head, stay."""
    from ray._private import ray_constants

    from rtune_fashion.rehearsal_provider import RehearsalNodeProvider

    class Worker:  # the part of ray._private.node.Node the provider reads and calls, around a real process
        def __init__(self, command: list[str]) -> None:
            self.raylet = subprocess.Popen(command)
            self.all_processes = {ray_constants.PROCESS_TYPE_RAYLET: [SimpleNamespace(process=self.raylet)]}
            self.stopped = False

        def kill_all_processes(self, check_alive: bool, allow_graceful: bool) -> None:
            self.stopped = True

    monkeypatch.setenv("RAY_FAKE_CLUSTER", "1")
    provider = RehearsalNodeProvider({"gcs_address": "127.0.0.1:1"}, "rehearsal")
    (head,) = provider.non_terminated_nodes({})
    exited, running = Worker(["true"]), Worker(["sleep", "60"])
    exited.raylet.wait()
    provider._nodes.update({"a": {"tags": {}, "node": exited}, "b": {"tags": {}, "node": running}})
    try:
        assert provider.non_terminated_nodes({}) == [head, "b"]
        assert exited.stopped and not running.stopped and provider.is_terminated("a")
    finally:
        running.raylet.kill()
        running.raylet.wait()


def test_the_readme_command_scales_a_fresh_cluster_up_and_down(bystander, tmp_path: Path) -> None:
    """The main job as the README submits it (no resource flags) to a cluster that starts as cluster.yaml's
    CPU-only head: the GPUs of the node type the autoscaler can start are used by default (a quarter GPU and 2 of
    its 8 CPUs per trial), the autoscaler starts gpu_worker nodes, every trial runs on them, the job's
    logs show the progress, `rtune report` reads the results, the idle workers are stopped, and nothing of the
    cluster is left."""
    lines: list[str] = []
    outcome = rehearse(CLUSTER_YAML, echo=lines.append)
    assert outcome["job_succeeded"], "\n".join(lines)[-4000:]
    assert "succeeded" in outcome["job_status"].lower()
    assert ("Resources: 4 trials per GPU on node type gpu_worker (8 CPU, 1 GPU), which the autoscaler starts, 2 CPUs "
            "each") in outcome["job_logs"]  # fmt: skip
    assert "Searching cnn_wide with bohb + bohb: 5 trials of up to 2 epochs, 2 CPU and 0.25 GPU per trial." in (
        outcome["job_logs"])
    assert "0 running, 0 pending, 5 finished" in outcome["job_logs"]
    summary = outcome["summary"]
    assert summary["trials"]["errored"] == 0 and summary["final_model"]["test_accuracy"] > 0
    gpu_worker = yaml.safe_load(CLUSTER_YAML.read_text())["available_node_types"]["gpu_worker"]["resources"]
    workers = outcome["workers"]
    assert len(workers) >= 2  # five trials of a quarter GPU: more than one 1-GPU node holds
    assert all({k: r.get(k) for k in gpu_worker} == gpu_worker for r in workers.values())  # cluster.yaml's type
    used = {node for nodes in outcome["trial_nodes"].values() for node in nodes}
    assert len(outcome["trial_nodes"]) == 5 and used <= set(workers) and len(used) >= 2  # never the head
    assert "Best trial" in outcome["report"]
    assert outcome["idle_workers_stopped"] and outcome["processes_left"] == 0
    assert all(process.is_running() for process in bystander)  # someone else's Ray was not touched


def test_a_rehearsal_ended_by_sigterm_stops_its_cluster(bystander) -> None:
    """`rtune rehearse-cluster` sent SIGTERM mid-job (a `kill`, `timeout`, a cancelled CI job), once the autoscaler
    has started a worker: it stops its whole cluster (head, worker, the job's driver) and exits 143, as after
    Ctrl+C; without a handler Python would die at once and leave the cluster running."""
    import psutil

    process = subprocess.Popen([sys.executable, "-m", "rtune_fashion.cli", "rehearse-cluster", "--cluster",
                                str(CLUSTER_YAML)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=ENV)  # fmt: skip
    temp_dir, left = None, []
    try:
        said = ""
        while "temp dir " not in said and (line := process.stdout.readline()):
            said = line
        assert "temp dir " in said, "the rehearsal ended before it said where its cluster lives"
        temp_dir = said.split("temp dir ", 1)[1].split(")", 1)[0]

        def raylets() -> int:
            count = 0
            for candidate in processes_of(temp_dir):
                with contextlib.suppress(psutil.NoSuchProcess):
                    count += candidate.name() == "raylet"
            return count

        wait_for(lambda: raylets() >= 2, "a worker started by the autoscaler", driver=process)  # the head's and one
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=HANG_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
        if temp_dir is not None:  # whatever the rehearsal left, so that a failure here leaves nothing running
            left = processes_of(temp_dir)
            for leftover in left:
                with contextlib.suppress(psutil.NoSuchProcess):
                    leftover.kill()
            psutil.wait_procs(left, timeout=10)
    assert process.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert not left
    assert not Path(temp_dir).exists()
    assert all(process.is_running() for process in bystander)


def test_requests_are_checked_against_the_node_types_the_autoscaler_may_start(bystander, tmp_path: Path) -> None:
    """On the fresh cluster no live node has a GPU or a CPU for trials: a request that a node type meets is
    accepted (above), one that none meets is refused before the search, naming the largest node type; a
    rehearsal's workers run on this machine, so local storage is fine there."""
    with LocalAutoscalingCluster(CLUSTER_YAML) as local:
        settings = ExperimentSettings(space="mlp_hyperas", searcher="random", smoke_test=True, gpus_per_trial=2,
                                      address=local.address, storage=str(tmp_path))  # fmt: skip
        with pytest.raises(ExperimentError) as caught:
            run_experiment(settings, echo=lambda _: None)
        message = str(caught.value)
        assert message.startswith("--gpus-per-trial 2 cannot be met: the largest node this cluster's autoscaler can "
                                  "start, node type gpu_worker (8 CPU, 1 GPU)")  # fmt: skip
        assert not settings.experiment_dir.exists()
        ray.init(address=local.address, logging_level="ERROR")
        try:
            assert not [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")]  # none alive yet
            assert cluster.fits_somewhere(2, 0.25) == (True, "")
            assert not cluster.fits_somewhere(9, 0)[0]
            assert cluster.possible_hosts() == 1  # the fake provider's workers are processes here
            config = cluster.autoscaler_config()
            assert config is not None and config.local and {t.name for t in config.node_types} == {
                FAKE_HEAD_TYPE, "gpu_worker"}
        finally:
            ray.shutdown()
        processes = local.processes()
    assert processes and not any(p.is_running() for p in processes)
    assert all(process.is_running() for process in bystander)


def test_a_worker_terminated_mid_search_is_replaced_and_its_trials_continue(bystander, tmp_path: Path) -> None:
    """cluster.yaml's gpu_workers ended from outside the autoscaler mid-search (their processes killed, as a cloud
    ends a preempted instance) once Tune has each trial's first checkpoint: the autoscaler starts another
    gpu_worker, each trial goes on there from its checkpoint (with the default --max-failures, one retry), the
    search ends without an error, and the idle replacement is stopped. The trials wait for the kill after their
    first epoch, so it lands between two checkpoints on any machine."""
    with LocalAutoscalingCluster(CLUSTER_YAML) as local:
        settings = ExperimentSettings(space="mlp_hyperas", searcher="random", scheduler="fifo", num_samples=2,
                                      max_epochs=3, retrain=False, address=local.address, storage=str(tmp_path),
                                      train_size=2000, val_size=300, test_size=300,
                                      time_budget_s=HANG_TIMEOUT_S)  # a hang guard: trials left waiting fail below
        seen: dict[str, Any] = {}

        def terminate_the_workers_once_each_trial_has_a_checkpoint() -> None:
            try:
                deadline = time.monotonic() + HANG_TIMEOUT_S
                while len(trials := nodes_of_checkpointed_trials(settings.experiment_dir)) < 2:
                    assert time.monotonic() < deadline, "no checkpoint of each trial: a hang"
                    time.sleep(0.5)
                assert {nodes[0] for nodes in trials.values()} <= (alive := {n["NodeID"] for n in worker_nodes()})
                seen["killed"] = local.terminate_workers(alive)  # all of them: any worker after is a new one
            except BaseException as error:  # handed to the test below
                seen["error"] = error

        terminator = threading.Thread(target=terminate_the_workers_once_each_trial_has_a_checkpoint, daemon=True)
        terminator.start()
        summary = run_experiment(settings, echo=lambda _: None, trainable=trains_an_epoch_then_waits_to_be_killed)
        terminator.join(timeout=60)
        if "error" in seen:
            raise seen["error"]
        assert seen["killed"] and all(count > 0 for count in seen["killed"].values())  # the raylet and its workers
        assert summary["trials"]["finished"] == 2 and summary["trials"]["errored"] == 0
        for trial in load_experiment(settings.experiment_dir).trials:
            assert len(trial.nodes) == 2 and trial.nodes[0] in seen["killed"], trial.nodes
            assert trial.nodes[1] not in seen["killed"]  # a worker started after the kill: the head runs no trials
            assert_continued_from_checkpoint(trial.trial_id, [int(row["epoch"]) for row in trial.history], 3)
        ray.init(address=local.address, logging_level="ERROR")
        try:
            wait_until(lambda: not worker_nodes(), "the idle replacement stopped", HANG_TIMEOUT_S)
        finally:
            ray.shutdown()
        processes = local.processes()
    assert processes and not any(p.is_running() for p in processes)
    assert all(process.is_running() for process in bystander)


def test_a_cloud_cluster_s_workers_count_as_other_machines(tmp_path: Path) -> None:
    """Read as the head of a ray up cluster reads its ~/ray_bootstrap_config.yaml: cluster.yaml's own node types,
    whose workers are other machines (so machine-local storage is refused before any of them starts)."""
    config = cluster.read_autoscaler_config(CLUSTER_YAML)
    assert not config.local
    gpu = next(t for t in config.node_types if t.name == "gpu_worker")
    assert gpu.resources == {"CPU": 8.0, "GPU": 1.0} and gpu.max_workers == 4 and not gpu.is_head
    assert gpu.describe() == "node type gpu_worker (8 CPU, 1 GPU)"

