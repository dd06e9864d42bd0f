"""``berth commit``: a new image from a container's changes; prints the image id."""

from __future__ import annotations

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser, append_list

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]"
ALIASES = ("container commit", "commit")


def configure(p: Parser) -> None:
    p.flag("-a", "--author", kind="string",
           help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    append_list(p, "-c", "--change", help="Apply Dockerfile instruction to the created image")
    p.flag("-m", "--message", kind="string", help="Commit message")
    p.flag("-p", "--pause", action="store_true", default=True,
           help="Pause container during commit (default true)")
    p.positionals(1, 2)


def run(ctx: Context, args: Namespace) -> int:
    container = args.args[0]
    repo = tag = None
    if len(args.args) > 1:
        from berth.oci.reference import parse_normalized

        ref = parse_normalized(args.args[1])
        if ref.digest:
            raise StatusError(1, "refusing to create a tag with a digest reference")
        repo, tag = ref.name, ref.tag or "latest"
    params: dict[str, Any] = {
        "container": container, "repo": repo, "tag": tag,
        "comment": args.message or None, "author": args.author or None,
        "pause": None if args.pause else False, "changes": args.change or None,
    }
    result = ctx.client.post_json("/commit", params, None) or {}
    ctx.out(str(result.get("Id") or ""))
    return 0
