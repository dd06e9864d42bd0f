"""``berth rename``: give a container a new name."""

from __future__ import annotations

import argparse

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser

USAGE = "CONTAINER NEW_NAME"
ALIASES = ("container rename", "rename")


def configure(p: Parser) -> None:
    p.positionals(2, 2)


def run(ctx: Context, args: argparse.Namespace) -> int:
    old, new = (a.strip() for a in args.args)
    if not old or not new:
        raise StatusError(1, "Error: Neither old nor new names may be empty")
    ctx.client.request("POST", f"/containers/{old}/rename", params={"name": new}).close()
    return 0
