"""berthd's own flag: how many containers one monitor process serves."""

from __future__ import annotations

import pytest

from berth.daemon.main import parse_args


def test_containers_per_monitor_defaults_to_the_launchers_choice() -> None:
    assert parse_args([]).containers_per_monitor is None
    assert parse_args(["--containers-per-monitor", "1"]).containers_per_monitor == 1


@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_containers_per_monitor_must_be_a_positive_count(value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(["--containers-per-monitor", value])
    assert exc.value.code == 2
