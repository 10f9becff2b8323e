"""What a lost worker costs a search on the local rehearsal cluster (issue 17): a timeline.

    python scripts/probe_worker_loss.py [--epochs 8] [--train-size 6000]

Starts :class:`rtune_fashion.rehearsal.LocalAutoscalingCluster` from cluster.yaml and runs one trial of the
mlp_hyperas space there with the default resources (a quarter GPU and 2 CPUs of a ``gpu_worker``, which the
autoscaler starts). Once the trial has reported its first epoch, its worker's processes are killed
(``LocalAutoscalingCluster.terminate_workers``: what a cloud's preemption does). The script prints, in seconds
after the kill began, when the autoscaler's replacement joined and when the trial reported from it (and from
which epoch on: the trial may have checkpointed a later epoch before the kill), then when the search ended. A
search still waiting after 10 minutes is ended by its time budget. The test of this path is
tests/test_autoscaler.py; this script is for the seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=6000)
    args = parser.parse_args()

    from rtune_fashion.experiment import ExperimentSettings, run_experiment
    from rtune_fashion.rehearsal import LocalAutoscalingCluster, worker_nodes
    from rtune_fashion.results import read_history

    started = time.time()

    def say(*words: object) -> None:
        print(f"{time.time() - started:6.1f} s", *words, flush=True)

    cluster = LocalAutoscalingCluster(ROOT / "cluster.yaml")
    with tempfile.TemporaryDirectory(prefix="rtune-loss-") as storage, cluster:
        settings = ExperimentSettings(space="mlp_hyperas", searcher="random", scheduler="fifo", num_samples=1,
                                      max_epochs=args.epochs, retrain=False, address=cluster.address, storage=storage,
                                      train_size=args.train_size, val_size=1000, test_size=1000,
                                      time_budget_s=HANG_GUARD_S)  # fmt: skip
        say("cluster up at", cluster.address)

        def rows() -> list[dict]:
            return [row for path in settings.experiment_dir.glob("trial_*") for row in read_history(path)]

        def terminate_after_the_first_epoch() -> None:
            while not (reported := rows()):
                time.sleep(0.1)
            victim, kill = reported[0]["node_id"], time.time()
            say(f"epoch 1 reported on worker ...{victim[-5:]}: killing it")
            killed = cluster.terminate_workers({victim})[victim]
            say(f"killed {killed} of its processes (+{time.time() - kill:.1f} s)")
            while not (others := [n["NodeID"] for n in worker_nodes() if n["NodeID"] != victim]):
                time.sleep(0.1)
            say(f"the autoscaler's new worker ...{others[0][-5:]} joined (+{time.time() - kill:.1f} s)")
            while not (moved := [row for row in rows() if row["node_id"] != victim]):
                time.sleep(0.1)
            say(f"epoch {moved[0]['epoch']} reported on the new worker (+{time.time() - kill:.1f} s)")

        threading.Thread(target=terminate_after_the_first_epoch, daemon=True).start()
        summary = run_experiment(settings, echo=say)
        say("search ended:", summary["trials"])


if __name__ == "__main__":
    main()
