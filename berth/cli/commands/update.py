"""``berth update``: change a container's resources or restart policy while it runs."""

from __future__ import annotations

from berth.cli import options
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser, flag_error
from berth.errors import BerthError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER [CONTAINER...]"
ALIASES = ("container update", "update")

# The resource flags ``update`` takes, and the help docker's ``update`` words its own way.
_FLAGS = ("--blkio-weight", "--cpu-period", "--cpu-quota", "--cpu-rt-period", "--cpu-rt-runtime",
          "--cpu-shares", "--cpus", "--cpuset-cpus", "--cpuset-mems", "--memory",
          "--memory-reservation", "--memory-swap", "--pids-limit")
_WORDING = {
    "--cpu-rt-period": "Limit the CPU real-time period in microseconds",
    "--cpu-rt-runtime": "Limit the CPU real-time runtime in microseconds",
    "--memory-swap": "Swap limit equal to memory plus swap: -1 to enable unlimited swap",
}


def configure(p: Parser) -> None:
    options.add_resource_flags(p, _FLAGS, _WORDING)
    p.flag("--restart", kind="string", help="Restart policy to apply when a container exits")
    p.positionals(1, None)


def build_update(args: Namespace) -> dict[str, Any]:
    """The ``UpdateConfig`` body: docker's shape, zero meaning "leave as is" (``PidsLimit``
    left out instead)."""
    if all(getattr(args, options.dest_of(flag)) is None for flag in (*_FLAGS, "--restart")):
        raise StatusError(1, "you must provide one or more flags when using this command")
    body: dict[str, Any] = {
        field_name: "" if kind == "string" else 0
        for names, kind, field_name, _ in options.RESOURCE_FLAGS
        if names[-1] in _FLAGS and field_name != "PidsLimit"}
    body["KernelMemory"] = 0
    body["RestartPolicy"] = {"Name": "", "MaximumRetryCount": 0}
    body.update(options.parse_resource_flags(args))
    if args.restart:
        body["RestartPolicy"] = options.restart_policy(args.restart)
    return body


def run(ctx: Context, args: Namespace) -> int:
    try:
        body = build_update(args)
    except options.OptionError as e:
        if e.flag:
            raise flag_error(e.message, f"berth {ctx.verb} {USAGE}", ctx.verb) from None
        raise StatusError(1, e.message) from None
    errors: list[str] = []
    warnings: list[str] = []
    for name in args.args:
        try:
            result = ctx.client.post_json(f"/containers/{name}/update", json=body) or {}
        except BerthError as e:
            from berth.cli.commands._each import error_text

            errors.append(error_text(e))
            continue
        ctx.out(name)
        warnings += result.get("Warnings") or []
    if warnings:
        ctx.out("\n".join(warnings))
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0
