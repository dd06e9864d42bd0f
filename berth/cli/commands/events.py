"""``berth events``: the daemon's event stream, as docker prints it or through a template."""

from __future__ import annotations

import datetime as dt
import json
import time

from berth.cli.commands.logs import api_timestamp, go_duration
from berth.cli.commands.ps import encode_filters, parse_filters
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser, append_list

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS]"
ALIASES = ("system events", "events")


def configure(p: Parser) -> None:
    append_list(p, "-f", "--filter", help="Filter output based on conditions provided")
    p.flag("--format", kind="string", help="Format output using a custom template")
    p.flag("--since", kind="string", help="Show all events created since timestamp")
    p.flag("--until", kind="string", help="Stream events until this timestamp")
    p.positionals(0, 0)


def event_time(event: dict[str, Any]) -> str:
    """Go's ``RFC3339NanoFixed`` in local time: nine fraction digits, ``Z`` for UTC."""
    nanos = int(event.get("timeNano") or 0) or int(event.get("time") or 0) * 1_000_000_000
    seconds, frac = divmod(nanos, 1_000_000_000)
    local = dt.datetime.fromtimestamp(seconds).astimezone()
    offset = local.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}" + zone


_ORDER = ("status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano")


def event_json(event: dict[str, Any]) -> str:
    """An event as docker prints ``events.Message``: Go's field order, sorted labels, and (unlike
    other ``--format json`` output) no escaping of ``<>&``."""
    ordered = {k: event[k] for k in _ORDER if k in event}
    ordered.update({k: v for k, v in event.items() if k not in ordered})
    actor = ordered.get("Actor")
    if isinstance(actor, dict) and isinstance(actor.get("Attributes"), dict):
        ordered["Actor"] = {**actor, "Attributes": dict(sorted(actor["Attributes"].items()))}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)  # no HTML escaping


def pretty(event: dict[str, Any]) -> str:
    """``TIME TYPE ACTION ID (k=v, ...)`` as docker's ``prettyPrintEvent``."""
    actor = event.get("Actor") or {}
    line = ""
    if event.get("timeNano") or event.get("time"):
        line = event_time(event) + " "
    line += f"{event.get('Type') or ''} {event.get('Action') or ''} {actor.get('ID') or ''}"
    attributes = actor.get("Attributes") or {}
    if attributes:
        line += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return line


def _timestamp(value: str | None, now: float, flag: str) -> str | None:
    """As docker: a duration back from now in whole seconds, else ``api_timestamp``'s rules."""
    if value and value != "0" and go_duration(value) is not None:
        return str(int(now - (go_duration(value) or 0)))
    return api_timestamp(value, now, flag)


def run(ctx: Context, args: Namespace) -> int:
    from berth.cli.template import TemplateError, render_template
    from berth.http.frames import iter_json_messages

    filters = parse_filters(args.filter)
    now = time.time()
    params = {
        "since": _timestamp(args.since, now, "since"),
        "until": _timestamp(args.until, now, "until"),
        "filters": encode_filters(filters),
    }
    fmt = args.format
    with ctx.client.request("GET", "/events", params=params) as response:
        for event in iter_json_messages(response.iter_chunks(), check=False):
            if not isinstance(event, dict):
                continue
            if fmt == "json" or (fmt and fmt.strip() == "{{json .}}"):
                ctx.out(event_json(event))
            elif fmt:
                try:
                    ctx.out(render_template(fmt, event))
                except TemplateError as e:
                    raise StatusError(1, f"template parsing error: {e}") from None
            else:
                ctx.out(pretty(event))
    return 0
