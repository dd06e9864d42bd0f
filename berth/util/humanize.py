"""Durations and sizes in the words Docker prints them, shared by the daemon and the CLI.

The daemon needs them for the ``Status`` column of ``/containers/json`` ("Up 2 seconds"), the
CLI for its tables ("3 minutes ago", "4.26MB"): one definition keeps both in step with Docker.
"""

from __future__ import annotations

__all__ = ["human_duration", "human_size"]


def human_duration(seconds: float) -> str:
    """Docker's (go-units) HumanDuration: coarse, friendly, never negative."""
    s = max(0, int(seconds))
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
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
    return f"{hours // 24 // 365} years"


def human_size(size: float, precision: int = 4) -> str:
    """Docker's (go-units) HumanSizeWithPrecision: decimal units; the CLI's tables use 3."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    value = float(size)
    i = 0
    while value >= 1000 and i < len(units) - 1:
        value /= 1000
        i += 1
    text = f"{value:.{precision}g}"
    return f"{text}{units[i]}"
