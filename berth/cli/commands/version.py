"""``berth version``: client and server versions, laid out like ``docker version``."""

from __future__ import annotations

import platform
import sys

from berth.cli.context import Context
from berth.cli.parser import Parser
from berth.errors import BerthError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS]"


def configure(p: Parser) -> None:
    p.flag("-f", "--format", kind="string", help="Format output using a custom template")
    p.positionals(0, 0)


def client_info(ctx: Context) -> dict[str, Any]:
    from berth import API_VERSION, __version__

    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "PythonVersion": platform.python_version(),
        "Os": sys.platform if sys.platform != "linux" else "linux",
        "Arch": _arch(platform.machine()),
        "Context": "default",
    }


def _arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def run(ctx: Context, args: Namespace) -> int:
    client = client_info(ctx)
    server: dict[str, Any] | None = None
    server_error: BerthError | None = None
    try:
        server = ctx.client.get_json("/version")
    except BerthError as e:
        server_error = e
    if args.format:
        from berth.cli.template import render_template

        ctx.out(render_template(args.format, {"Client": client, "Server": server}))
    else:
        lines = [
            "Client:",
            f" Version:           {client['Version']}",
            f" API version:       {client['ApiVersion']}",
            f" Python version:    {client['PythonVersion']}",
            f" OS/Arch:           {client['Os']}/{client['Arch']}",
            f" Context:           {client['Context']}",
        ]
        if server is not None:
            lines += ["", f"Server: {(server.get('Platform') or {}).get('Name') or 'berth'}"]
            lines += server_lines(server)
        ctx.out("\n".join(lines))
    if server_error is not None:
        from berth.cli.commands._each import error_text

        ctx.err(error_text(server_error))
        return 1
    return 0


def server_lines(server: dict[str, Any]) -> list[str]:
    """The components, the engine first, with the fields docker shows for each."""
    def text(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value or "")

    components = server.get("Components") or [{"Name": "Engine", "Version": server.get("Version")}]
    lines = []
    for comp in components:
        details = comp.get("Details") or {}
        lines += [f" {comp.get('Name')}:", f"  Version:          {text(comp.get('Version'))}"]
        if comp.get("Name") != "Engine":
            lines += [f"  {key + ':':<18}{text(value)}" for key, value in details.items()]
            continue

        def field(key: str, details: dict[str, Any] = details) -> str:
            return text(details.get(key, server.get(key)))

        lines += [
            f"  API version:      {field('ApiVersion')} (minimum version {field('MinAPIVersion')})",
            f"  Go version:       {field('GoVersion')}",
            f"  Git commit:       {field('GitCommit')}",
            f"  Built:            {field('BuildTime')}",
            f"  OS/Arch:          {field('Os')}/{field('Arch')}",
            f"  Experimental:     {field('Experimental')}",
        ]
    return [line.rstrip() for line in lines]
