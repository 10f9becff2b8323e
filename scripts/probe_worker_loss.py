"""What a lost worker costs a search on the local rehearsal cluster (issue 17): a timeline.

    python scripts/probe_worker_loss.py [--epochs 8] [--train-size 6000] [--autoscaler-v2]

Starts :class:`rtune_fashion.rehearsal.LocalAutoscalingCluster` from cluster.yaml and runs one trial of the
mlp_hyperas space there with the default resources (a quarter GPU and 2 CPUs of a ``gpu_worker``, which the
autoscaler starts). Once the trial has its first checkpoint, every process of its worker is killed
(:func:`rtune_fashion.rehearsal.terminate_worker`: what a cloud's preemption does), and the script prints when the
node left Ray's list, when the autoscaler's replacement joined, when the trial reported from it (and from which
epoch on), and when the search ended. The test of this path is tests/test_autoscaler.py; this script is for
the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rows(experiment_dir: Path) -> list[dict]:
    rows = []
    for path in experiment_dir.glob("trial_*/result.json"):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--autoscaler-v2", action="store_true")
    args = parser.parse_args()
    os.environ["RAY_enable_autoscaler_v2"] = "1" if args.autoscaler_v2 else "0"  # noqa: SIM112 - Ray spells it so

    from rtune_fashion.experiment import ExperimentSettings, run_experiment
    from rtune_fashion.rehearsal import LocalAutoscalingCluster, terminate_worker, worker_nodes

    started = time.time()

    def say(*words: object) -> None:
        print(f"{time.time() - started:6.1f} s", *words, flush=True)

    with LocalAutoscalingCluster(ROOT / "cluster.yaml") as cluster:
        settings = ExperimentSettings(space="mlp_hyperas", searcher="random", scheduler="fifo", num_samples=1,
                                      max_epochs=args.epochs, max_failures=3, retrain=False, address=cluster.address,
                                      storage=tempfile.mkdtemp(prefix="rtune-loss-"), train_size=args.train_size,
                                      val_size=1000, test_size=1000)  # fmt: skip
        say("cluster up at", cluster.address)

        def terminate_after_the_first_checkpoint() -> None:
            while not (rows := _rows(settings.experiment_dir)):
                time.sleep(0.1)
            victim = rows[0]["node_id"]
            say(f"epoch 1 reported on worker ...{victim[-5:]}; killed {terminate_worker(victim)} of its processes")
            while not (others := [n["NodeID"] for n in worker_nodes() if n["NodeID"] != victim]):
                time.sleep(0.1)
            say(f"the autoscaler's new worker ...{others[0][-5:]} joined")
            while True:
                moved = [row for row in _rows(settings.experiment_dir) if row["node_id"] != victim]
                if moved:
                    say(f"epoch {moved[0]['epoch']} reported on the new worker ...{moved[0]['node_id'][-5:]}")
                    return
                time.sleep(0.1)

        watcher = threading.Thread(target=terminate_after_the_first_checkpoint, daemon=True)
        watcher.start()
        summary = run_experiment(settings, echo=lambda line: say(line))
        say("search ended:", summary["trials"])


if __name__ == "__main__":
    main()
