"""``berth version``: client and server versions, laid out like ``docker version``."""

from __future__ import annotations

import argparse
import platform
import sys
from typing import Any

from berth.cli.context import Context
from berth.cli.parser import Parser
from berth.errors import BerthError

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


def run(ctx: Context, args: argparse.Namespace) -> int:
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
            lines += ["", f"Server: {server.get('Platform', {}).get('Name') or 'berth'}"]
            components = server.get("Components") or [
                {"Name": "Engine", "Version": server.get("Version"), "Details": {}}]
            for comp in components:
                lines.append(f" {comp.get('Name')}:")
                lines.append(f"  Version:          {comp.get('Version', '')}")
                if comp.get("Name") == "Engine":
                    lines.append(f"  API version:      {server.get('ApiVersion', '')} "
                                 f"(minimum version {server.get('MinAPIVersion', '')})")
                    for key, label in (("GoVersion", "Go version"),
                                       ("GitCommit", "Git commit"), ("BuildTime", "Built"),
                                       ("Os", None), ("Experimental", "Experimental")):
                        if key == "Os":
                            lines.append(f"  OS/Arch:          {server.get('Os', '')}/"
                                         f"{server.get('Arch', '')}")
                        elif server.get(key) not in (None, ""):
                            value = server[key]
                            if isinstance(value, bool):
                                value = str(value).lower()
                            lines.append(f"  {label + ':':<18}{value}")
                else:
                    for key, value in (comp.get("Details") or {}).items():
                        lines.append(f"  {key + ':':<18}{value}")
        ctx.out("\n".join(lines))
    if server_error is not None:
        from berth.cli.commands._each import error_text

        ctx.err(error_text(server_error))
        return 1
    return 0
