"""The node provider of the local rehearsal (:mod:`rtune_fashion.rehearsal`): Ray's fake multi-node provider, whose
worker nodes are processes of this machine, with the one thing a cloud's provider does that it lacks.

A cloud's API stops listing an instance that was terminated from outside the autoscaler (a spot preemption, a
console's "terminate", a dead host); the autoscaler then counts it gone and starts a replacement for the demand it
left, such as a trial waiting to continue from its checkpoint. Ray's fake provider keeps listing a worker whose
processes were killed, as "uninitialized", and the autoscaler waits for it forever (measured: a search waited
10 minutes with its trial pending and no worker). :class:`RehearsalNodeProvider` stops listing a worker whose
raylet has exited, and kills what is left of it.

The autoscaler (Ray's ``monitor.py`` process) loads this class by name: the rehearsal's config has
``provider: {type: external, module: rtune_fashion.rehearsal_provider.RehearsalNodeProvider, ...}``.
"""

from __future__ import annotations

from typing import Any

from ray._private import ray_constants
from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider


def _raylet_exited(entry: dict[str, Any]) -> bool:
    node = entry.get("node")  # the head's entry has none: it is not this provider's to start or end
    if node is None:
        return False
    raylets = node.all_processes.get(ray_constants.PROCESS_TYPE_RAYLET, [])
    return bool(raylets) and all(info.process.poll() is not None for info in raylets)


class RehearsalNodeProvider(FakeMultiNodeProvider):
    """Ray's fake multi-node provider, except that a worker whose raylet exited is terminated (see the module doc)."""

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        with self.lock:
            for node_id in [n for n, entry in self._nodes.items() if _raylet_exited(entry)]:
                self._terminate_node(self._nodes.pop(node_id))  # its other processes, as a cloud ends an instance
            return super().non_terminated_nodes(tag_filters)
