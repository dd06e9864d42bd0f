"""``berth logs``: a container's output, demultiplexed unless it has a TTY."""

from __future__ import annotations

import re
import time

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser
from berth.cli.streams import copy_output

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER"
ALIASES = ("container logs", "logs")


def configure(p: Parser) -> None:
    p.flag("--details", action="store_true", help="Show extra details provided to logs")
    p.flag("-f", "--follow", action="store_true", help="Follow log output")
    p.flag("--since", kind="string",
           help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative '
                '(e.g. "42m" for 42 minutes)')
    p.flag("-n", "--tail", kind="string", default="all",
           help="Number of lines to show from the end of the logs")
    p.flag("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.flag("--until", kind="string",
           help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative '
                '(e.g. "42m" for 42 minutes)')
    p.positionals(1, 1)


def run(ctx: Context, args: Namespace) -> int:
    name = args.args[0]
    client = ctx.client
    # The stream format depends on the container: raw with a TTY, multiplexed without.
    info = client.get_json(f"/containers/{name}/json")
    tty = bool((info.get("Config") or {}).get("Tty"))
    now = time.time()
    params = {
        "stdout": True, "stderr": True, "follow": args.follow or None,
        "tail": args.tail, "timestamps": args.timestamps or None,
        "details": args.details or None,
        "since": api_timestamp(args.since, now, "since"),
        "until": api_timestamp(args.until, now, "until"),
    }
    with client.request("GET", f"/containers/{info.get('Id') or name}/logs",
                        params=params) as response:
        system_error = copy_output(response.iter_chunks(), ctx.stdout, ctx.stderr, tty)
    if system_error:
        ctx.err(f"Error response from daemon: {system_error}")
        return 1
    return 0


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float | None:
    """Seconds in a Go duration (``42m``, ``1h30m``, ``1.5s``), or None if it is not one."""
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if text else None


def api_timestamp(value: str | None, now: float, flag: str) -> str | None:
    """``--since``/``--until`` as the API takes them: Unix seconds, as docker's CLI converts.

    A Go duration counts back from now; a Unix timestamp passes through; RFC 3339 and plain
    dates are converted.
    """
    if not value:
        return None
    duration = go_duration(value)
    if duration is not None:
        return f"{now - duration:.9f}"
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return value
    from berth.cli.render import parse_timestamp

    stamp = parse_timestamp(value)
    if stamp is None:
        raise StatusError(1, f'invalid value for "{flag}": failed to parse value as time or '
                             f'duration: "{value}"')
    return f"{stamp:.9f}"
