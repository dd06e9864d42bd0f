"""``berth diff``: what changed in a container's filesystem (A added, C changed, D deleted)."""

from __future__ import annotations

from berth.cli.context import Context
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "CONTAINER"
ALIASES = ("container diff", "diff")
_KINDS = {0: "C", 1: "A", 2: "D"}


def configure(p: Parser) -> None:
    p.positionals(1, 1)


def run(ctx: Context, args: Namespace) -> int:
    changes = ctx.client.get_json(f"/containers/{args.args[0]}/changes") or []
    for change in changes:
        ctx.out(f"{_KINDS.get(int(change.get('Kind') or 0), '?')} {change.get('Path')}")
    return 0
