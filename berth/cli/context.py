"""What a verb gets to work with: the daemon address, a client, the three standard streams.

Passed explicitly to every verb (no module-level state), so tests run verbs in-process with
byte buffers for stdin/stdout/stderr and a fake daemon's socket for the host.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO

    from berth.http.client import Client

__all__ = ["Context", "StatusError"]


class StatusError(Exception):
    """End the command: print ``message`` on stderr (and ``stdout`` on stdout), exit ``code``."""

    def __init__(self, code: int, message: str | None = None, stdout: str | None = None) -> None:
        super().__init__(message or "")
        self.code = code
        self.message = message
        self.stdout = stdout


class Context:
    """The environment of one command invocation."""

    def __init__(self, host: str, *, verb: str = "", debug: bool = False,
                 log_level: str = "info", stdin: IO[bytes] | None = None,
                 stdout: IO[bytes] | None = None, stderr: IO[bytes] | None = None,
                 environ: Mapping[str, str] | None = None, command: str = "") -> None:
        self.host = host
        self.command = command or verb  # the canonical verb (``volume ls`` for ``volume list``)
        self.environ = environ if environ is not None else os.environ
        self.verb = verb
        self.debug = debug
        self.log_level = log_level
        self.stdin = stdin if stdin is not None else sys.stdin.buffer
        self.stdout = stdout if stdout is not None else sys.stdout.buffer
        self.stderr = stderr if stderr is not None else sys.stderr.buffer
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from berth.http.client import Client

            self._client = Client(self.host)
        return self._client

    def out(self, text: str = "", end: str = "\n") -> None:
        self.stdout.write((text + end).encode("utf-8", "surrogateescape"))
        self.stdout.flush()

    def err(self, text: str = "", end: str = "\n") -> None:
        self.stderr.write((text + end).encode("utf-8", "surrogateescape"))
        self.stderr.flush()

    def is_tty(self, stream: IO[bytes]) -> bool:
        try:
            return os.isatty(stream.fileno())
        except (AttributeError, OSError, ValueError):
            return False
