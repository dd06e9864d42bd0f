"""``berth volume create|ls|inspect|rm``: named and anonymous volumes."""

from __future__ import annotations

import re

from berth.cli import render
from berth.cli.commands._each import for_each
from berth.cli.commands.ps import encode_filters, parse_filters
from berth.cli.context import Context
from berth.cli.options import kv_map
from berth.cli.parser import Parser, append_list

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = {"volume create": "[OPTIONS] [VOLUME]", "volume ls": "[OPTIONS]",
         "volume inspect": "[OPTIONS] VOLUME [VOLUME...]",
         "volume rm": "[OPTIONS] VOLUME [VOLUME...]"}
ALIASES = {"volume ls": ("volume ls", "volume list"),
           "volume rm": ("volume rm", "volume remove")}
DEFAULT_FORMAT = "table {{.Driver}}\t{{.Name}}"
HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE",
           "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
           "Availability": "AVAILABILITY", "Group": "GROUP", "Status": "STATUS"}


def configure(p: Parser) -> None:
    verb = p.command
    if verb == "volume create":
        p.flag("-d", "--driver", kind="string", default="local",
               help="Specify volume driver name")
        append_list(p, "--label", help="Set metadata for a volume")
        append_list(p, "-o", "--opt", help="Set driver specific options")
        p.positionals(0, 1)
    elif verb == "volume ls":
        append_list(p, "-f", "--filter", help='Provide filter values (e.g. "dangling=true")')
        p.flag("--format", kind="string", help="Format output using a custom template")
        p.flag("-q", "--quiet", action="store_true", help="Only display volume names")
        p.positionals(0, 0)
    elif verb == "volume inspect":
        p.flag("-f", "--format", kind="string", help="Format output using a custom template")
        p.positionals(1, None)
    else:
        p.flag("-f", "--force", action="store_true",
               help="Force the removal of one or more volumes")
        p.positionals(1, None)


def run(ctx: Context, args: Namespace) -> int:
    verb = ctx.command
    if verb == "volume create":
        return _create(ctx, args)
    if verb == "volume ls":
        return _list(ctx, args)
    if verb == "volume inspect":
        return _inspect(ctx, args)
    params = {"force": True if args.force else None}

    def remove(name: str) -> None:
        ctx.client.request("DELETE", f"/volumes/{name}", params=params).close()

    return for_each(ctx, args.args, remove)


def _create(ctx: Context, args: Namespace) -> int:
    body: dict[str, Any] = {"Driver": args.driver or "local", "DriverOpts": kv_map(args.opt),
                            "Labels": kv_map(args.label), "Name": args.args[0] if args.args
                            else ""}
    volume = ctx.client.post_json("/volumes/create", json=body) or {}
    ctx.out(str(volume.get("Name") or ""))
    return 0


def _natural(text: str) -> list[tuple[int, int, str]]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p)
            for p in re.split(r"(\d+)", text) if p]


def _row(volume: dict[str, Any]) -> dict[str, str]:
    labels = volume.get("Labels") or {}
    usage = volume.get("UsageData") or {}
    return {"Availability": "N/A", "Group": "N/A", "Status": "N/A",  # cluster volumes only
            "Driver": str(volume.get("Driver") or ""), "Name": str(volume.get("Name") or ""),
            "Scope": str(volume.get("Scope") or ""),
            "Mountpoint": str(volume.get("Mountpoint") or ""),
            "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
            "Links": str(usage.get("RefCount", "N/A")) if usage else "N/A",
            "Size": render.human_size(int(usage["Size"])) if usage.get("Size", -1) >= 0
            else "N/A"}


def _list(ctx: Context, args: Namespace) -> int:
    filters = parse_filters(args.filter)
    params = {"filters": encode_filters(filters)}
    result = ctx.client.get_json("/volumes", params) or {}
    volumes = sorted(result.get("Volumes") or [], key=lambda v: _natural(str(v.get("Name"))))
    if args.quiet:
        for volume in volumes:
            ctx.out(str(volume.get("Name") or ""))
        return 0
    ctx.out(render.format_items(args.format, [_row(v) for v in volumes], HEADERS,
                                DEFAULT_FORMAT), end="")
    for warning in result.get("Warnings") or []:
        ctx.err(f"WARNING: {warning}")
    return 0


def _inspect(ctx: Context, args: Namespace) -> int:
    from berth.cli.commands.inspect import inspect_each

    return inspect_each(ctx, "volume", args.args, args.format)
