"""A rehearsal of ``ray up cluster.yaml`` on this machine: Ray's own autoscaler reads cluster.yaml's node types
and starts and stops worker nodes for waiting trials, as processes here (Ray's fake multi-node provider).

:func:`rehearsal_config` derives the autoscaling config from cluster.yaml itself: the same node types with the
same resources, ``min_workers``/``max_workers``, cluster-wide ``max_workers`` and ``upscaling_speed``; only the
idle timeout is scaled down (10 minutes -> :data:`IDLE_TIMEOUT_MINUTES`), each worker's object store is capped
(:data:`WORKER_OBJECT_STORE_BYTES`: a laptop holds several), and the cloud parts (provider, Docker, setup
commands) give way to the fake provider (:mod:`rtune_fashion.rehearsal_provider`, which also lets a worker
killed from outside go, as a cloud's provider does, so that the autoscaler replaces it).
:class:`LocalAutoscalingCluster` starts its head with its own temp dir and ports, and stops exactly the processes
it started (never ``ray stop``, which would end every Ray on the machine, a user's search included).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rtune_fashion.cluster import REHEARSAL_PROVIDER
from rtune_fashion.errors import RtuneError

IDLE_TIMEOUT_MINUTES = 0.1  # cluster.yaml's idle timeout, scaled down: an idle worker stops after about 6 s
WORKER_OBJECT_STORE_BYTES = 500 * 2**20
FAKE_HEAD_TYPE = "ray.head.default"  # the name Ray's fake provider gives its head node type
STOP_WAIT_S = 5.0
STOP_ROUNDS = 3
START_TIMEOUT_S = 300.0


def rehearsal_config(cluster_yaml: dict[str, Any], gcs_address: str) -> dict[str, Any]:
    """The autoscaling config of a local rehearsal of ``cluster_yaml`` (its parsed content): see the module doc."""
    head = cluster_yaml["head_node_type"]
    types: dict[str, Any] = {}
    for name, spec in cluster_yaml["available_node_types"].items():
        resources = {k: v for k, v in (spec.get("resources") or {}).items()}
        if name == head:
            types[FAKE_HEAD_TYPE] = {"resources": resources, "node_config": {}, "max_workers": 0}
        else:
            types[name] = {"resources": {**resources, "object_store_memory": WORKER_OBJECT_STORE_BYTES},
                           "node_config": {}, "min_workers": int(spec.get("min_workers", 0)),
                           "max_workers": int(spec["max_workers"])}  # fmt: skip
    return {
        "cluster_name": f"{cluster_yaml['cluster_name']}-rehearsal",
        "max_workers": cluster_yaml["max_workers"],
        "upscaling_speed": cluster_yaml.get("upscaling_speed", 1.0),
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "provider": {"type": "external", "module": REHEARSAL_PROVIDER, "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True,
                     "gcs_address": gcs_address},  # fmt: skip
        "available_node_types": types,
        "head_node_type": FAKE_HEAD_TYPE,
        "auth": {},
        "docker": {},
        **{key: [] for key in ("initialization_commands", "setup_commands", "head_setup_commands",
                               "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands",
                               "cluster_synced_files", "rsync_exclude", "rsync_filter")},  # fmt: skip
        "file_mounts": {},
        "file_mounts_sync_continuously": False,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def processes_of(temp_dir: str | os.PathLike) -> list[Any]:
    """The live processes of the Ray whose temp dir is ``temp_dir``: those whose command line names it (GCS,
    raylets, monitor, dashboard, log monitors, workers), and their descendants (the agents, which rename
    themselves ray::DashboardAgent and ray::RuntimeEnvAgent); never this process."""
    import psutil
    import ray  # noqa: F401 - makes Ray's psutil importable

    marker = str(temp_dir)
    found: dict[int, Any] = {}
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in process.info.get("cmdline") or []):
                found[process.pid] = process
                found.update((child.pid, child) for child in process.children(recursive=True))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def own_ports() -> list[str]:
    """``ray start`` flags that give a head free ports of its own for every service whose default is fixed (the
    dashboard agent's 52365, the Ray client's 10001, ...): a second Ray on the machine (a user's, the tests'
    shared one) holds the defaults, and a head whose job agent cannot bind its port never accepts a job."""
    flags = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
             "--ray-client-server-port", "--runtime-env-agent-port", "--node-manager-port", "--object-manager-port")
    return [f"{flag}={_free_port()}" for flag in flags]


class LocalAutoscalingCluster:
    """A Ray head with an autoscaler over cluster.yaml's node types, on this machine (see the module doc).

    ``with LocalAutoscalingCluster("cluster.yaml") as cluster:`` starts it (``cluster.address`` for
    ``--address``, ``cluster.dashboard_url`` for ``ray job submit``) and stops everything it started.
    """

    def __init__(self, cluster_yaml: str | os.PathLike = "cluster.yaml") -> None:
        import yaml

        self.cluster_yaml = Path(cluster_yaml)
        self.spec = yaml.safe_load(self.cluster_yaml.read_text())
        # Short: Ray's socket paths live under it, and a Unix socket path has at most 107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rtr-", dir="/tmp"))
        self.port, self.dashboard_port = _free_port(), _free_port()
        self.ip = "127.0.0.1"
        self.address = f"{self.ip}:{self.port}"
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"
        self.config = rehearsal_config(self.spec, self.address)

    def start(self) -> LocalAutoscalingCluster:
        """Start the head and its autoscaler.

        Raises:
            RtuneError: ``ray start`` failed (its output included).
        """
        config_file = self.temp_dir / "autoscaling.json"
        config_file.write_text(json.dumps(self.config))
        head = self.config["available_node_types"][FAKE_HEAD_TYPE]["resources"]
        command = [str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={self.port}",
                   f"--node-ip-address={self.ip}",
                   f"--temp-dir={self.temp_dir}", f"--autoscaling-config={config_file}",
                   f"--num-cpus={int(head.get('CPU', 0))}", f"--num-gpus={int(head.get('GPU', 0))}",
                   "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
                   "--disable-usage-stats", *own_ports()]  # fmt: skip
        # Token authentication off: Ray turns it on for a `ray start` wherever ~/.ray/auth_token exists, and then
        # a driver given the address (this one, a job's) must be told to send it. The rehearsal listens on this
        # machine's loopback only (--node-ip-address) and lives for minutes.
        # Autoscaler v1: under v2 (RAY_enable_autoscaler_v2=1) the fake provider's cluster started no worker in
        # 400 s (docs/MEASURED.md).
        env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_AUTH_MODE": "disabled",
               "RAY_enable_autoscaler_v2": "0"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)
        if done.returncode != 0:
            self.stop()
            raise RtuneError(f"ray start of the rehearsal cluster failed: {(done.stdout + done.stderr)[-2000:]}")
        return self

    def processes(self) -> list[Any]:
        """The live processes of this cluster (see :func:`processes_of`)."""
        return processes_of(self.temp_dir)

    def terminate_workers(self, node_ids: set[str]) -> dict[str, int]:
        """End this cluster's workers ``node_ids`` as a cloud ends instances behind the autoscaler's back (a spot
        preemption, a console's "terminate"): SIGKILL, all at once, to each node's raylet and the workers and
        agents it started (they carry its node id). Returns how many processes of each node were killed. The
        provider then drops the nodes, and the autoscaler may start others (:mod:`rtune_fashion.rehearsal_provider`).
        """
        import psutil

        killed: dict[str, list[Any]] = {node: [] for node in node_ids}
        for process in self.processes():
            try:
                node = process.environ().get("RAY_OVERRIDE_NODE_ID_FOR_TESTING")
                if node in killed:
                    process.kill()
                    killed[node].append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        psutil.wait_procs([p for processes in killed.values() for p in processes], timeout=STOP_WAIT_S)
        return {node: len(processes) for node, processes in killed.items()}

    def stop(self) -> None:
        """Stop every process of this cluster (SIGTERM, then SIGKILL after STOP_WAIT_S) and delete its temp dir.
        Again while some are left, up to STOP_ROUNDS times: a process may start while the others stop (a worker
        its raylet was starting, a job's driver)."""
        import psutil
        import ray

        with contextlib.suppress(Exception):  # best effort: the processes are stopped below either way
            if ray.is_initialized() and ray.get_runtime_context().gcs_address.endswith(f":{self.port}"):
                ray.shutdown()  # else this process would wait a minute for the GCS to come back
        for _ in range(STOP_ROUNDS):
            processes = self.processes()
            if not processes:
                break
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGTERM)
            _, alive = psutil.wait_procs(processes, timeout=STOP_WAIT_S)
            for process in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
            psutil.wait_procs(alive, timeout=STOP_WAIT_S)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalAutoscalingCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_nodes() -> list[dict[str, Any]]:
    """The live worker nodes (those the autoscaler started: not the head) of the connected cluster."""
    import ray

    return [n for n in ray.nodes() if n["Alive"] and not n["Resources"].get("node:__internal_head__")]


def wait_until(condition: Any, what: str, timeout_s: float) -> None:
    """Poll ``condition`` every second until it holds.

    Raises:
        RtuneError: it did not within ``timeout_s`` (a hang guard, not a timing promise).
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RtuneError(f"The rehearsal cluster did not reach this state in {timeout_s:.0f} s: {what}.")
        time.sleep(1.0)


# The README's cloud command, rehearsed: the main job in smoke mode with the default resources (the autoscaler's
# gpu_worker type has GPUs: a quarter GPU and 2 of its 8 CPUs per trial, four trials on each), five at once so
# that the autoscaler starts two workers; submitted as a Ray job.
REHEARSAL_FLAGS = ["--smoke-test", "--num-samples", "5", "--max-concurrent", "5"]
REHEARSAL_SCRIPT = "experiments/cnn_bohb.py"
NODE_WAIT_S = 600.0  # hang guard for the autoscaler's and the job's steps (seconds on an idle machine)
AGENT_WAIT_S = 120.0  # how long a submission waits for the head's job agent (seconds after ray start)


def _ray(*args: str, **options: Any) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "ray"), *args], capture_output=True, text=True,
                          timeout=NODE_WAIT_S, check=False, **options)  # fmt: skip


Workers = dict[str, dict[str, float]]  # node id -> its resources


def _submit_and_watch(dashboard_url: str, job_id: str, entrypoint: list[str],
                      output_file: Path) -> tuple[subprocess.CompletedProcess, Workers]:  # fmt: skip
    """``ray job submit`` (which waits for the job's end, printing its logs to ``output_file``), again while the
    head's job agent is still starting (Ray answers "No available agent to submit job" for the first seconds
    after `ray start`). Meanwhile every worker node seen alive, with its resources, polled each second: the
    autoscaler may stop an idle worker before the job ends, and Ray keeps no resources for a stopped node.

    Raises:
        RtuneError: the job ran past NODE_WAIT_S (a hang guard). Whatever ends this early (that, Ctrl+C, a
            SIGTERM) kills the submission first.
    """
    command = [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address", dashboard_url,
               "--submission-id", job_id, "--", *entrypoint]  # fmt: skip
    agent_deadline, seen = time.monotonic() + AGENT_WAIT_S, Workers()
    while True:
        hang_deadline = time.monotonic() + NODE_WAIT_S
        with output_file.open("w+") as output:
            submission = None
            try:
                submission = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True)
                while submission.poll() is None:
                    if time.monotonic() > hang_deadline:
                        raise RtuneError(f"The rehearsal's job did not end in {NODE_WAIT_S:.0f} s.")
                    seen.update({n["NodeID"]: n["Resources"] for n in worker_nodes()})
                    time.sleep(1.0)
            finally:
                if submission is not None and submission.poll() is None:
                    submission.kill()
                    submission.wait()
            output.seek(0)
            said = output.read()
        if "No available agent to submit job" not in said or time.monotonic() > agent_deadline:
            return subprocess.CompletedProcess(command, submission.returncode, said, ""), seen
        time.sleep(2.0)


class _EndedBySignals:
    """SIGTERM and SIGHUP (a `kill`, `timeout`, a closed terminal, a cancelled CI job) end the rehearsal as Ctrl+C
    does, while this context lasts: as an exception in the main thread, so that its cluster is stopped on the way
    out (otherwise the process dies at once and the cluster runs on). From :meth:`hold` on (call it before the
    stop) a signal is only recorded, so that the stop is not cut short, and the context's end raises
    ``SystemExit(128 + signal)`` for it. A signal ignored when this starts (``nohup``) stays ignored. Outside
    the main thread (where Python cannot set handlers) nothing changes.

    ``ray.init`` installs a handler of its own for SIGTERM (it prints a stack trace and aborts the process):
    connect with :meth:`connect`, which takes the signals back.
    """

    ENDING = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.received: int | None = None
        self.holding = False
        self.main_thread = threading.current_thread() is threading.main_thread()

    def _end(self, signum: int, _frame: Any) -> None:
        self.received = signum
        if not self.holding:
            raise SystemExit(128 + signum)

    def _claim(self) -> None:
        for number in self.ENDING:
            if number not in self.previous:
                self.previous[number] = signal.getsignal(number)
            if self.previous[number] is not signal.SIG_IGN:
                signal.signal(number, self._end)

    def connect(self, address: str) -> None:
        """``ray.init(address)``, the signals blocked meanwhile and taken back from Ray's handler after it (one
        that came in between is handled then)."""
        import ray

        if self.main_thread:
            signal.pthread_sigmask(signal.SIG_BLOCK, self.ENDING)
        try:
            ray.init(address=address, logging_level="ERROR")
        finally:
            if self.main_thread:
                self._claim()
                signal.pthread_sigmask(signal.SIG_UNBLOCK, self.ENDING)

    def hold(self) -> None:
        self.holding = True

    def __enter__(self) -> _EndedBySignals:
        if self.main_thread:
            self._claim()
        return self

    def __exit__(self, exc_type: Any, *_: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # None: not set from Python
        if self.received is not None and exc_type is None:
            raise SystemExit(128 + self.received)


def rehearse(cluster_yaml: str | os.PathLike = "cluster.yaml", echo: Any = print,
             flags: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Start a :class:`LocalAutoscalingCluster` from ``cluster_yaml``; submit the main job to it with ``ray job
    submit`` and :data:`REHEARSAL_FLAGS` (or ``flags``), as one would submit it to a cloud cluster; read its
    logs with ``ray job logs``; wait for the autoscaler to stop the idle workers; stop the cluster. Returns
    what happened: the job's status and logs, the search's summary (from the storage the job wrote to), its
    report, the workers the autoscaler started (seen alive while the job ran) and their resources, the nodes
    each trial ran on, whether the idle workers were stopped, the processes left (0) and the wall time.

    Raises:
        RtuneError: the cluster did not start or a step hung (the cluster is stopped either way).
        SystemExit: a SIGTERM or SIGHUP, with 128 + its number, once the cluster is stopped (as after Ctrl+C).
    """
    import ray

    from rtune_fashion.results import load_experiment

    cluster = LocalAutoscalingCluster(cluster_yaml)
    types = ", ".join(f"{name} {spec['resources']} x{spec.get('min_workers', 0)}-{spec['max_workers']}"
                      for name, spec in cluster.config["available_node_types"].items() if name != FAKE_HEAD_TYPE)
    started = time.time()
    checkout = Path(__file__).resolve().parents[1]
    with _EndedBySignals() as signals:
        try:
            cluster.start()
            echo(f"Rehearsal of {cluster_yaml} on this machine: a head with "
                 f"{cluster.config['available_node_types'][FAKE_HEAD_TYPE]['resources']} and Ray's autoscaler over "
                 f"{types} (idle timeout {IDLE_TIMEOUT_MINUTES * 60:.0f} s); Ray at {cluster.address} (temp dir "
                 f"{cluster.temp_dir}), dashboard {cluster.dashboard_url}.")  # fmt: skip
            storage = f"file://{cluster.temp_dir / 'results'}"
            # The checkout's own script, not a --working-dir copy: cluster.yaml mounts and installs the checkout on
            # every node, and the fake provider's nodes share one disk, where Ray's per-node working-dir cleanup
            # deleted the copy other nodes' workers ran in (their trials died at os.getcwd()).
            entrypoint = [sys.executable, str(checkout / REHEARSAL_SCRIPT), "--address", "auto", "--storage", storage,
                          *(REHEARSAL_FLAGS if flags is None else flags)]  # fmt: skip
            job_id = f"rtune-rehearsal-{int(started)}"
            echo(f"ray job submit --address {cluster.dashboard_url} -- python " + " ".join(entrypoint[1:]))
            signals.connect(cluster.address)
            submitted, workers = _submit_and_watch(cluster.dashboard_url, job_id, entrypoint,
                                                   cluster.temp_dir / "submission.log")  # fmt: skip
            ray.shutdown()
            status = _ray("job", "status", "--address", cluster.dashboard_url, job_id).stdout
            logs = _ray("job", "logs", "--address", cluster.dashboard_url, job_id).stdout
            echo(logs.rstrip())
            if submitted.returncode != 0:
                echo(f"The job failed: {(submitted.stdout + submitted.stderr)[-3000:]}")
            experiment_dir = cluster.temp_dir / "results" / "cnn_wide_bohb_smoke"
            summary = json.loads((experiment_dir / "summary.json").read_text()) if submitted.returncode == 0 else None
            trial_nodes = {t.trial_id: t.nodes for t in load_experiment(experiment_dir).trials} if summary else {}
            used = {n for nodes in trial_nodes.values() for n in nodes}
            echo(f"The autoscaler started {len(workers)} worker(s); the trials ran on {len(used & set(workers))} of "
                 "them. Waiting for the idle ones to be stopped...")  # fmt: skip
            signals.connect(cluster.address)
            wait_until(lambda: not worker_nodes(), "the idle workers stopped", NODE_WAIT_S)
            stopped = not worker_nodes()
            ray.shutdown()
            echo(f"Idle workers stopped, {time.time() - started:.0f} s after the start.")
            report = None
            if summary:
                from rtune_fashion.report import write_report

                report = write_report(experiment_dir).text
        finally:
            signals.hold()
            cluster.stop()
    left = len(cluster.processes())
    echo(f"Rehearsal cluster stopped: {left} of its processes left; {time.time() - started:.0f} s in all.")
    return {"job_succeeded": submitted.returncode == 0, "job_status": status, "job_logs": logs,
            "summary": summary, "report": report, "workers": workers, "trial_nodes": trial_nodes,
            "idle_workers_stopped": stopped, "processes_left": left, "wall_s": time.time() - started}
