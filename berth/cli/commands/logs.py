"""``berth logs``: a container's output, demultiplexed unless it has a TTY."""

from __future__ import annotations

import argparse

from berth.cli.context import Context
from berth.cli.parser import Parser
from berth.cli.streams import copy_output

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


def run(ctx: Context, args: argparse.Namespace) -> int:
    name = args.args[0]
    client = ctx.client
    # The stream format depends on the container: raw with a TTY, multiplexed without.
    info = client.get_json(f"/containers/{name}/json")
    tty = bool((info.get("Config") or {}).get("Tty"))
    params = {
        "stdout": True, "stderr": True, "follow": args.follow or None,
        "tail": args.tail, "timestamps": args.timestamps or None,
        "details": args.details or None, "since": args.since, "until": args.until,
    }
    with client.request("GET", f"/containers/{info.get('Id') or name}/logs",
                        params=params) as response:
        system_error = copy_output(response.iter_chunks(), ctx.stdout, ctx.stderr, tty)
    if system_error:
        ctx.err(f"Error response from daemon: {system_error}")
        return 1
    return 0
