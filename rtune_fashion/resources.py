"""Resources per trial when the user gives none: the GPUs a Ray cluster has are used without being asked.

Packing: :data:`TRIALS_PER_GPU` trials share each GPU. Measured on an H100 with article D's best CNN
(docs/benchmarks.md, "GPU: packing trials"): 4 trials per GPU gave 3.52 epochs/s over a whole run against
1.86 for one trial alone, and 8 gave 3.58 (the same within the noise) with first epochs of 3.2 s instead of
1.8 s and eight compilations at once (34 s each with an empty cache). Each trial gets the node's CPUs
divided among that node's trials, one CPU left for the driver on the driver's node, at least one.

CPU-only clusters keep the old defaults (1 CPU, no GPU); a given ``--gpus-per-trial`` (0 included) or
``--cpus-per-trial`` is kept as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ray

from rtune_fashion import cluster

TRIALS_PER_GPU = 4
DRIVER_CPUS = 1  # left on the driver's node for the search's own process


@dataclass(frozen=True)
class GpuNode:
    """A node with GPUs that trials may run on: live, or a type the cluster's autoscaler may start."""

    name: str  # "1 GPU" for the live ones, "node type gpu_worker" for autoscaler types
    cpus: float
    gpus: float
    runs_driver: bool = False

    @property
    def trial_cpus(self) -> float:
        """The CPUs its trials may take: all, less one for the driver on the driver's node."""
        return self.cpus - (DRIVER_CPUS if self.runs_driver else 0)

    def cpus_per_trial(self) -> float:
        return float(max(1, math.floor(self.trial_cpus / (self.gpus * TRIALS_PER_GPU))))

    def trials_per_gpu(self, cpus_per_trial: float) -> int:
        """How many trials of a quarter GPU and ``cpus_per_trial`` CPUs run at once per GPU of this node."""
        return min(TRIALS_PER_GPU, math.floor(self.trial_cpus / cpus_per_trial / self.gpus))


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float
    gpus_per_trial: float
    line: str | None  # what was chosen and why, for the output; None when nothing was chosen for the user


def gpu_nodes() -> list[GpuNode]:
    """The live nodes with GPUs of the connected cluster, or else the node types with GPUs its autoscaler may
    start (a `ray up` cluster starts with none alive)."""
    driver = ray.get_runtime_context().get_node_id()
    live = [GpuNode(f"{n['Resources']['GPU']:g} GPU", n["Resources"].get("CPU", 0), n["Resources"]["GPU"],
                    n["NodeID"] == driver)
            for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU", 0) > 0]  # fmt: skip
    if live:
        return live
    config = cluster.autoscaler_config()
    types = [t for t in config.node_types if t.max_workers > 0 or t.is_head] if config else []
    return [GpuNode(t.describe(), t.resources.get("CPU", 0), t.resources["GPU"], t.is_head)
            for t in types if t.resources.get("GPU", 0) > 0]  # fmt: skip


def choose(cpus_per_trial: float | None, gpus_per_trial: float | None, nodes: list[GpuNode]) -> Resources:
    """The resources per trial for what the user gave (None: not given) on a cluster with GPU ``nodes``."""
    nodes = [node for node in nodes if node.trial_cpus >= 1]  # a GPU node without CPUs for trials runs none
    if gpus_per_trial is not None or not nodes:
        return Resources(1.0 if cpus_per_trial is None else cpus_per_trial, gpus_per_trial or 0.0, None)
    cpus = min(node.cpus_per_trial() for node in nodes) if cpus_per_trial is None else cpus_per_trial
    live = all(node.name.endswith(" GPU") for node in nodes)
    where = (f"on {sum(n.gpus for n in nodes):g} GPU(s)" if live
             else "on " + ", ".join(n.name for n in nodes) + ", which the autoscaler starts")  # fmt: skip
    fit = min(node.trials_per_gpu(cpus) for node in nodes)
    chosen = (f"{TRIALS_PER_GPU} trials per GPU {where}, {cpus:g} CPUs each" if fit >= TRIALS_PER_GPU else
              f"a quarter GPU per trial {where}, {cpus:g} CPUs each: {max(fit, 0)} trial(s) per GPU at a time, as "
              "the CPUs allow")  # fmt: skip
    return Resources(cpus, 1 / TRIALS_PER_GPU,
                     f"{chosen} (the default where there are GPUs: --gpus-per-trial 0 keeps the trials on the CPUs, "
                     "--gpus-per-trial and --cpus-per-trial choose).")  # fmt: skip
