"""Output the way the docker CLI prints it: tables, humanised durations and sizes, quoting.

Scripts parse ``docker ps`` output and tests compare it byte for byte, so the rules here are
docker's (go-units for durations and sizes, text/tabwriter for tables), re-stated from their
documented behaviour.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Sequence

__all__ = [
    "ellipsis",
    "go_quote",
    "human_duration",
    "human_size",
    "parse_timestamp",
    "since",
    "table",
]

_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


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


def _go_g(value: float, precision: int) -> str:
    """Go's ``%.Ng``: like C's, but the exponent has at least two digits (``1e+03``)."""
    text = f"{value:.{precision}g}"
    if "e" in text:
        mant, _, exp = text.partition("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        text = f"{mant}e{sign}{digits.zfill(2)}"
    return text


def parse_timestamp(value: str | int | float | None) -> float | None:
    """Seconds since the epoch from a Unix time or an RFC 3339 string (nanoseconds allowed)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    if text.startswith("0001-01-01"):
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, dot, rest = text.partition(".")
    if dot:
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        frac = float("0." + digits) if digits else 0.0
        text = main + rest
    else:
        frac = 0.0
    try:
        stamp = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.UTC)
    return stamp.timestamp() + frac


def since(value: str | int | float | None, now: float) -> str:
    """``"3 seconds ago"`` for the CREATED columns."""
    stamp = parse_timestamp(value)
    if stamp is None:
        return ""
    return human_duration(max(0.0, now - stamp)) + " ago"


def ellipsis(text: str, width: int) -> str:
    """Shorten to ``width`` characters, the last being ``…`` (docker's ``formatter.Ellipsis``)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return text[0]
    return text[:width - 1] + "…"


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: double quotes, backslash escapes, ``\\u`` for unprintables."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch in "\a\b\f\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, minwidth: int = 10,
          padding: int = 3) -> str:
    """Columns as Go's tabwriter lays out docker's tables (min width 10, 3-space gutters).

    Every cell but the last of a row is padded to its column's width; the last is left as is.
    """
    all_rows = [list(header)] + [list(r) for r in rows]
    ncols = max(len(r) for r in all_rows)
    widths = [0] * ncols
    for row in all_rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    lines = []
    for row in all_rows:
        parts = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        parts.append(row[-1] if row else "")
        lines.append("".join(parts))
    return "\n".join(lines) + "\n"
