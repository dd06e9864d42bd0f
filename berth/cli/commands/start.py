"""``berth start``: start stopped containers; with ``-a`` attach to one and exit with its code."""

from __future__ import annotations

import argparse

from berth.cli.commands import _attach
from berth.cli.commands._each import for_each
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser

USAGE = "[OPTIONS] CONTAINER [CONTAINER...]"
ALIASES = ("container start", "start")


def configure(p: Parser) -> None:
    p.flag("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.flag("--detach-keys", dest="detach_keys", kind="string",
           help="Override the key sequence for detaching a container")
    p.flag("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.positionals(1, None)


def run(ctx: Context, args: argparse.Namespace) -> int:
    client = ctx.client
    if not (args.attach or args.interactive):
        def start(name: str) -> None:
            client.request("POST", f"/containers/{name}/start").close()

        return for_each(ctx, args.args, start)
    if len(args.args) > 1:
        raise StatusError(1, "you cannot start and attach multiple containers at once")
    info = client.get_json(f"/containers/{args.args[0]}/json")
    container_id = info["Id"]
    config = info.get("Config") or {}
    # Output is attached even for a bare -i, as docker does.
    streams = _attach.Streams(stdin=bool(args.interactive and config.get("OpenStdin")),
                              stdout=True, stderr=True, tty=bool(config.get("Tty")))
    if streams.stdin and streams.tty and not ctx.is_tty(ctx.stdin):
        raise StatusError(1, "the input device is not a TTY")
    auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
    hijacked = _attach.attach(client, container_id, streams)
    try:
        pending = _attach.send_wait(client, container_id, auto_remove)
        try:
            client.request("POST", f"/containers/{container_id}/start").close()
            if streams.tty:
                _attach.resize(client, ctx, container_id)
            with _attach.signal_proxy(client, container_id, not streams.tty):
                _attach.stream_until_done(ctx, hijacked, streams)
                return _attach.wait_status(ctx, pending)
        finally:
            pending.close()
    finally:
        hijacked.close()
