"""The server side of RFC 6455 websockets, as much as ``/containers/{id}/attach/ws`` needs.

The handshake answers a client's ``Sec-WebSocket-Key`` with the SHA-1 of it and the RFC's
GUID; a missing or malformed key, or a version other than 13, is a ``400`` (with
``Sec-WebSocket-Version: 13``, so the client knows what we speak), as dockerd answers.

Framing, sans-IO: :func:`encode_frame` builds one unmasked server frame; :class:`FrameReader`
is fed bytes and returns whole frames, checking what a server must check (client frames are
masked, no reserved bits, control frames short and unfragmented, continuation frames only
inside a fragmented message). A protocol breach is a :class:`ProtocolError` carrying the close
code to answer with.

Frame layout (RFC 6455, 5.2)::

    byte 0: FIN | RSV1-3 | opcode      byte 1: MASK | payload length (7 bits)
    then 2 or 8 bytes of extended length (126 / 127), the 4-byte mask key if MASK,
    then the payload, XORed with the key byte by byte
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "PONG",
    "TEXT",
    "Frame",
    "FrameReader",
    "ProtocolError",
    "accept_key",
    "close_payload",
    "encode_frame",
    "handshake_error",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VERSION = "13"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA = frozenset({CONTINUATION, TEXT, BINARY})
_CONTROL = frozenset({CLOSE, PING, PONG})

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009
MAX_FRAME = 16 << 20


class ProtocolError(Exception):
    """The client broke the framing rules; ``code`` is the close status to send back."""

    def __init__(self, message: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode("latin-1")).digest()).decode()


def handshake_error(headers: dict[str, str]) -> str | None:
    """Why the request is not a websocket handshake we accept, or None when it is.

    ``headers`` are lower-cased names, as the HTTP server hands them over."""
    if "websocket" not in headers.get("upgrade", "").lower():
        return "not a websocket handshake: missing 'Upgrade: websocket'"
    if "upgrade" not in headers.get("connection", "").lower():
        return "not a websocket handshake: missing 'Connection: Upgrade'"
    key = headers.get("sec-websocket-key", "").strip()
    if not key:
        return "missing Sec-WebSocket-Key"
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        return "invalid Sec-WebSocket-Key: must be 16 bytes in base64"
    if headers.get("sec-websocket-version", "").strip() != VERSION:
        return f"unsupported websocket version (this server speaks {VERSION})"
    return None


def encode_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """One unmasked frame, as a server sends them."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = bytes((first, size))
    elif size < 1 << 16:
        header = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + size.to_bytes(8, "big")
    return header + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return code.to_bytes(2, "big") + reason.encode()[:123]


def _unmask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    # XOR with the key repeated to the payload's length, as one big integer operation.
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        len(payload), "little")


class FrameReader:
    """Feed client bytes, get whole frames back (control frames included, in order)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._fragmented = False   # inside a message whose first frame had FIN clear

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Frame | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        fin, opcode = bool(first & 0x80), first & 0x0F
        if first & 0x70:
            raise ProtocolError("reserved bits set without a negotiated extension")
        if opcode not in _DATA and opcode not in _CONTROL:
            raise ProtocolError(f"unknown opcode {opcode:#x}")
        if not second & 0x80:
            raise ProtocolError("client frames must be masked")
        size = second & 0x7F
        offset = 2
        if size == 126:
            if len(buf) < 4:
                return None
            size, offset = int.from_bytes(buf[2:4], "big"), 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size, offset = int.from_bytes(buf[2:10], "big"), 10
        if opcode in _CONTROL and (size > 125 or not fin):
            raise ProtocolError("control frames must be short and unfragmented")
        if size > self._max:
            raise ProtocolError(f"frame of {size} bytes is too big", CLOSE_TOO_BIG)
        if len(buf) < offset + 4 + size:
            return None
        key = bytes(buf[offset:offset + 4])
        payload = _unmask(bytes(buf[offset + 4:offset + 4 + size]), key)
        del buf[:offset + 4 + size]
        if opcode == CONTINUATION and not self._fragmented:
            raise ProtocolError("continuation frame outside a fragmented message")
        if opcode in (TEXT, BINARY) and self._fragmented:
            raise ProtocolError("new data frame inside a fragmented message")
        if opcode in _DATA:
            self._fragmented = not fin
        return Frame(opcode, payload, fin)
