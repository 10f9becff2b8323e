"""The test suite's own machinery: what keeps it inside CI's time."""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("selfcheck")
def test_xdist_groups_reach_the_scheduler(request) -> None:
    """`--dist loadgroup` keeps a module's expensive fixture on one worker only if xdist can tag the test's id
    with its group; pytest 9.2 computes ids in a way that xdist 3.8's tag no longer changes (pinned < 9.1)."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run by pytest-xdist with --dist loadgroup (scripts/test.sh runs it so)")
    assert request.node.nodeid.endswith("@selfcheck"), request.node.nodeid
