"""How many CPUs this process may use: its affinity (``taskset``, cpusets) and its cgroup's CPU quota
(``docker --cpus``), whichever is fewer. ``os.cpu_count()`` counts the machine's, which both may cut."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def usable_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """At least 1. Without affinity (macOS) the machine's count; without a readable quota, no quota."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            count = min(count, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, count)


if __name__ == "__main__":  # scripts/test.sh: one test worker per usable CPU
    print(usable_cpus())
