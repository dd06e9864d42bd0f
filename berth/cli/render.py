"""Output the way the docker CLI prints it: tables, humanised durations and sizes, quoting.

Scripts parse ``docker ps`` output and tests compare it byte for byte, so the rules here are
docker's (go-units for durations and sizes, text/tabwriter for tables), re-stated from their
documented behaviour.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any

from berth.util.humanize import human_duration, human_size

__all__ = [
    "ellipsis",
    "go_quote",
    "human_duration",
    "human_size",
    "parse_timestamp",
    "since",
    "table",
]

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


def go_json(value: object) -> str:
    """JSON as Go's ``json.Marshal`` writes it: compact, sorted keys, ``<>&`` escaped."""
    import json

    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def format_items(fmt: str | None, items: Sequence[dict[str, Any]], headers: dict[str, str],
                 default: str) -> str:
    """Docker's ``--format`` for list commands: ``table [TEMPLATE]``, ``json`` or a template.

    ``items`` are the rows as the template sees them (field → text); ``headers`` names each
    field's column; ``default`` is the table template used when no format is given.
    """

    from berth.cli.template import render_template

    fmt = fmt or default
    if fmt == "table":
        fmt = default
    if fmt == "json":
        return "".join(go_json(item) + "\n" for item in items)
    if fmt.startswith("table"):
        body = fmt[len("table"):].lstrip()
        body = body.replace("\\t", "\t")
        header = render_template(body, headers).split("\t")
        rows = [render_template(body, item).split("\t") for item in items]
        return table(header, rows)
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    return "".join(render_template(fmt, item) + "\n" for item in items)


def indent_json(raw: str, indent: str = "    ") -> str:
    """Go's ``json.Indent``: new whitespace around the tokens, string literals kept verbatim.

    docker's ``inspect`` prints what the daemon sent this way, so escapes (or their absence)
    in strings survive as they came.
    """
    out: list[str] = []
    depth = 0
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == '"':
            j = i + 1
            while j < n and raw[j] != '"':
                j += 2 if raw[j] == "\\" else 1
            out.append(raw[i:j + 1])
            i = j + 1
            continue
        if ch in " \t\r\n":
            i += 1
            continue
        if ch in "{[":
            k = i + 1
            while k < n and raw[k] in " \t\r\n":
                k += 1
            if k < n and raw[k] == ("}" if ch == "{" else "]"):
                out.append(ch + raw[k])  # empty: stays "{}" / "[]"
                i = k + 1
                continue
            depth += 1
            out.append(ch + "\n" + indent * depth)
        elif ch in "}]":
            depth -= 1
            out.append("\n" + indent * depth + ch)
        elif ch == ",":
            out.append(",\n" + indent * depth)
        elif ch == ":":
            out.append(": ")
        else:
            out.append(ch)
        i += 1
    return "".join(out)
