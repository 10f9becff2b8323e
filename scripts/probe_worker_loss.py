"""Does Ray's autoscaler replace a lost worker? A probe on the local rehearsal cluster (issue 17, left open).

    python scripts/probe_worker_loss.py [--autoscaler-v2]

Starts :class:`rtune_fashion.rehearsal.LocalAutoscalingCluster` from cluster.yaml, submits one task of a quarter
GPU and 2 CPUs that sleeps 150 s (the autoscaler starts a gpu_worker for it), kills every process of that worker
five seconds later (what a cloud's termination of the instance does), and prints the live workers every 10 s
until another one is up (or 100 s pass). Measured 2026-12-07 with the default (v1) autoscaler: killed at 12 s,
gone from Ray's nodes at 32 s, a new gpu_worker at 42 s. With ``--autoscaler-v2`` no worker started in 400 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--autoscaler-v2", action="store_true")
    args = parser.parse_args()
    os.environ["RAY_enable_autoscaler_v2"] = "1" if args.autoscaler_v2 else "0"  # noqa: SIM112 - Ray spells it so
    import ray

    from rtune_fashion.rehearsal import LocalAutoscalingCluster, worker_nodes

    started = time.time()

    def say(*words: object) -> None:
        print(f"{time.time() - started:6.1f} s", *words, flush=True)

    with LocalAutoscalingCluster(ROOT / "cluster.yaml") as cluster:
        ray.init(address=cluster.address, logging_level="ERROR")

        @ray.remote(num_cpus=2, num_gpus=0.25)
        def hold(seconds: float) -> None:
            time.sleep(seconds)

        pending = hold.remote(150)  # noqa: F841 - kept alive: the demand the autoscaler serves
        while not worker_nodes():
            time.sleep(1)
        victim = worker_nodes()[0]["NodeID"]
        say("worker up:", victim)
        import psutil  # Ray ships it (ray/thirdparty_files), importable once ray is

        time.sleep(5)
        killed = 0
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if process.environ().get("RAY_OVERRIDE_NODE_ID_FOR_TESTING") == victim:
                    process.kill()
                    killed += 1
        say(f"killed {killed} processes of the worker")
        deadline = time.time() + 100
        while time.time() < deadline:
            alive = [node["NodeID"] for node in worker_nodes()]
            say("live workers (id ends):", [node[-6:] for node in alive])
            if any(node != victim for node in alive):
                say("replaced")
                break
            time.sleep(10)
        ray.shutdown()


if __name__ == "__main__":
    main()
