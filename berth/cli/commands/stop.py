"""``berth stop``: stop running containers (SIGTERM, then SIGKILL after the timeout)."""

from __future__ import annotations

from berth.cli.commands._each import post_each
from berth.cli.context import Context
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER [CONTAINER...]"
ALIASES = ("container stop", "stop")


def configure(p: Parser) -> None:
    p.flag("-s", "--signal", kind="string", help="Signal to send to the container")
    p.flag("-t", "--timeout", "--time", dest="timeout", kind="int", type=int,
           help="Seconds to wait before killing the container")
    p.positionals(1, None)


def run(ctx: Context, args: Namespace) -> int:
    return post_each(ctx, args.args, "stop", {"t": args.timeout, "signal": args.signal})
