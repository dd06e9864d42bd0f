"""``berth rename``: give a container a new name."""

from __future__ import annotations

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser
from berth.http.client import APIError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "CONTAINER NEW_NAME"
ALIASES = ("container rename", "rename")


def configure(p: Parser) -> None:
    p.positionals(2, 2)


def run(ctx: Context, args: Namespace) -> int:
    old, new = (a.strip() for a in args.args)
    if not old or not new:
        raise StatusError(1, "Error: Neither old nor new names may be empty")
    try:
        ctx.client.request("POST", f"/containers/{old}/rename", params={"name": new}).close()
    except APIError as e:
        raise StatusError(1, f"Error response from daemon: {e.message}\n"
                             f"Error: failed to rename container named {old}") from None
    return 0
