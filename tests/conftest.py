"""Shared fixtures: a berthd per test (see ``daemon_fixture``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.daemon_fixture import Berthd, running_berthd


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
