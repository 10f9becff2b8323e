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


def test_a_cpu_left_held_in_the_shared_ray_is_reported_and_the_next_test_gets_a_fresh_ray(monkeypatch) -> None:
    """A test that leaves a CPU of the shared Ray held (an actor here) would make a later test that needs it
    wait for its hang guard: the next test asking for the Ray gets a warning naming the test before and what
    holds the CPU, and a fresh Ray with every CPU free."""
    from tests import conftest

    ray = conftest.ensure_ray("the test that leaks")
    holder = ray.remote(num_cpus=1)(_Holder).remote()
    ray.get(holder.ready.remote())
    before = ray.get_runtime_context().gcs_address
    monkeypatch.setattr(conftest, "SHARED_RAY_SETTLE_S", 0.5)
    with pytest.warns(UserWarning) as caught:
        conftest.ensure_ray("the next test")
    (warning,) = caught
    message = str(warning.message)
    assert message.startswith("the shared Ray kept CPUs held 0.5 s after the test that leaks (the last test that ")
    assert f"{conftest.RAY_CPUS - 1:g} of {conftest.RAY_CPUS:g} CPUs free; " in message
    assert "actor _Holder (pid " in message and message.endswith("; a fresh Ray was started for the next test")
    assert ray.get_runtime_context().gcs_address != before
    assert ray.available_resources().get("CPU") == ray.cluster_resources().get("CPU") == conftest.RAY_CPUS


class _Holder:
    def ready(self) -> bool:
        return True
