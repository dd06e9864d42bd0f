"""``berth``'s entry point (the console script): ``--version`` at once, the rest dispatched.

Start-up time is a feature of a CLI that scripts call in loops, so this module imports nothing
beyond ``sys`` at load time. ``--version`` answers before anything else; ``--help`` renders
from the table in :mod:`berth.cli.dispatch` without importing a single verb; a verb imports
its own module, its flags (:mod:`berth.util.flags`) and the HTTP client, and nothing more.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs milliseconds to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO

__all__ = ["main"]


class _TextWriter:
    """Bytes written to a text stream that has no binary buffer (a redirected StringIO)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()


def _binary(stream: IO[str]) -> IO[bytes]:
    buffer = getattr(stream, "buffer", None)
    return buffer if buffer is not None else _TextWriter(stream)  # type: ignore[return-value]


def main(argv: list[str] | None = None, *, stdin: IO[bytes] | None = None,
         stdout: IO[bytes] | None = None, stderr: IO[bytes] | None = None,
         environ: Mapping[str, str] | None = None) -> int:
    """Run one ``berth`` command line; return its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    out = stdout if stdout is not None else _binary(sys.stdout)
    err = stderr if stderr is not None else _binary(sys.stderr)
    if args in (["--version"], ["-v"]):  # the fast path: nothing else to import
        from berth import __version__

        out.write(f"berth version {__version__}\n".encode())
        out.flush()
        return 0
    from berth.cli.dispatch import dispatch

    return dispatch(args, stdin=stdin, out=out, err=err, environ=environ)


def console() -> None:
    """The ``berth`` console script: run, flush, and leave without the interpreter's teardown
    (module clean-up and thread joins cost ~10 ms, a tenth of a short ``run``)."""
    import os

    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
