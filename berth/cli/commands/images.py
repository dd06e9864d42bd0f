"""``berth images``: the image table, one row per repository tag, as ``docker images``."""

from __future__ import annotations

import time

from berth.cli import render
from berth.cli.commands.ps import encode_filters, parse_filters
from berth.cli.context import Context
from berth.cli.parser import Parser, append_list

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] [REPOSITORY[:TAG]]"
ALIASES = ("image ls", "image list", "images")
HEADER = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")


def configure(p: Parser) -> None:
    p.flag("-a", "--all", action="store_true",
           help="Show all images (default hides intermediate images)")
    p.flag("--digests", action="store_true", help="Show digests")
    append_list(p, "-f", "--filter", help="Filter output based on conditions provided")
    p.flag("--format", kind="string", help="Format output using a custom template")
    p.flag("--no-trunc", dest="no_trunc", action="store_true", help="Don't truncate output")
    p.flag("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.positionals(0, 1)


def run(ctx: Context, args: Namespace) -> int:

    filters = parse_filters(args.filter) or {}
    if args.args:
        filters.setdefault("reference", []).append(args.args[0])
    params = {
        "all": args.all or None,
        "digests": args.digests or None,
        "filters": encode_filters(filters),
    }
    images = ctx.client.get_json("/images/json", params) or []
    trunc = not args.no_trunc
    if args.quiet:
        for image in images:  # one line per row, as docker prints (repeated for each tag)
            for _ in image_names(image):
                ctx.out(_id(image, trunc))
        return 0
    now = time.time()
    if args.format:
        show_digest = args.digests or ".Digest" in args.format
        items = [{"Repository": repo, "Tag": tag, "Digest": digest if show_digest else "<none>",
                  "ID": _id(image, trunc),
                  "CreatedSince": render.since(image.get("Created"), now),
                  "CreatedAt": _created_at(image.get("Created")),
                  "Size": render.human_size(int(image.get("Size") or 0)),
                  "Containers": _count(image.get("Containers")),
                  "SharedSize": _maybe_size(image.get("SharedSize")),
                  "UniqueSize": _maybe_size(_unique(image)),
                  "VirtualSize": render.human_size(int(image.get("Size") or 0), 4)}
                 for image in images for repo, tag, digest in image_names(image)]
        default = "table {{.Repository}}\t{{.Tag}}\t" + \
            ("{{.Digest}}\t" if args.digests else "") + \
            "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
        ctx.out(render.format_items(args.format, items, FORMAT_HEADERS, default), end="")
        return 0
    rows: list[tuple[str, ...]] = []
    for image in images:
        for repo, tag, digest in image_names(image):
            row = [repo, tag]
            if args.digests:
                row.append(digest)
            row += [_id(image, trunc), render.since(image.get("Created"), now),
                    render.human_size(int(image.get("Size") or 0))]
            rows.append(tuple(row))
    header = HEADER if not args.digests else HEADER[:2] + ("DIGEST",) + HEADER[2:]
    ctx.out(render.table(header, rows), end="")
    return 0


FORMAT_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
                  "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
                  "UniqueSize": "UNIQUE SIZE"}


def _created_at(value: Any) -> str:
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(int(value or 0)).astimezone()
    return stamp.strftime("%Y-%m-%d %H:%M:%S %z ") + (stamp.tzname() or "")


def _count(value: Any) -> str:
    return "N/A" if value in (None, -1) else str(value)


def _maybe_size(value: Any) -> str:
    return "N/A" if value in (None, -1) else render.human_size(int(value))


def _unique(image: dict[str, Any]) -> int | None:
    shared = image.get("SharedSize")
    if shared in (None, -1):
        return None
    return int(image.get("Size") or 0) - int(shared)


def _id(image: dict[str, Any], trunc: bool) -> str:
    ident = str(image.get("Id") or "")
    return ident.split(":", 1)[-1][:12] if trunc else ident


def _split_repo_tag(ref: str) -> tuple[str, str]:
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "<none>"


def image_names(image: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows: one per tag; digest-only and dangling images too."""
    tags = [t for t in (image.get("RepoTags") or []) if t != "<none>:<none>"]
    digests = [d for d in (image.get("RepoDigests") or []) if d != "<none>@<none>"]
    by_repo: dict[str, str] = {}
    for d in digests:
        repo, _, digest = d.partition("@")
        by_repo.setdefault(repo, digest)
    rows: list[tuple[str, str, str]] = []
    tagged_repos: set[str] = set()
    for t in tags:
        repo, tag = _split_repo_tag(t)
        tagged_repos.add(repo)
        rows.append((repo, tag, by_repo.get(repo, "<none>")))
    for repo, digest in by_repo.items():
        if repo not in tagged_repos:
            rows.append((repo, "<none>", digest))
    if not rows:
        rows.append(("<none>", "<none>", "<none>"))
    return rows
