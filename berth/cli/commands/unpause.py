"""``berth unpause``: unpause all processes within one or more containers."""

from __future__ import annotations

from berth.cli.commands._each import post_each
from berth.cli.context import Context
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "CONTAINER [CONTAINER...]"
ALIASES = ("container unpause", "unpause")


def configure(p: Parser) -> None:
    p.positionals(1, None)


def run(ctx: Context, args: Namespace) -> int:
    return post_each(ctx, args.args, "unpause")
