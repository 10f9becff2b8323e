"""The node provider of the local rehearsal (:mod:`rtune_fashion.rehearsal`): Ray's fake multi-node provider, whose
worker nodes are processes of this machine, with the one thing a cloud's provider does that it lacks.

A cloud's API stops listing an instance that was terminated from outside the autoscaler (a spot preemption, a
console's "terminate", a dead host); the autoscaler then counts it gone and starts a replacement for the demand it
left, such as a trial waiting to continue from its checkpoint. Ray's fake provider keeps listing a worker whose
processes were killed, with the status "uninitialized" it was launched with, which exempts it from the
autoscaler's heartbeat check; a trial's waiting placement group is bin-packed onto it, which keeps it from being
stopped as idle and counts it as capacity on its way: no replacement is started (measured: a search sat with its
trial pending and no worker alive until stopped after 10 minutes). :class:`RehearsalNodeProvider` stops listing a
worker whose raylet has exited, and kills what is left of it.

The autoscaler (Ray's ``monitor.py`` process, the parent of each fake node's raylet) loads this class by name: the
rehearsal's config has ``provider: {type: external, module: rtune_fashion.rehearsal_provider.RehearsalNodeProvider,
...}``. It relies on private parts of Ray 2.60's fake provider (``_nodes``, ``_terminate_node``) and of its
``Node`` (``all_processes``); pyproject pins Ray below 2.61.
"""

from __future__ import annotations

import logging
from typing import Any

from ray._private import ray_constants
from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider

logger = logging.getLogger(__name__)


def raylet_exited(entry: dict[str, Any]) -> bool:
    """Whether the fake provider's entry for a node is a worker whose raylet has exited (never the head's entry,
    which has no ``"node"``: the head is not the provider's to start or end)."""
    node = entry.get("node")
    if node is None:
        return False
    raylets = node.all_processes.get(ray_constants.PROCESS_TYPE_RAYLET, [])
    return bool(raylets) and all(info.process.poll() is not None for info in raylets)


class RehearsalNodeProvider(FakeMultiNodeProvider):
    """Ray's fake multi-node provider, except that a worker whose raylet exited is terminated (see the module doc).

    A failure to kill what is left of such a worker is logged, not raised: the node is out of the list either
    way, and an error here would count against the autoscaler's own failure limit.
    """

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        with self.lock:
            for node_id in [n for n, entry in self._nodes.items() if raylet_exited(entry)]:
                entry = self._nodes.pop(node_id)
                try:
                    self._terminate_node(entry)  # its other processes, as a cloud ends an instance
                except Exception:  # noqa: BLE001 - see the class doc
                    logger.exception("Could not stop what was left of worker %s", node_id)
            return super().non_terminated_nodes(tag_filters)
