"""``berth kill``: send a signal (SIGKILL by default) to running containers."""

from __future__ import annotations

from berth.cli.commands._each import post_each
from berth.cli.context import Context
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER [CONTAINER...]"
ALIASES = ("container kill", "kill")


def configure(p: Parser) -> None:
    p.flag("-s", "--signal", kind="string", help="Signal to send to the container")
    p.positionals(1, None)


def run(ctx: Context, args: Namespace) -> int:
    return post_each(ctx, args.args, "kill", {"signal": args.signal or None})
