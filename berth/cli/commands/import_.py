"""``berth import``: make a one-layer image from a root filesystem tarball."""

from __future__ import annotations

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser, append_list
from berth.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]"
ALIASES = ("image import", "import")


def configure(p: Parser) -> None:
    append_list(p, "-c", "--change", help="Apply Dockerfile instruction to the created image")
    p.flag("-m", "--message", kind="string", help="Set commit message for imported image")
    p.flag("--platform", kind="string", help="Set platform if server is multi-platform capable")
    p.positionals(1, 2)


def run(ctx: Context, args: Namespace) -> int:
    from berth.cli.progress import display_messages
    from berth.http.frames import iter_json_messages

    source = args.args[0]
    repo = tag = None
    if len(args.args) > 1:
        from berth.oci.reference import parse_normalized

        try:
            ref = parse_normalized(args.args[1])
        except InvalidArgument as e:
            raise StatusError(1, e.message) from None
        if ref.digest:
            raise StatusError(1, "cannot import digest reference")
        repo, tag = ref.familiar_name, ref.tag or None
    params = {"fromSrc": "-", "repo": repo, "tag": tag, "message": args.message,
              "changes": list(args.change) or None, "platform": args.platform}
    body = None
    if source == "-":
        body = ctx.stdin
    elif "://" in source:
        params["fromSrc"] = source
    else:
        try:
            body = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise StatusError(1, f"open {source}: {(e.strerror or str(e)).lower()}") from None
    try:
        with ctx.client.request("POST", "/images/create", params=params, body=body,
                                headers={"Content-Type": "application/x-tar"}) as response:
            display_messages(iter_json_messages(response.iter_chunks(), check=False),
                             ctx.stdout, terminal=ctx.is_tty(ctx.stdout))
    finally:
        if body is not None and body is not ctx.stdin:
            body.close()
    return 0
