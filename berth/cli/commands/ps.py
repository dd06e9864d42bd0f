"""``berth ps``: the container table, laid out and truncated as ``docker ps`` does."""

from __future__ import annotations

import time

from berth.cli import render
from berth.cli.context import Context
from berth.cli.parser import Parser, append_list

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS]"
ALIASES = ("container ls", "container list", "container ps", "ps")
HEADER = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")


def configure(p: Parser) -> None:
    p.flag("-a", "--all", action="store_true",
           help="Show all containers (default shows just running)")
    append_list(p, "-f", "--filter", help="Filter output based on conditions provided")
    p.flag("-n", "--last", kind="int", type=int, default=-1,
           help="Show n last created containers (includes all states)")
    p.flag("-l", "--latest", action="store_true",
           help="Show the latest created container (includes all states)")
    p.flag("--no-trunc", dest="no_trunc", action="store_true", help="Don't truncate output")
    p.flag("--format", kind="string", help="Format output using a custom template")
    p.flag("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.flag("-s", "--size", action="store_true", help="Display total file sizes")
    p.positionals(0, 0)


def parse_filters(items: list[str]) -> dict[str, list[str]] | None:
    """``-f key=value`` flags as the API's ``filters`` JSON: ``{"key": ["value", …]}``."""
    from berth.cli.context import StatusError

    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise StatusError(125, f"invalid argument \"{item}\" for \"-f, --filter\" flag: "
                                   "bad format of filter (expected name=value)")
        filters.setdefault(key.strip().lower(), []).append(value)
    return filters or None


def encode_filters(filters: dict[str, list[str]] | None) -> str | None:
    """The ``filters`` query value as docker 28 writes it: ``{"key":{"value":true}}``."""
    import json

    if not filters:
        return None
    return json.dumps({k: dict.fromkeys(v, True) for k, v in filters.items()},
                      separators=(",", ":"), sort_keys=True)


def run(ctx: Context, args: Namespace) -> int:

    filters = parse_filters(args.filter)
    last = 1 if args.latest else args.last
    params: dict[str, Any] = {
        "all": args.all or None,  # a limit implies all states on the daemon's side
        "limit": last if last > 0 else None,
        "size": args.size or None,
        "filters": encode_filters(filters),
    }
    containers = ctx.client.get_json("/containers/json", params) or []
    trunc = not args.no_trunc
    if args.quiet:
        for c in containers:
            ctx.out(_id(c, trunc))
        return 0
    now = time.time()
    if args.format:
        items = [fields(c, trunc, now) for c in containers]
        default = DEFAULT_FORMAT + ("\t{{.Size}}" if args.size else "")
        ctx.out(render.format_items(args.format, items, FIELD_HEADERS, default), end="")
        return 0
    rows = [container_row(c, trunc, now) for c in containers]
    header = HEADER
    if args.size:
        header = HEADER + ("SIZE",)
        rows = [row + (_size(c),) for row, c in zip(rows, containers, strict=True)]
    ctx.out(render.table(header, rows), end="")
    return 0


DEFAULT_FORMAT = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
                  "{{.Ports}}\t{{.Names}}")
FIELD_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
                 "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
                 "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
                 "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
                 "LocalVolumes": "LOCAL VOLUMES"}


def fields(c: dict[str, Any], trunc: bool, now: float) -> dict[str, Any]:
    """A container as ``--format`` templates see it (docker's ``ContainerContext``)."""
    import datetime as dt

    row = dict(zip(("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"),
                   container_row(c, trunc, now), strict=True))
    created = dt.datetime.fromtimestamp(int(c.get("Created") or 0)).astimezone()
    labels = c.get("Labels") or {}
    mounts = [str(m.get("Name") or m.get("Source") or "") for m in c.get("Mounts") or []]
    networks = sorted((c.get("NetworkSettings") or {}).get("Networks") or {})
    row.update(
        CreatedAt=created.strftime("%Y-%m-%d %H:%M:%S %z ") + (created.tzname() or ""),
        State=str(c.get("State") or ""), Size=_size(c),
        Labels=",".join(f"{k}={v}" for k, v in labels.items()),
        Mounts=",".join(render.ellipsis(m, 15) if trunc else m for m in mounts),
        Networks=",".join(networks),
        LocalVolumes=str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
    )
    return {**row, "Platform": None}  # docker's field; no image platform is recorded


def _id(c: dict[str, Any], trunc: bool) -> str:
    cid = str(c.get("Id", ""))
    return cid[:12] if trunc else cid


def _size(c: dict[str, Any]) -> str:
    rw = int(c.get("SizeRw") or 0)
    rootfs = int(c.get("SizeRootFs") or 0)
    text = render.human_size(rw)
    return f"{text} (virtual {render.human_size(rootfs)})" if rootfs else text


def container_row(c: dict[str, Any], trunc: bool, now: float) -> tuple[str, ...]:
    command = str(c.get("Command") or "")
    if trunc:
        command = render.ellipsis(command, 20)
    return (
        _id(c, trunc),
        _image(c, trunc),
        render.go_quote(command),
        render.since(c.get("Created"), now),
        str(c.get("Status") or ""),
        format_ports(c.get("Ports") or []),
        _names(c.get("Names") or [], trunc),
    )


def _image(c: dict[str, Any], trunc: bool) -> str:
    image = str(c.get("Image") or "")
    if not trunc:
        return image
    short = _truncate_id(str(c.get("ImageID") or ""))
    if short and short == _truncate_id(image):
        return short
    if "@" in image:
        return image.split("@", 1)[0]
    return image


def _truncate_id(text: str) -> str:
    """docker's ``stringid.TruncateID``: drop an ``algo:`` prefix, keep 12 characters."""
    return text.split(":", 1)[-1][:12]


def _names(names: list[str], trunc: bool) -> str:
    out = []
    for name in names:
        bare = name.lstrip("/")
        if trunc and "/" in bare:  # a link alias ("/web/db"), shown only with --no-trunc
            continue
        out.append(bare)
    return ",".join(out)


def format_ports(ports: list[dict[str, Any]]) -> str:
    """docker's PORTS column: ``443/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp``.

    Sorted by private port; ports published on the same number, or not at all, are merged
    into ranges per address and protocol; mappings to another host port come last.
    """
    def sort_key(p: dict[str, Any]) -> tuple[int, str, int, str]:
        return (int(p.get("PrivatePort") or 0), p.get("IP") or "",
                int(p.get("PublicPort") or 0), p.get("Type") or "")

    groups: dict[str, list[int]] = {}  # key -> [first, last], in order of creation
    result: list[str] = []
    mappings: list[str] = []
    for port in sorted(ports, key=sort_key):
        private = int(port.get("PrivatePort") or 0)
        public = int(port.get("PublicPort") or 0)
        proto = port.get("Type") or "tcp"
        ip = port.get("IP") or ""
        key = proto
        if ip:
            if public != private:
                host = f"[{ip}]" if ":" in ip else ip
                mappings.append(f"{host}:{public}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_port_group(key, *group))
            groups[key] = [private, private]
    result += [_port_group(key, *group) for key, group in groups.items()]
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    span = str(first) if first == last else f"{first}-{last}"
    if ip:
        span = f"{ip}:{span}->{span}"
    return f"{span}/{proto}"
