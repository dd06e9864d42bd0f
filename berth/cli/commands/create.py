"""``berth create``: create a container and print its id."""

from __future__ import annotations

from berth.cli.commands import _container
from berth.cli.context import Context
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from berth.util.flags import Namespace

USAGE = _container.USAGE
ALIASES = ("container create", "create")


def configure(p: Parser) -> None:
    _container.configure(p, run=False)


def run(ctx: Context, args: Namespace) -> int:
    spec = _container.build_spec(args, ctx.verb, detach=False, environ=ctx.environ)
    # Unlike run, docker's create reports a failure plainly and exits 1.
    container_id = _container.create_container(ctx, spec, pull=args.pull, quiet=args.quiet)
    if args.cidfile:
        _container.write_cidfile(args.cidfile, container_id)
    ctx.out(container_id)
    return 0
