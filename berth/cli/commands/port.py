"""``berth port``: a container's published ports, all or the mapping of one."""

from __future__ import annotations

import re

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "CONTAINER [PRIVATE_PORT[/PROTO]]"
ALIASES = ("container port", "port")


def configure(p: Parser) -> None:
    p.positionals(1, 2)


def _join(host: str, port: str) -> str:
    """Go's ``net.JoinHostPort``: IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _natural(text: str) -> list[object]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", text) if part]


def run(ctx: Context, args: Namespace) -> int:
    name = args.args[0]
    info = ctx.client.get_json(f"/containers/{name}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    lines: list[str] = []
    if len(args.args) > 1:
        wanted = args.args[1]
        port, _, proto = wanted.partition("/")
        if not port.isdigit() or int(port) > 65535:
            raise StatusError(1, f'Error: invalid port ({port}): strconv.ParseUint: parsing '
                                 f'"{port}": invalid syntax')
        frontends = ports.get(f"{port}/{proto or 'tcp'}") or []
        if not frontends:
            raise StatusError(1, f"Error: No public port '{wanted}' published for {name}")
        lines = [_join(f.get("HostIp") or "", f.get("HostPort") or "") for f in frontends]
    else:
        for private, frontends in ports.items():
            for f in frontends or []:
                frontend = _join(f.get("HostIp") or "", f.get("HostPort") or "")
                lines.append(f"{private} -> {frontend}")
    for line in sorted(lines, key=_natural):
        ctx.out(line)
    return 0
