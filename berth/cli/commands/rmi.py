"""``berth rmi``: untag and delete images."""

from __future__ import annotations

from berth.cli.commands._each import error_text
from berth.cli.context import Context
from berth.cli.parser import Parser
from berth.errors import BerthError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] IMAGE [IMAGE...]"
ALIASES = ("image rm", "image remove", "rmi")


def configure(p: Parser) -> None:
    p.flag("-f", "--force", action="store_true", help="Force removal of the image")
    p.flag("--no-prune", dest="no_prune", action="store_true",
           help="Do not delete untagged parents")
    p.positionals(1, None)


def run(ctx: Context, args: Namespace) -> int:
    params = {"force": args.force or None, "noprune": args.no_prune or None}
    errors: list[str] = []
    for name in args.args:
        try:
            with ctx.client.request("DELETE", f"/images/{name}", params=params) as r:
                items = r.json() or []
        except BerthError as e:
            errors.append(error_text(e))
            continue
        for item in items:
            if item.get("Untagged"):
                ctx.out(f"Untagged: {item['Untagged']}")
            if item.get("Deleted"):
                ctx.out(f"Deleted: {item['Deleted']}")
    if errors:
        ctx.err("\n".join(errors))
        return 1
    return 0
