"""The test suite's own machinery: what keeps it inside CI's time."""

from __future__ import annotations

import warnings
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


@pytest.mark.slow
def test_a_cpu_left_held_in_the_shared_ray_is_reported_and_the_next_test_gets_a_fresh_ray(monkeypatch) -> None:
    """A test that leaves a CPU of the shared Ray held (a placement group here) would make a later test that
    needs it wait for its hang guard: a warning names the test and what holds the CPU, and the next test gets
    a fresh Ray with every CPU free."""
    from tests import conftest

    ray = conftest.ensure_ray("the test that leaks")
    group = ray.util.placement_group([{"CPU": 1}])
    ray.get(group.ready())
    before = ray.get_runtime_context().gcs_address
    monkeypatch.setattr(conftest, "SHARED_RAY_SETTLE_S", 0.5)
    with pytest.warns(UserWarning, match="left CPUs of the shared Ray held") as caught:
        conftest.ensure_ray("the next test")
    (message,) = [str(w.message) for w in caught if "left CPUs of the shared Ray held" in str(w.message)]
    assert message.startswith("the test that leaks left CPUs of the shared Ray held 0.5 s after it: "
                              f"{conftest.RAY_CPUS - 1:g} of {conftest.RAY_CPUS:g} CPUs free; placement group "
                              f"{group.id.hex()[:8]} CREATED [{{'CPU': 1.0}}]")  # fmt: skip
    assert message.endswith("; the shared Ray was shut down")
    assert ray.get_runtime_context().gcs_address != before
    assert ray.available_resources().get("CPU") == ray.cluster_resources().get("CPU") == conftest.RAY_CPUS
    after = ray.get_runtime_context().gcs_address
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conftest.release_if_held("the next test")  # every CPU free: no warning, and the Ray is kept
    assert ray.is_initialized() and ray.get_runtime_context().gcs_address == after
