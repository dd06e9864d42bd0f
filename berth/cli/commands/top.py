"""``berth top``: the processes of a container, as its ``ps`` shows them."""

from __future__ import annotations

from berth.cli import render
from berth.cli.context import Context
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "CONTAINER [ps OPTIONS]"
ALIASES = ("container top", "top")


def configure(p: Parser) -> None:
    p.command_positionals(minimum=1, first="container")


def run(ctx: Context, args: Namespace) -> int:
    params = {"ps_args": " ".join(args.command) if args.command else None}
    result = ctx.client.get_json(f"/containers/{args.container}/top", params) or {}
    titles = [str(t) for t in result.get("Titles") or []]
    processes = [[str(c) for c in row] for row in result.get("Processes") or []]
    if titles:
        ctx.out(render.table(titles, processes, minwidth=20), end="")
    return 0
