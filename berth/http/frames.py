"""Docker's two stream encodings, sans-IO, shared by the daemon and the CLI.

*Multiplexed stream frames* carry stdin/stdout/stderr over one connection when a container
has no TTY (attach, logs, exec)::

    +--------+---+---+---+------------------------+------------------+
    | stream | 0 | 0 | 0 | payload size, uint32 BE | payload (size B) |
    +--------+---+---+---+------------------------+------------------+

``stream`` is 0 (stdin), 1 (stdout), 2 (stderr) or 3 (Docker's "systemerr": an error the daemon
reports in-band, e.g. a log driver failure).

*JSON message streams* are what pulls, pushes, loads, imports and builds answer: JSON objects,
one after another, usually separated by ``\\r\\n``. A message with ``error``/``errorDetail``
ends the operation with that error, even though the HTTP status was 200.

Both decoders are fed bytes and hand back whole items, so they work the same over a blocking
socket in the CLI and over an asyncio stream in the daemon.
"""

from __future__ import annotations

import codecs

from berth.errors import BerthError, InvalidArgument
from berth.util import jsonlite

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

__all__ = [
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "STDERR",
    "STDIN",
    "STDOUT",
    "SYSTEMERR",
    "FrameDecoder",
    "JSONMessageError",
    "JSONStreamDecoder",
    "StreamFormatError",
    "check_message",
    "encode_frame",
    "encode_json_message",
    "iter_frames",
    "iter_json_messages",
]

STDIN = 0
STDOUT = 1
STDERR = 2
SYSTEMERR = 3
HEADER_SIZE = 8
MAX_PAYLOAD = 0xFFFFFFFF


class StreamFormatError(InvalidArgument):
    """The peer sent bytes that are not a valid frame or JSON message stream."""


class JSONMessageError(BerthError):
    """An operation reported failure inside its JSON message stream (``errorDetail``)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def encode_frame(stream: int, payload: bytes) -> bytes:
    """One frame: the 8-byte header followed by ``payload``."""
    if not 0 <= stream <= SYSTEMERR:
        raise ValueError(f"invalid stream type {stream}")
    size = len(payload)
    if size > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {size} bytes exceeds the 32-bit size field")
    return bytes((stream, 0, 0, 0)) + size.to_bytes(4, "big") + bytes(payload)


class FrameDecoder:
    """Incremental frame decoder: ``feed`` bytes as they arrive, get whole frames back.

    Frames are returned whole rather than as partial payloads so that a write to stdout never
    interleaves with half a frame for stderr; frames are small (the daemon writes what the
    process wrote), so holding one in memory is fine.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add ``data``; return every frame now complete, as ``(stream, payload)``."""
        buf = self._buf
        buf += data
        frames: list[tuple[int, bytes]] = []
        pos = 0
        end = len(buf)
        while end - pos >= HEADER_SIZE:
            stream = buf[pos]
            if stream > SYSTEMERR or buf[pos + 1] or buf[pos + 2] or buf[pos + 3]:
                raise StreamFormatError(
                    f"invalid stream frame header {bytes(buf[pos:pos + HEADER_SIZE]).hex()}"
                )
            size = int.from_bytes(buf[pos + 4:pos + 8], "big")
            if end - pos - HEADER_SIZE < size:
                break
            start = pos + HEADER_SIZE
            frames.append((stream, bytes(buf[start:start + size])))
            pos = start + size
        if pos:
            del buf[:pos]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held of a frame not yet complete."""
        return len(self._buf)

    def close(self) -> None:
        """Declare end of input; a partial frame left over is an error."""
        if self._buf:
            raise StreamFormatError(
                f"stream ended inside a frame ({len(self._buf)} bytes left over)"
            )


def iter_frames(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Frames from an iterable of byte chunks (a response body, a socket reader)."""
    decoder = FrameDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    decoder.close()


def encode_json_message(message: dict[str, Any]) -> bytes:
    """One message of a JSON message stream, ``\\r\\n``-terminated as Docker writes them."""
    return jsonlite.dumps(message).encode() + b"\r\n"


_JSON_START = frozenset('{["-0123456789tfn')
_WHITESPACE = " \t\r\n"


class JSONStreamDecoder:
    """Incremental decoder for concatenated or newline-separated JSON values.

    Docker separates messages with ``\\r\\n`` but its clients (Go's ``json.Decoder``) accept
    any concatenation, and some servers send none; so does this. Messages are returned as
    parsed; :func:`check_message` turns an error message into an exception.
    """

    def __init__(self, max_message: int = 64 << 20) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._buf = ""
        import json  # only where messages are read: ``json`` costs the CLI ~5 ms to import

        self._json = json.JSONDecoder()
        self._max = max_message

    def feed(self, data: bytes) -> list[Any]:
        """Add ``data``; return every value now complete."""
        self._buf += self._text.decode(data)
        return self._drain()

    def _drain(self) -> list[Any]:
        out: list[Any] = []
        buf = self._buf
        pos = 0
        while True:
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            if pos == len(buf):
                break
            if buf[pos] not in _JSON_START:
                raise StreamFormatError(f"invalid JSON message stream near {buf[pos:pos + 40]!r}")
            try:
                value, end = self._json.raw_decode(buf, pos)
            except ValueError:  # json.JSONDecodeError
                # Most likely a message cut in the middle; more bytes will complete it.
                if len(buf) - pos > self._max:
                    raise StreamFormatError("JSON message too large or malformed") from None
                break
            if end == len(buf) and not isinstance(value, dict | list):
                break  # a bare number may go on in the next chunk: wait for a delimiter
            out.append(value)
            pos = end
        self._buf = buf[pos:]
        return out

    def close(self) -> list[Any]:
        """Declare end of input: return a last value if one was pending, else raise."""
        self._buf += self._text.decode(b"", final=True)
        rest = self._buf.strip(_WHITESPACE)
        if not rest:
            self._buf = ""
            return []
        try:
            value, end = self._json.raw_decode(rest)
        except ValueError as e:  # json.JSONDecodeError
            raise StreamFormatError(f"JSON message stream ended mid-message: {e}") from None
        if rest[end:].strip(_WHITESPACE):
            raise StreamFormatError(f"trailing data in JSON message stream: {rest[end:][:40]!r}")
        self._buf = ""
        return [value]


def check_message(message: Any) -> Any:
    """Return ``message`` unless it reports an error, which is raised as JSONMessageError."""
    if isinstance(message, dict):
        detail = message.get("errorDetail")
        if detail:
            text = detail.get("message") if isinstance(detail, dict) else None
            code = detail.get("code") if isinstance(detail, dict) else None
            raise JSONMessageError(
                str(text or message.get("error") or detail),
                code if isinstance(code, int) else None,
            )
        if message.get("error"):
            raise JSONMessageError(str(message["error"]))
    return message


def iter_json_messages(chunks: Iterable[bytes], *, check: bool = True) -> Iterator[Any]:
    """Messages from an iterable of byte chunks; with ``check``, stop at an error message."""
    decoder = JSONStreamDecoder()
    for chunk in chunks:
        for message in decoder.feed(chunk):
            yield check_message(message) if check else message
    for message in decoder.close():
        yield check_message(message) if check else message
