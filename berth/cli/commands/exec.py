"""``berth exec``: run a command in a running container, docker's create → start → inspect."""

from __future__ import annotations

import argparse

from berth.cli.commands import _attach
from berth.cli.commands._container import OptionError, _env_entry, _read_env_files
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser, append_list
from berth.cli.streams import StdinPump, copy_output, iter_socket

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


def run(ctx: Context, args: argparse.Namespace) -> int:
    client = ctx.client
    tty, interactive = bool(args.tty), bool(args.interactive)
    if interactive and tty and not args.detach and not ctx.is_tty(ctx.stdin):
        raise StatusError(1, "the input device is not a TTY")
    try:
        env = _read_env_files(args.env_file, ctx.environ) + [_env_entry(e, ctx.environ)
                                                              for e in args.env]
    except OptionError as e:
        raise e.status(ctx.verb) from None
    config = {
        "User": args.user or "", "Privileged": bool(args.privileged), "Tty": tty,
        "AttachStdin": interactive and not args.detach,
        "AttachStdout": not args.detach, "AttachStderr": not args.detach,
        "DetachKeys": args.detach_keys or "", "Env": env or None,
        "WorkingDir": args.workdir or "", "Cmd": list(args.command),
    }
    created = client.post_json(f"/containers/{args.container}/exec", json=config)
    exec_id = created["Id"]
    if args.detach:
        client.request("POST", f"/exec/{exec_id}/start",
                       json={"Detach": True, "Tty": tty}).close()
        return 0
    with client.hijack("POST", f"/exec/{exec_id}/start",
                       json={"Detach": False, "Tty": tty}) as hijacked:
        if interactive:
            StdinPump(ctx.stdin, hijacked.sock).start()
        with _attach.raw_terminal(ctx, tty and interactive):
            system_error = copy_output(iter_socket(hijacked.sock, hijacked.buffered),
                                       ctx.stdout, ctx.stderr, tty)
    if system_error:
        ctx.err(system_error)
    info = client.get_json(f"/exec/{exec_id}/json")
    return int(info.get("ExitCode") or 0)
