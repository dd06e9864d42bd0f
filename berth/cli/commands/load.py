"""``berth load``: send an image archive (``docker save`` or OCI layout) to the daemon."""

from __future__ import annotations

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS]"
ALIASES = ("image load", "load")


def configure(p: Parser) -> None:
    p.flag("-i", "--input", kind="string", help="Read from tar archive file, instead of STDIN")
    p.flag("--platform", kind="string",
           help='Load only the given platform variant. Formatted as "os[/arch[/variant]]" '
                '(e.g., "linux/amd64")')
    p.flag("-q", "--quiet", action="store_true", help="Suppress the load output")
    p.positionals(0, 0)


def run(ctx: Context, args: Namespace) -> int:
    from berth.cli.progress import display_messages
    from berth.http.frames import iter_json_messages

    if args.input:
        try:
            source = open(args.input, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise StatusError(1, f"open {args.input}: {(e.strerror or str(e)).lower()}") \
                from None
    else:
        if ctx.is_tty(ctx.stdin):
            raise StatusError(1, "requested load from stdin, but stdin is empty")
        source = ctx.stdin
    # Progress bars only make sense on a terminal; the daemon leaves them out when quiet.
    quiet = args.quiet or not ctx.is_tty(ctx.stdout)
    params = {"quiet": quiet, "platform": args.platform}
    try:
        with ctx.client.request("POST", "/images/load", params=params, body=source,
                                headers={"Content-Type": "application/x-tar"}) as response:
            if response.content_type == "application/json":
                display_messages(iter_json_messages(response.iter_chunks(), check=False),
                                 ctx.stdout, terminal=ctx.is_tty(ctx.stdout))
            else:
                for chunk in response.iter_chunks():
                    ctx.stdout.write(chunk)
                ctx.stdout.flush()
    finally:
        if source is not ctx.stdin:
            source.close()
    return 0
