"""``berth pull``: download an image, drawing the daemon's progress stream."""

from __future__ import annotations

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] NAME[:TAG|@DIGEST]"
ALIASES = ("image pull", "pull")


def configure(p: Parser) -> None:
    p.flag("-a", "--all-tags", dest="all_tags", action="store_true",
           help="Download all tagged images in the repository")
    p.flag("--platform", kind="string", help="Set platform if server is multi-platform capable")
    p.flag("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.positionals(1, 1)


def pull_image(ctx: Context, image: str, platform: str | None, *, quiet: bool = False,
               out: str = "stderr", all_tags: bool = False) -> None:
    """``POST /images/create?fromImage=…&tag=…``; progress to ``out`` unless ``quiet``.

    ``run``/``create`` draw to stderr (stdout is for the container id), ``pull`` to stdout.
    """
    from berth.cli.progress import display_messages
    from berth.http.frames import check_message, iter_json_messages
    from berth.oci.reference import parse_normalized

    ref = parse_normalized(image)
    if ref.digest:
        tag = ref.digest
    elif all_tags:
        tag = ref.tag
    else:
        tag = ref.tag or "latest"
    params = {"fromImage": ref.name, "tag": tag, "platform": platform}
    stream = ctx.stdout if out == "stdout" else ctx.stderr
    with ctx.client.request("POST", "/images/create", params=params) as response:
        messages = iter_json_messages(response.iter_chunks(), check=False)
        if quiet:
            for msg in messages:
                check_message(msg)
            return
        terminal = ctx.is_tty(ctx.stdout)
        display_messages(messages, stream, terminal=terminal, width=_width(ctx))


def _width(ctx: Context) -> int:
    import os

    try:
        return os.get_terminal_size(ctx.stdout.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 80


def run(ctx: Context, args: Namespace) -> int:
    from berth.errors import InvalidArgument
    from berth.oci.reference import parse_normalized

    image = args.args[0]
    try:
        ref = parse_normalized(image)
    except InvalidArgument as e:
        raise StatusError(1, e.message) from None
    if args.all_tags and (ref.tag or ref.digest):
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    if not args.all_tags and not ref.tag and not ref.digest:
        ctx.out("Using default tag: latest")
        ref = ref.with_default_tag()
    pull_image(ctx, image, args.platform, quiet=args.quiet, out="stdout",
               all_tags=args.all_tags)
    if args.quiet:
        ctx.out(ref.familiar() if not ref.digest else str(ref))
    elif not args.all_tags:
        ctx.out(str(ref))
    return 0
