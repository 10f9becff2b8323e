"""The test suite's own machinery: what keeps it inside CI's time."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.xdist_group("selfcheck")
def test_xdist_groups_reach_the_scheduler(request) -> None:
    """`--dist loadgroup` keeps a module's expensive fixture on one worker only if xdist can tag the test's id
    with its group; pytest 9.2 computes ids in a way that xdist 3.8's tag no longer changes (pinned < 9.1)."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run by pytest-xdist with --dist loadgroup (scripts/test.sh runs it so)")
    assert request.node.nodeid.endswith("@selfcheck"), request.node.nodeid


def test_every_test_the_readme_names_exists() -> None:
    """The Guarantees table names the test that proves each row: a renamed or deleted test fails here."""
    import re

    root = Path(__file__).resolve().parents[1]
    named = re.findall(r"`(test_\w+\.py)::(test_\w+)`", (root / "README.md").read_text())
    assert len(named) >= 9, named
    for module, test in named:
        assert f"def {test}(" in (root / "tests" / module).read_text(), f"README names {module}::{test}"
