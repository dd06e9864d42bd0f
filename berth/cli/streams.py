"""Copying a container's streams: demultiplexing output, pumping stdin into a hijacked socket.

Output is written as it arrives, frame by frame, so that interleaving of stdout and stderr is
kept; stdin is copied by a thread so the main thread is free to read output, and on stdin's
end the socket is half-closed, which is how the daemon learns the container's stdin is done.
"""

from __future__ import annotations

# The C module: `socket` builds its IntEnums at import, ~8 ms of the CLI's start.
import _socket as socket
import os

from berth.http.frames import STDERR, STDOUT, SYSTEMERR, FrameDecoder

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import IO, Protocol

__all__ = ["StdinPump", "copy_output", "demux_to", "iter_socket"]

_READ_SIZE = 32 * 1024


def _write(stream: IO[bytes], data: bytes) -> None:
    stream.write(data)
    stream.flush()


def demux_to(chunks: Iterable[bytes], stdout: IO[bytes], stderr: IO[bytes]) -> str | None:
    """Write multiplexed frames to stdout/stderr; return an in-band daemon error, if any."""
    decoder = FrameDecoder()
    system_error = None
    for chunk in chunks:
        for stream, payload in decoder.feed(chunk):
            if stream == STDOUT:
                _write(stdout, payload)
            elif stream == STDERR:
                _write(stderr, payload)
            elif stream == SYSTEMERR:
                system_error = payload.decode("utf-8", "replace").strip()
    decoder.close()
    return system_error


def copy_output(chunks: Iterable[bytes], stdout: IO[bytes], stderr: IO[bytes],
                tty: bool) -> str | None:
    """A container's output: raw bytes with a TTY, multiplexed frames without."""
    if tty:
        for chunk in chunks:
            _write(stdout, chunk)
        return None
    return demux_to(chunks, stdout, stderr)


def iter_socket(sock: socket.socket, buffered: bytes = b"") -> Iterable[bytes]:
    """Chunks from a hijacked socket until the daemon closes it."""
    if buffered:
        yield buffered
    while True:
        try:
            data = sock.recv(_READ_SIZE)
        except ConnectionResetError:
            return
        if not data:
            return
        yield data


if TYPE_CHECKING:
    class Escape(Protocol):
        def feed(self, data: bytes) -> tuple[bytes, bool]: ...


class StdinPump:
    """A daemon thread copying ``stdin`` into ``sock``, half-closing it at end of input.

    With ``escape``, input passes through it first; when it reports the detach sequence the
    pump stops, sets ``detached`` and calls ``on_detach`` (which should end the attachment).
    """

    def __init__(self, stdin: IO[bytes], sock: socket.socket, *, escape: Escape | None = None,
                 on_detach: Callable[[], None] | None = None) -> None:
        self._stdin = stdin
        self._sock = sock
        self._escape = escape
        self._on_detach = on_detach
        self.detached = False
        import threading  # only when stdin is attached: ~1 ms of start-up otherwise

        self._thread = threading.Thread(target=self._run, name="stdin", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> bytes:
        try:
            fd = self._stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return self._stdin.read1(_READ_SIZE) if hasattr(self._stdin, "read1") \
                else self._stdin.read(_READ_SIZE)
        # os.read returns what is there (a typed line) instead of waiting to fill a buffer.
        return os.read(fd, _READ_SIZE)

    def _run(self) -> None:
        sock = self._sock
        try:
            while True:
                data = self._read()
                if not data:
                    break
                if self._escape is not None:
                    data, detach = self._escape.feed(data)
                    if data:
                        sock.sendall(data)
                    if detach:
                        self.detached = True
                        if self._on_detach is not None:
                            self._on_detach()
                        return
                    continue
                sock.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            if not self.detached:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
