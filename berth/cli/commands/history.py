"""``berth history``: an image's layers, newest first, as ``docker history`` shows them."""

from __future__ import annotations

import time

from berth import API_VERSION
from berth.cli import render
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] IMAGE"
ALIASES = ("image history", "history")
HEADER = ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")


def configure(p: Parser) -> None:
    p.flag("--format", kind="string", help="Format output using a custom template")
    p.flag("-H", "--human", action="store_true", default=True,
           help="Print sizes and dates in human readable format (default true)")
    p.flag("--no-trunc", dest="no_trunc", action="store_true", help="Don't truncate output")
    p.flag("--platform", kind="string",
           help='Show history for the given platform. Formatted as "os[/arch[/variant]]" '
                '(e.g., "linux/amd64")')
    p.flag("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.positionals(1, 1)


def run(ctx: Context, args: Namespace) -> int:
    if args.platform:  # as docker 28 answers an API 1.44 daemon
        raise StatusError(1, '"--platform" requires API version 1.48, but the berth daemon '
                             f"API version is {API_VERSION}")
    params = None
    entries = ctx.client.get_json(f"/images/{args.args[0]}/history", params) or []
    trunc = not args.no_trunc

    def ident(entry: dict[str, object]) -> str:
        value = str(entry.get("Id") or "")
        return value.split(":", 1)[-1][:12] if trunc and value != "<missing>" else value

    if args.quiet:
        for entry in entries:
            ctx.out(ident(entry))
        return 0
    now = time.time()
    if args.format:
        items = [_fields(entry, ident(entry), trunc, args.human, now) for entry in entries]
        ctx.out(render.format_items(args.format, items, FORMAT_HEADERS, DEFAULT_FORMAT), end="")
        return 0
    rows = []
    for entry in entries:
        created_by = str(entry.get("CreatedBy") or "").replace("\t", " ")
        if trunc:
            created_by = render.ellipsis(created_by, 45)
        size = int(entry.get("Size") or 0)  # type: ignore[call-overload]
        created = entry.get("Created")
        if args.human:
            when = render.since(created, now)  # type: ignore[arg-type]
            size_text = render.human_size(size)
        else:
            stamp = render.parse_timestamp(created)  # type: ignore[arg-type]
            when = _rfc3339(stamp) if stamp is not None else ""
            size_text = str(size)
        rows.append((ident(entry), when, created_by, size_text, str(entry.get("Comment") or "")))
    header = HEADER if args.human else ("IMAGE", "CREATED AT") + HEADER[2:]
    ctx.out(render.table(header, rows), end="")
    return 0


DEFAULT_FORMAT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
FORMAT_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                  "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


def _fields(entry: dict[str, Any], ident: str, trunc: bool, human: bool,
            now: float) -> dict[str, str]:
    created_by = str(entry.get("CreatedBy") or "").replace("\t", " ")
    if trunc:
        created_by = render.ellipsis(created_by, 45)
    stamp = render.parse_timestamp(entry.get("Created"))
    size = int(entry.get("Size") or 0)
    return {"ID": ident,
            "CreatedSince": render.since(entry.get("Created"), now) if human else
            (_rfc3339(stamp) if stamp is not None else ""),
            "CreatedAt": _rfc3339(stamp) if stamp is not None else "",
            "CreatedBy": created_by, "Size": render.human_size(size) if human else str(size),
            "Comment": str(entry.get("Comment") or "")}


def _rfc3339(stamp: float) -> str:
    """Go's ``time.RFC3339`` in local time: ``Z`` for UTC, else ``+hh:mm``."""
    import datetime as dt

    local = dt.datetime.fromtimestamp(int(stamp)).astimezone()
    offset = local.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + zone
