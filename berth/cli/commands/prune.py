"""``berth container|image|volume|system prune``: remove what nothing uses, after asking."""

from __future__ import annotations

from berth.cli.commands.ps import encode_filters, parse_filters
from berth.cli.context import Context
from berth.cli.parser import Parser, append_list
from berth.http.client import APIError
from berth.util.humanize import human_size

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS]"

_WARNINGS = {
    "container prune": "WARNING! This will remove all stopped containers.",
    "image prune": "WARNING! This will remove all dangling images.",
    "image prune all": "WARNING! This will remove all images without at least one container "
                       "associated to them.",
    "volume prune": "WARNING! This will remove anonymous local volumes not used by at least "
                    "one container.",
    "volume prune all": "WARNING! This will remove all local volumes not used by at least one "
                        "container.",
}


def configure(p: Parser) -> None:
    verb = p.command
    if verb in ("image prune", "volume prune", "system prune"):
        p.flag("-a", "--all", action="store_true",
               help={"image prune": "Remove all unused images, not just dangling ones",
                     "volume prune": "Remove all unused volumes, not just anonymous ones",
                     }.get(verb, "Remove all unused images not just dangling ones"))
    append_list(p, "--filter", help="Provide filter values (e.g. \"until=<timestamp>\")")
    p.flag("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    if verb == "system prune":
        p.flag("--volumes", action="store_true", help="Prune anonymous volumes")
    p.positionals(0, 0)


def confirm(ctx: Context, warning: str) -> bool:
    """docker's prompt: the warning, ``[y/N]``, one line read from stdin."""
    ctx.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ".encode())
    ctx.stdout.flush()
    line = b""
    while not line.endswith(b"\n"):
        data = ctx.stdin.read(1)
        if not data:
            break
        line += data
    return line.strip().lower() in (b"y", b"yes")


def _filters(items: list[str], extra: dict[str, list[str]] | None = None) -> str | None:
    filters = parse_filters(items) or {}
    for key, values in (extra or {}).items():
        filters.setdefault(key, []).extend(values)
    return encode_filters(filters)


def prune_containers(ctx: Context, filters: list[str]) -> tuple[int, str]:
    report = ctx.client.post_json("/containers/prune", {"filters": _filters(filters)}) or {}
    deleted = report.get("ContainersDeleted") or []
    if not deleted:
        return 0, ""
    return int(report.get("SpaceReclaimed") or 0), \
        "Deleted Containers:\n" + "".join(f"{c}\n" for c in deleted)


def prune_images(ctx: Context, filters: list[str], all_: bool) -> tuple[int, str]:
    query = _filters(filters, {"dangling": ["false" if all_ else "true"]})
    report = ctx.client.post_json("/images/prune", {"filters": query}) or {}
    deleted = report.get("ImagesDeleted") or []
    if not deleted:
        return 0, ""
    lines = []
    for item in deleted:
        if item.get("Untagged"):
            lines.append(f"untagged: {item['Untagged']}\n")
        if item.get("Deleted"):
            lines.append(f"deleted: {item['Deleted']}\n")
    return int(report.get("SpaceReclaimed") or 0), "Deleted Images:\n" + "".join(lines)


def prune_volumes(ctx: Context, filters: list[str], all_: bool) -> tuple[int, str]:
    query = _filters(filters, {"all": ["true"]} if all_ else None)
    report = ctx.client.post_json("/volumes/prune", {"filters": query}) or {}
    deleted = report.get("VolumesDeleted") or []
    if not deleted:
        return 0, ""
    return int(report.get("SpaceReclaimed") or 0), \
        "Deleted Volumes:\n" + "".join(f"{v}\n" for v in deleted)


def prune_networks(ctx: Context, filters: list[str]) -> tuple[int, str]:
    try:
        report = ctx.client.post_json("/networks/prune", {"filters": _filters(filters)}) or {}
    except APIError as e:
        if e.status in (404, 501):
            return 0, ""  # a daemon without networks has none to prune
        raise
    deleted = report.get("NetworksDeleted") or []
    if not deleted:
        return 0, ""
    return 0, "Deleted Networks:\n" + "".join(f"{n}\n" for n in deleted)


def prune_build_cache(ctx: Context, filters: list[str], all_: bool) -> tuple[int, str]:
    try:
        report = ctx.client.post_json("/build/prune", {"all": True if all_ else None,
                                                       "filters": _filters(filters)}) or {}
    except APIError as e:
        if e.status in (404, 501):
            return 0, ""  # no builder, no cache
        raise
    deleted = report.get("CachesDeleted") or []
    if not deleted:
        return 0, ""
    return int(report.get("SpaceReclaimed") or 0), \
        "Deleted build cache objects:\n" + "".join(f"{c}\n" for c in deleted)


def run(ctx: Context, args: Namespace) -> int:
    verb = ctx.command
    all_ = bool(getattr(args, "all", False))
    if verb == "system prune":
        return _system(ctx, args, all_)
    if not args.force:
        warning = _WARNINGS[f"{verb} all" if all_ and f"{verb} all" in _WARNINGS else verb]
        if not confirm(ctx, warning):
            return 0
    if verb == "container prune":
        space, output = prune_containers(ctx, args.filter)
    elif verb == "image prune":
        space, output = prune_images(ctx, args.filter, all_)
    else:
        space, output = prune_volumes(ctx, args.filter, all_)
    if output:
        ctx.out(output)
    ctx.out(f"Total reclaimed space: {human_size(space, 4)}")
    return 0


def _system(ctx: Context, args: Namespace, all_: bool) -> int:
    if not args.force:
        items = ["all stopped containers", "all networks not used by at least one container"]
        if args.volumes:
            items.append("all anonymous volumes not used by at least one container")
        items.append("all images without at least one container associated to them"
                     if all_ else "all dangling images")
        items.append("all build cache" if all_ else "unused build cache")
        warning = "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)
        if not confirm(ctx, warning):
            return 0
    total = 0
    steps: list[Any] = [lambda: prune_containers(ctx, args.filter),
                        lambda: prune_networks(ctx, args.filter)]
    if args.volumes:
        steps.append(lambda: prune_volumes(ctx, args.filter, False))
    steps.append(lambda: prune_images(ctx, args.filter, all_))
    steps.append(lambda: prune_build_cache(ctx, args.filter, all_))
    for step in steps:
        space, output = step()
        total += space
        if output:
            ctx.out(output)
    ctx.out(f"Total reclaimed space: {human_size(total, 4)}")
    return 0
