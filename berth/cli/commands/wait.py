"""``berth wait``: block until containers stop, print each exit code."""

from __future__ import annotations

from berth.cli.commands._each import for_each
from berth.cli.context import Context
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "CONTAINER [CONTAINER...]"
ALIASES = ("container wait", "wait")


def configure(p: Parser) -> None:
    p.positionals(1, None)


def run(ctx: Context, args: Namespace) -> int:
    def wait(name: str) -> str:
        result = ctx.client.post_json(f"/containers/{name}/wait") or {}
        error = result.get("Error")
        if error and error.get("Message"):
            from berth.errors import BerthError

            raise BerthError(error["Message"])
        return str(result.get("StatusCode", 0))

    return for_each(ctx, args.args, wait)
