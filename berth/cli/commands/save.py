"""``berth save``: images to a docker-archive tar, to a file or stdout."""

from __future__ import annotations

import os
import tempfile

from berth import API_VERSION
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] IMAGE [IMAGE...]"
ALIASES = ("image save", "save")


def configure(p: Parser) -> None:
    p.flag("-o", "--output", kind="string", help="Write to a file, instead of STDOUT")
    p.flag("--platform", kind="string",
           help='Save only the given platform variant. Formatted as "os[/arch[/variant]]" '
                '(e.g., "linux/amd64")')
    p.positionals(1, None)


def write_stream(ctx: Context, output: str | None, method: str, path: str,
                 params: dict[str, Any] | None) -> None:
    """Stream a response body to ``output`` (written whole or not at all) or to stdout."""
    if not output and ctx.is_tty(ctx.stdout):
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or "
                             "redirect")
    with ctx.client.request(method, path, params=params) as response:
        if not output:
            for chunk in response.iter_chunks():
                ctx.stdout.write(chunk)
            ctx.stdout.flush()
            return
        directory = os.path.dirname(os.path.abspath(output))
        # A temporary file renamed into place (mode 0600, as docker's CopyToFile leaves it).
        fd, tmp = tempfile.mkstemp(prefix=".berth_temp_", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in response.iter_chunks():
                    f.write(chunk)
            os.replace(tmp, output)
        except BaseException:
            os.unlink(tmp)
            raise


def run(ctx: Context, args: Namespace) -> int:
    if args.platform:  # as docker 28 answers an API 1.44 daemon
        raise StatusError(1, '"--platform" requires API version 1.48, but the berth daemon '
                             f"API version is {API_VERSION}")
    params: dict[str, Any] = {"names": list(args.args)}
    write_stream(ctx, args.output, "GET", "/images/get", params)
    return 0
