"""``berth system df``: disk used by images, containers, volumes and build cache."""

from __future__ import annotations

import json

from berth.cli import render
from berth.cli.context import Context
from berth.cli.parser import Parser
from berth.util.humanize import human_size

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS]"
DEFAULT_FORMAT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
           "Reclaimable": "RECLAIMABLE"}


def configure(p: Parser) -> None:
    p.flag("--format", kind="string", help="Format output using a custom template")
    p.flag("-v", "--verbose", action="store_true", help="Show detailed information on space usage")
    p.positionals(0, 0)


def _size(n: float) -> str:
    return human_size(n, 4)


def _reclaimable(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return _size(reclaimable)


def summary(df: dict[str, Any]) -> list[dict[str, str]]:
    """The four rows, computed as docker's ``formatter/disk_usage.go`` does."""
    images = df.get("Images") or []
    layers = int(df.get("LayersSize") or 0)
    used = 0
    for image in images:
        if image.get("Containers"):
            if image.get("Size", 0) == -1 or image.get("SharedSize", 0) == -1:
                continue
            used += int(image.get("Size") or 0) - int(image.get("SharedSize") or 0)
    containers = df.get("Containers") or []
    c_total = sum(int(c.get("SizeRw") or 0) for c in containers)
    c_active = [c for c in containers
                if any(s in str(c.get("State") or "") for s in ("running", "paused",
                                                                  "restarting"))]
    c_free = c_total - sum(int(c.get("SizeRw") or 0) for c in c_active)
    volumes = df.get("Volumes") or []
    v_sizes = [(int((v.get("UsageData") or {}).get("Size") or 0),
                int((v.get("UsageData") or {}).get("RefCount") or 0)) for v in volumes]
    v_total = sum(s for s, _ in v_sizes if s > 0)
    v_free = sum(s for s, refs in v_sizes if s > 0 and refs == 0)
    cache = df.get("BuildCache") or []
    b_total = sum(int(b.get("Size") or 0) for b in cache)
    b_free = sum(int(b.get("Size") or 0) for b in cache
                 if not b.get("InUse") and not b.get("Shared"))
    return [
        {"Type": "Images", "TotalCount": str(len(images)),
         "Active": str(sum(1 for i in images if i.get("Containers"))), "Size": _size(layers),
         "Reclaimable": _reclaimable(layers - used, layers)},
        {"Type": "Containers", "TotalCount": str(len(containers)),
         "Active": str(len(c_active)), "Size": _size(c_total),
         "Reclaimable": _reclaimable(c_free, c_total)},
        {"Type": "Local Volumes", "TotalCount": str(len(volumes)),
         "Active": str(sum(1 for _, refs in v_sizes if refs > 0)), "Size": _size(v_total),
         "Reclaimable": _reclaimable(v_free, v_total)},
        {"Type": "Build Cache", "TotalCount": str(len(cache)),
         "Active": str(sum(1 for b in cache if b.get("InUse"))), "Size": _size(b_total),
         "Reclaimable": _size(b_free)},
    ]


def run(ctx: Context, args: Namespace) -> int:
    df = ctx.client.get_json("/system/df") or {}
    if args.format == "json":
        for row in summary(df):
            ctx.out(json.dumps(row, separators=(",", ":"), sort_keys=True))
        return 0
    if args.verbose and not args.format:
        return _verbose(ctx, df)
    ctx.out(render.format_items(args.format, summary(df), HEADERS, DEFAULT_FORMAT), end="")
    return 0


def _verbose(ctx: Context, df: dict[str, Any]) -> int:
    import time

    now = time.time()
    ctx.out("Images space usage:\n")
    rows = []
    for image in df.get("Images") or []:
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"] or \
            ["<none>:<none>"]
        for tag in tags:
            repo, _, name = tag.rpartition(":")
            rows.append((repo, name, str(image.get("Id") or "").split(":")[-1][:12],
                         render.since(image.get("Created"), now),
                         render.human_size(int(image.get("Size") or 0)),
                         _size(int(image.get("SharedSize") or 0)),
                         _size(int(image.get("Size") or 0) - int(image.get("SharedSize") or 0)),
                         str(image.get("Containers") or 0)))
    ctx.out(render.table(("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
                          "UNIQUE SIZE", "CONTAINERS"), rows), end="")
    ctx.out("\nContainers space usage:\n")
    rows = []
    for c in df.get("Containers") or []:
        rows.append((str(c.get("Id") or "")[:12], str(c.get("Image") or ""),
                     render.go_quote(render.ellipsis(str(c.get("Command") or ""), 20)),
                     "0", _size(int(c.get("SizeRw") or 0)),
                     render.since(c.get("Created"), now), str(c.get("Status") or ""),
                     ",".join(n.lstrip("/") for n in c.get("Names") or [])))
    ctx.out(render.table(("CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE",
                          "CREATED", "STATUS", "NAMES"), rows), end="")
    ctx.out("\nLocal Volumes space usage:\n")
    rows = [(str(v.get("Name") or ""), str((v.get("UsageData") or {}).get("RefCount") or 0),
             _size(int((v.get("UsageData") or {}).get("Size") or 0)))
            for v in df.get("Volumes") or []]
    ctx.out(render.table(("VOLUME NAME", "LINKS", "SIZE"), rows), end="")
    cache = df.get("BuildCache") or []
    ctx.out("\nBuild cache usage: " + _size(sum(int(b.get("Size") or 0) for b in cache)) + "\n")
    rows = [(str(b.get("ID") or "")[:12], str(b.get("Type") or ""),
             _size(int(b.get("Size") or 0)), render.since(b.get("CreatedAt"), now),
             render.since(b.get("LastUsedAt"), now), str(b.get("UsageCount") or 0),
             "true" if b.get("Shared") else "false") for b in cache]
    ctx.out(render.table(("CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE",
                          "SHARED"), rows), end="")
    return 0
