"""``berth save``: images to a docker-archive tar, to a file or stdout."""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser

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
        fd, tmp = tempfile.mkstemp(prefix=".berth-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in response.iter_chunks():
                    f.write(chunk)
            os.chmod(tmp, 0o644 & ~_umask())
            os.replace(tmp, output)
        except BaseException:
            os.unlink(tmp)
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def run(ctx: Context, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"names": list(args.args), "platform": args.platform or None}
    write_stream(ctx, args.output, "GET", "/images/get", params)
    return 0
