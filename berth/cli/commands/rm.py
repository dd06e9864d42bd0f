"""``berth rm``: remove containers."""

from __future__ import annotations

from berth.cli.commands._each import for_each
from berth.cli.context import Context
from berth.cli.parser import Parser
from berth.http.client import APIError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER [CONTAINER...]"
ALIASES = ("container rm", "container remove", "rm")


def configure(p: Parser) -> None:
    p.flag("-f", "--force", action="store_true",
           help="Force the removal of a running container (uses SIGKILL)")
    p.flag("-l", "--link", action="store_true", help="Remove the specified link")
    p.flag("-v", "--volumes", action="store_true",
           help="Remove anonymous volumes associated with the container")
    p.positionals(1, None)


def run(ctx: Context, args: Namespace) -> int:
    params = {"force": args.force or None, "v": args.volumes or None, "link": args.link or None}

    def remove(name: str) -> None:
        ctx.client.request("DELETE", f"/containers/{name.strip('/')}", params=params).close()

    # With -f a container that is already gone is reported but not a failure (docker's way).
    return for_each(ctx, args.args, remove,
                    forgive=lambda e: args.force and isinstance(e, APIError) and e.is_not_found)
