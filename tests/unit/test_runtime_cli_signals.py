"""berth-runtime's signal names, read without the signal module's enums."""

from __future__ import annotations

import signal

import pytest

from berth.errors import InvalidArgument
from berth.runtime.cli import parse_signal


@pytest.mark.parametrize(("text", "number"), [
    ("9", 9), ("KILL", signal.SIGKILL), ("SIGKILL", signal.SIGKILL), ("term", signal.SIGTERM),
    ("SIGRTMIN", signal.SIGRTMIN), ("usr1", signal.SIGUSR1),
])
def test_signal_names(text: str, number: int) -> None:
    assert parse_signal(text) == int(number)


@pytest.mark.parametrize("text", ["BOGUS", "SIG_DFL", "_DFL", "", "SIGKILL2"])
def test_unknown_signals(text: str) -> None:
    with pytest.raises(InvalidArgument, match="unknown signal"):
        parse_signal(text)
