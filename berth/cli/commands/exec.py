"""``berth exec``: run a command in a running container, docker's create → start → inspect.

The exit code is the command's, read from ``GET /exec/{id}/json`` once its output has ended.
"""

from __future__ import annotations

import contextlib

from berth.cli.commands import _attach
from berth.cli.context import Context, StatusError
from berth.cli.options import OptionError, env_entry, read_env_files
from berth.cli.parser import Parser, append_list
from berth.http.client import DaemonUnavailable

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER COMMAND [ARG...]"
ALIASES = ("container exec", "exec")


def configure(p: Parser) -> None:
    p.flag("-d", "--detach", action="store_true",
           help="Detached mode: run command in the background")
    p.flag("--detach-keys", dest="detach_keys", kind="string",
           help="Override the key sequence for detaching a container")
    append_list(p, "-e", "--env", help="Set environment variables")
    append_list(p, "--env-file", dest="env_file", help="Read in a file of environment variables")
    p.flag("-i", "--interactive", action="store_true",
           help="Keep STDIN open even if not attached")
    p.flag("--privileged", action="store_true", help="Give extended privileges to the command")
    p.flag("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.flag("-u", "--user", kind="string",
           help='Username or UID (format: "<name|uid>[:<group|gid>]")')
    p.flag("-w", "--workdir", kind="string", help="Working directory inside the container")
    p.command_positionals(minimum=2, first="container")


def run(ctx: Context, args: Namespace) -> int:
    client = ctx.client
    tty, interactive, detach = bool(args.tty), bool(args.interactive), bool(args.detach)
    try:
        env = read_env_files(args.env_file, ctx.environ) + [env_entry(e, ctx.environ)
                                                              for e in args.env]
    except OptionError as e:
        raise e.status(ctx.verb, USAGE) from None
    client.get_json(f"/containers/{args.container}/json")  # a clear "No such container"
    if interactive and tty and not detach and not ctx.is_tty(ctx.stdin):
        raise StatusError(1, "the input device is not a TTY")
    size = list(_attach.terminal_size(ctx) or (0, 0))
    config: dict[str, Any] = {
        "User": args.user or "", "Privileged": bool(args.privileged), "Tty": tty,
        **({"ConsoleSize": size} if tty else {}),
        "AttachStdin": interactive and not detach,
        "AttachStderr": not detach, "AttachStdout": not detach, "Detach": detach,
        "DetachKeys": args.detach_keys or "", "Env": env or None,
        "WorkingDir": args.workdir or "", "Cmd": list(args.command),
    }
    start: dict[str, Any] = {"Detach": detach, "Tty": tty, **({"ConsoleSize": size} if tty else {})}
    created = client.post_json(f"/containers/{args.container}/exec", json=config)
    exec_id = str(created.get("Id") or "")
    if not exec_id:
        raise StatusError(1, "exec ID empty")
    if detach:
        client.request("POST", f"/exec/{exec_id}/start", json=start).close()
        return 0
    streams = _attach.Streams(stdin=interactive, stdout=True, stderr=True, tty=tty)
    with contextlib.ExitStack() as stack:
        hijacked = stack.enter_context(client.hijack("POST", f"/exec/{exec_id}/start",
                                                     json=start))
        if tty and ctx.is_tty(ctx.stdin):
            stack.enter_context(_attach.monitor_tty_size(client, ctx,
                                                         f"/exec/{exec_id}/resize"))
        try:
            _attach.stream(ctx, hijacked, streams, args.detach_keys)
        except _attach.Detached:
            raise StatusError(1, "read escape sequence") from None
    try:
        info = client.get_json(f"/exec/{exec_id}/json")
    except DaemonUnavailable:
        return 255  # docker's -1: the daemon went away
    return int(info.get("ExitCode") or 0)
