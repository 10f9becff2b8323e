"""What the Ray cluster a search runs on can become: its live nodes, and the node types its autoscaler may start.

Right after ``ray up cluster.yaml`` the cluster is a CPU-only head with no workers (``min_workers: 0``): a check
against the live nodes alone would refuse ``--gpus-per-trial 0.25`` ("the largest node has 0 GPUs") and the
autoscaler would never see a waiting trial, and would count one host and accept machine-local storage. So
the checks here also read the autoscaler's node types, from the autoscaling config that the cluster's
autoscaler (Ray's ``monitor.py``, on the head) runs with: the path on its command line, else ``ray up``'s
``~/ray_bootstrap_config.yaml`` on the head. A cluster without an autoscaler (a local Ray, ``ray start`` by
hand) has its live nodes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

RAY_UP_CONFIG = Path.home() / "ray_bootstrap_config.yaml"  # where ray up leaves the config on the head
# The node provider of `rtune rehearse-cluster` (an "external" provider to Ray): Ray's fake multi-node provider,
# whose nodes are processes of this machine, as are Ray's own fake provider's.
REHEARSAL_PROVIDER = "rtune_fashion.rehearsal_provider.RehearsalNodeProvider"


@dataclass(frozen=True)
class NodeType:
    """One of the autoscaler's ``available_node_types``: its name, resources and most workers."""

    name: str
    resources: dict[str, float]
    max_workers: int
    is_head: bool

    def describe(self) -> str:
        shown = ", ".join(f"{v:g} {k}" for k, v in sorted(self.resources.items()) if k in ("CPU", "GPU"))
        return f"node type {self.name} ({shown or 'no CPU or GPU'})"


@dataclass(frozen=True)
class AutoscalerConfig:
    path: Path
    node_types: list[NodeType]
    local: bool  # its workers run on this machine (the fake multi-node provider)


def autoscaler_config_path(gcs_address: str | None = None) -> Path | None:
    """The autoscaling config of the cluster at ``gcs_address`` (default: the one this process is connected to):
    from the command line of its autoscaler on this machine, else ray up's file on the head; None when the
    cluster has no autoscaler here."""
    import psutil  # Ray ships it (ray/thirdparty_files), importable once ray is

    address = gcs_address or ray.get_runtime_context().gcs_address
    for process in psutil.process_iter(["cmdline"]):
        command = process.info.get("cmdline") or []
        if not any(part.endswith("monitor.py") for part in command) or f"--gcs-address={address}" not in command:
            continue
        for part in command:
            if part.startswith("--autoscaling-config="):
                return Path(part.split("=", 1)[1]).expanduser()
    return RAY_UP_CONFIG if RAY_UP_CONFIG.is_file() else None


def read_autoscaler_config(path: Path) -> AutoscalerConfig:
    """The node types of an autoscaling config (YAML, or the JSON Ray writes)."""
    import yaml

    config = yaml.safe_load(path.read_text())
    head = config.get("head_node_type")
    types = [NodeType(name, {k: float(v) for k, v in (spec.get("resources") or {}).items()},
                      int(spec.get("max_workers", 0)), name == head)
             for name, spec in (config.get("available_node_types") or {}).items()]  # fmt: skip
    provider = config.get("provider") or {}
    return AutoscalerConfig(path, types, _is_local(provider))


def _is_local(provider: dict[str, Any]) -> bool:
    """Whether a provider config's nodes are processes of this machine (a rehearsal), not machines of their own."""
    kind = provider.get("type")
    return kind == "fake_multinode" or (kind == "external" and provider.get("module") == REHEARSAL_PROVIDER)


def autoscaler_config() -> AutoscalerConfig | None:
    path = autoscaler_config_path()
    return read_autoscaler_config(path) if path is not None else None


def _live_nodes() -> list[dict[str, Any]]:
    return [node for node in ray.nodes() if node["Alive"]]


def fits_somewhere(cpus: float, gpus: float) -> tuple[bool, str]:
    """Whether one trial of ``cpus`` and ``gpus`` fits on a live node or on a node type the autoscaler may
    start; and the largest such node in words (for the message when it does not)."""
    live = [node["Resources"] for node in _live_nodes()]
    config = autoscaler_config()
    startable = [t for t in config.node_types if t.max_workers > 0 or t.is_head] if config else []
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in live + [t.resources for t in startable]):
        return True, ""
    key = "GPU" if gpus > 0 else "CPU"
    best_live = max((r.get(key, 0) for r in live), default=0)
    best_type = max(startable, key=lambda t: t.resources.get(key, 0), default=None)
    if best_type is not None and best_type.resources.get(key, 0) >= best_live:
        return False, (f"the largest node this cluster's autoscaler can start, {best_type.describe()} "
                       f"({config.path}), has {best_type.resources.get(key, 0):g} {key}(s)")  # type: ignore[union-attr]
    return False, f"the largest node of this Ray cluster has {best_live:g} {key}(s)"


def possible_hosts() -> int:
    """Machines the cluster has or may have: its live hosts, and the workers its autoscaler may start on other
    machines (not a rehearsal's, which run here)."""
    hosts = len({node["NodeManagerAddress"] for node in _live_nodes()})
    config = autoscaler_config()
    if config is None or config.local:
        return hosts
    return hosts + sum(t.max_workers for t in config.node_types if not t.is_head)
