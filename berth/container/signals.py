"""Signal names as Docker accepts them: ``SIGTERM``, ``TERM``, ``term`` or ``15``."""

from __future__ import annotations

import signal

from berth.errors import InvalidArgument

__all__ = ["parse_signal"]


def parse_signal(value: str | int | None, default: int = signal.SIGTERM) -> int:
    if value is None or value == "":
        return int(default)
    if isinstance(value, int):
        number = value
    elif value.isdigit():
        number = int(value)
    else:
        name = value.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        try:
            number = int(signal.Signals[name])
        except KeyError:
            raise InvalidArgument(f"Invalid signal: {value}") from None
    if not 0 < number < 65:
        raise InvalidArgument(f"Invalid signal: {value}")
    return number
