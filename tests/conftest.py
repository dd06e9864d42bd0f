"""Shared fixtures: a berthd per test (see ``daemon_fixture``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.daemon_fixture import Berthd, remove_empty_cgroup_parents, running_berthd


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def berthd() -> Iterator[Berthd]:
    """A daemon of its own, with the busybox image loaded."""
    with running_berthd() as daemon:
        yield daemon


@pytest.fixture(autouse=True, scope="session")
def _cgroup_parents_removed() -> Iterator[None]:
    """Shared parents (``berth``, ``berth-runtime``) stay while the engine runs, as runc
    leaves them; the suite removes them once it is done, leaving the machine as it found it."""
    yield
    remove_empty_cgroup_parents()
