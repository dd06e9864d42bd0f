"""``berth restart``: stop (with the timeout) and start containers again."""

from __future__ import annotations

from berth.cli.commands._each import post_each
from berth.cli.commands.stop import configure as configure  # stop's flags, word for word
from berth.cli.context import Context

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER [CONTAINER...]"
ALIASES = ("container restart", "restart")


def run(ctx: Context, args: Namespace) -> int:
    return post_each(ctx, args.args, "restart", {"t": args.timeout, "signal": args.signal})
