"""``berth tag``: give an image another name."""

from __future__ import annotations

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser
from berth.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]"
ALIASES = ("image tag", "tag")


def configure(p: Parser) -> None:
    p.positionals(2, 2)


def run(ctx: Context, args: Namespace) -> int:
    from berth.oci.reference import parse_normalized

    source, target = args.args
    try:
        ref = parse_normalized(target)
    except InvalidArgument as e:
        from berth.cli.render import go_quote

        raise StatusError(1, f"Error parsing reference: {go_quote(target)} is not a valid "
                             f"repository/tag: {e.message}") from None
    if ref.digest:
        raise StatusError(1, "refusing to create a tag with a digest reference")
    ref = ref.with_default_tag()
    ctx.client.request("POST", f"/images/{source}/tag",
                       params={"repo": ref.familiar_name, "tag": ref.tag}).close()
    return 0
