"""``berth run``: create, attach, wait, start — the docker CLI's sequence and exit codes.

Exit codes: the container's own, or 125 when the daemon refused, 126 when the command could
not be executed, 127 when it was not found.
"""

from __future__ import annotations

from berth.cli.commands import _attach, _container
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser
from berth.errors import BerthError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = _container.USAGE
ALIASES = ("container run", "run")


def configure(p: Parser) -> None:
    _container.configure(p, run=True)


def run(ctx: Context, args: Namespace) -> int:
    spec = _container.build_spec(args, ctx.verb, detach=args.detach,
                                 environ=ctx.environ)
    body = spec.body
    streams = _attach.Streams(body["AttachStdin"], body["AttachStdout"], body["AttachStderr"],
                              body["Tty"])
    if streams.stdin and streams.tty and not ctx.is_tty(ctx.stdin):
        raise StatusError(1, "the input device is not a TTY")
    if streams.tty and (size := _attach.terminal_size(ctx)) is not None:
        body["HostConfig"]["ConsoleSize"] = list(size)
    auto_remove = bool(body["HostConfig"]["AutoRemove"])
    client = ctx.client
    try:
        container_id = _container.create_container(ctx, spec, pull=args.pull, quiet=args.quiet)
    except BerthError as e:
        raise _container.run_error(e, ctx.verb) from None
    if args.cidfile:
        _container.write_cidfile(args.cidfile, container_id)

    hijacked = None
    if streams.any:
        try:
            hijacked = _attach.attach(client, container_id, streams, args.detach_keys)
        except BerthError as e:
            raise _container.run_error(e, ctx.verb) from None
    else:
        ctx.out(container_id)
    with _attach.Cleanup() as stack:
        if hijacked is not None:
            stack.callback(hijacked.close)
        try:
            pending = _attach.send_wait(client, container_id,
                                        "removed" if auto_remove else "next-exit")
        except BerthError as e:
            raise _container.run_error(e, ctx.verb) from None
        stack.callback(pending.close)
        # Raw before start, as docker: keys typed while it starts reach it unechoed.
        stack.enter_context(_attach.raw_terminal(ctx, streams.tty and streams.stdin))
        try:
            client.request("POST", f"/containers/{container_id}/start").close()
        except BerthError as e:
            if hijacked is not None:
                hijacked.close()
            if auto_remove:
                # Let the daemon finish removing it, so a failed --rm run leaves nothing behind.
                _attach.wait_status(ctx, pending, timeout=30)
            raise _container.run_error(e, ctx.verb) from None
        if hijacked is None:
            return 0
        if streams.tty:
            stack.enter_context(_attach.monitor_tty_size(
                client, ctx, f"/containers/{container_id}/resize"))
        stack.enter_context(_attach.signal_proxy(client, container_id,
                                                 args.sig_proxy and not streams.tty))
        try:
            _attach.stream(ctx, hijacked, streams, args.detach_keys)
        except _attach.Detached:
            return 0  # the container runs on; docker's run exits 0 after a detach
        return _attach.wait_status(ctx, pending)
