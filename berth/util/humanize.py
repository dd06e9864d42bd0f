"""Durations and sizes in the words Docker prints them, shared by the daemon and the CLI.

The daemon needs them for the ``Status`` column of ``/containers/json`` ("Up 2 seconds"), the
CLI for its tables ("3 minutes ago", "4.26MB"): one definition keeps both in step with Docker
(go-units). Stdlib only and cheap to import: the CLI's start-up pays for it.
"""

from __future__ import annotations

import math

__all__ = ["bytes_size", "human_duration", "human_size"]

_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``: "Less than a second", "About a minute", "3 hours", "2 weeks".

    Seconds and minutes truncate; hours round half away from zero, as Go's Duration.Round does.
    """
    if seconds < 1:
        return "Less than a second"
    s = int(seconds)
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = math.floor(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def human_size(size: float, precision: int = 3) -> str:
    """go-units ``HumanSizeWithPrecision``: decimal units, ``precision`` significant digits.

    docker's tables use 3 (``4.26MB``); ``HumanSize`` elsewhere uses 4.
    """
    value = float(size)
    i = 0
    while value >= 1000 and i < len(_SIZE_UNITS) - 1:
        value /= 1000
        i += 1
    return f"{_go_g(value, precision)}{_SIZE_UNITS[i]}"


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units, four significant digits (``7.668GiB``), as
    ``docker stats`` and ``docker info`` print memory."""
    value = float(size)
    i = 0
    while value >= 1024 and i < len(_BINARY_UNITS) - 1:
        value /= 1024
        i += 1
    return f"{value:.4g}{_BINARY_UNITS[i]}"


def _go_g(value: float, precision: int) -> str:
    """Go's ``%.Ng``: like C's, but the exponent has at least two digits (``1e+03``)."""
    text = f"{value:.{precision}g}"
    if "e" in text:
        mant, _, exp = text.partition("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        text = f"{mant}e{sign}{digits.zfill(2)}"
    return text
