"""``berth attach``: our terminal's streams joined to a running container's."""

from __future__ import annotations

import contextlib

from berth.cli.commands import _attach
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser
from berth.errors import BerthError
from berth.http.client import Client

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER"
ALIASES = ("container attach", "attach")


def configure(p: Parser) -> None:
    p.flag("--detach-keys", dest="detach_keys", kind="string",
           help="Override the key sequence for detaching a container")
    p.flag("--no-stdin", dest="no_stdin", action="store_true", help="Do not attach STDIN")
    p.flag("--sig-proxy", dest="sig_proxy", action="store_true", default=True,
           help="Proxy all received signals to the process (default true)")
    p.positionals(1, 1)


def _running(client: Client, name: str) -> dict[str, Any]:
    """Inspect, refusing as docker does a container that cannot be attached to."""
    info: dict[str, Any] = client.get_json(f"/containers/{name}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        raise StatusError(1, "You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise StatusError(1, "You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise StatusError(1, "You cannot attach to a restarting container, wait until it is "
                             "running")
    return info


def run(ctx: Context, args: Namespace) -> int:
    client = ctx.client
    name = args.args[0]
    with contextlib.ExitStack() as stack:
        # Waiting first, as docker does, so an exit while we attach is not missed.
        pending = _attach.send_wait(client, name, None)
        stack.callback(pending.close)
        info = _running(client, name)
        config = info.get("Config") or {}
        tty = bool(config.get("Tty"))
        if not args.no_stdin and tty and not ctx.is_tty(ctx.stdin):
            raise StatusError(1, "the input device is not a TTY")
        streams = _attach.Streams(stdin=not args.no_stdin and bool(config.get("OpenStdin")),
                                  stdout=True, stderr=True, tty=tty)
        # The name as given throughout, as docker's CLI does.
        stack.enter_context(_attach.signal_proxy(client, name, args.sig_proxy and not tty))
        hijacked = stack.enter_context(_attach.attach(client, name, streams, args.detach_keys))
        _running(client, name)  # it may have stopped meanwhile: do not hang
        if tty and (size := _attach.terminal_size(ctx)) is not None:
            # One row and column more, then the real size: the shell gets a SIGWINCH and
            # redraws its prompt, which it would not for a second attach at the same size.
            with contextlib.suppress(BerthError):
                client.request("POST", f"/containers/{name}/resize",
                               params={"h": size[0] + 1, "w": size[1] + 1}).close()
            stack.enter_context(_attach.monitor_tty_size(
                client, ctx, f"/containers/{name}/resize"))
        try:
            _attach.stream(ctx, hijacked, streams, args.detach_keys)
        except _attach.Detached:
            raise StatusError(1, "read escape sequence") from None
        return _attach.wait_status(ctx, pending)
