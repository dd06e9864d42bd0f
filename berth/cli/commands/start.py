"""``berth start``: start stopped containers; with ``-a`` attach to one and exit with its code."""

from __future__ import annotations

import contextlib

from berth.cli.commands import _attach
from berth.cli.commands._each import for_each
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER [CONTAINER...]"
ALIASES = ("container start", "start")


def configure(p: Parser) -> None:
    p.flag("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.flag("--detach-keys", dest="detach_keys", kind="string",
           help="Override the key sequence for detaching a container")
    p.flag("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.positionals(1, None)


def run(ctx: Context, args: Namespace) -> int:
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
    with contextlib.ExitStack() as stack:
        stack.enter_context(_attach.signal_proxy(client, container_id, not streams.tty))
        hijacked = stack.enter_context(_attach.attach(client, container_id, streams,
                                                      args.detach_keys))
        pending = _attach.send_wait(client, container_id,
                                    "removed" if auto_remove else "next-exit")
        stack.callback(pending.close)
        stack.enter_context(_attach.raw_terminal(ctx, streams.tty and streams.stdin))
        try:
            client.request("POST", f"/containers/{container_id}/start").close()
        except Exception:
            hijacked.close()
            if auto_remove:
                _attach.wait_status(ctx, pending, timeout=30)
            raise
        if streams.tty:
            stack.enter_context(_attach.monitor_tty_size(
                client, ctx, f"/containers/{container_id}/resize"))
        try:
            _attach.stream(ctx, hijacked, streams, args.detach_keys)
        except _attach.Detached:
            return 0
        return _attach.wait_status(ctx, pending)
