"""``berth export``: a container's filesystem as a tar archive, to a file or stdout."""

from __future__ import annotations

from berth.cli.commands.save import write_stream
from berth.cli.context import Context
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER"
ALIASES = ("container export", "export")


def configure(p: Parser) -> None:
    p.flag("-o", "--output", kind="string", help="Write to a file, instead of STDOUT")
    p.positionals(1, 1)


def run(ctx: Context, args: Namespace) -> int:
    write_stream(ctx, args.output, "GET", f"/containers/{args.args[0]}/export", None)
    return 0
