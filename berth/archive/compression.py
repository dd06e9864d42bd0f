"""Compressed layer streams: sniff the format from the magic bytes and decompress while reading.

Registries label layers with a media type, but docker-archive and rootfs imports do not, and
Docker itself sniffs: so do we. Decompression is bounded in memory (``max_length``), and
the total output is limited by the caller (see ``Limits`` in ``tar.py``).
"""

from __future__ import annotations

import enum
import zlib
from typing import BinaryIO, Protocol

from berth.errors import InvalidArgument, NotImplementedYet

__all__ = ["Compression", "Readable", "compressor", "detect", "open_decompressed"]

_CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"
    BZIP2 = "bzip2"
    XZ = "xz"


def detect(head: bytes) -> Compression:
    if head.startswith(b"\x1f\x8b"):
        return Compression.GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return Compression.ZSTD
    if head.startswith(b"BZh"):
        return Compression.BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return Compression.XZ
    return Compression.NONE


class _Prefixed:
    """A stream with some already-read bytes put back in front of it."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1, /) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                out, self._head = self._head, b""
                if n < 0:
                    return out + self._rest.read()
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._rest.read(n)


class _GzipReader:
    """Streaming gzip, including concatenated members (as ``pigz`` and some registries write)."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""
        self._eof = False

    def read(self, n: int = -1, /) -> bytes:
        if n < 0:
            n = _CHUNK
        while not self._eof:
            if self._d.unconsumed_tail:
                data = self._d.unconsumed_tail
            else:
                data = self._tail or self._raw.read(_CHUNK)
                self._tail = b""
                if not data:
                    if not self._d.eof:
                        raise InvalidArgument("unexpected EOF in gzip stream")
                    self._eof = True
                    break
            try:
                out = self._d.decompress(data, n)
            except zlib.error as e:
                raise InvalidArgument(f"invalid gzip stream: {e}") from None
            if self._d.eof:
                self._next_member()
            if out:
                return out
        return b""

    def _next_member(self) -> None:
        rest = self._d.unused_data
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if not rest:
            rest = self._raw.read(_CHUNK)
            if not rest:
                self._eof = True
                return
        if rest.startswith(b"\x1f"):
            self._tail = rest
            return
        # Zero padding after the last member is tolerated, as gzip(1) does; anything else is not.
        while rest:
            if rest.strip(b"\x00"):
                raise InvalidArgument("invalid gzip stream: garbage after the compressed data")
            rest = self._raw.read(_CHUNK)
        self._eof = True


class _ZstdReader:
    def __init__(self, raw: Readable) -> None:
        try:
            import zstandard
        except ImportError:  # pragma: no cover - depends on the installation
            raise NotImplementedYet("zstd layers need the 'zstandard' package") from None
        self._r = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        self._error = zstandard.ZstdError

    def read(self, n: int = -1, /) -> bytes:
        try:
            return self._r.read(n if n >= 0 else _CHUNK)
        except self._error as e:
            raise InvalidArgument(f"invalid zstd stream: {e}") from None


class _StdlibReader:
    def __init__(self, raw: Readable, kind: Compression) -> None:
        import bz2
        import lzma

        self._d = bz2.BZ2Decompressor() if kind is Compression.BZIP2 else lzma.LZMADecompressor()
        self._raw = raw
        self._kind = kind

    def read(self, n: int = -1, /) -> bytes:
        n = n if n >= 0 else _CHUNK
        while True:
            if self._d.eof:
                return b""
            data = b"" if self._d.needs_input is False else self._raw.read(_CHUNK)
            if not data and self._d.needs_input:
                raise InvalidArgument(f"unexpected EOF in {self._kind.value} stream")
            try:
                out = self._d.decompress(data, n)
            except (OSError, EOFError) as e:
                raise InvalidArgument(f"invalid {self._kind.value} stream: {e}") from None
            if out:
                return out


def open_decompressed(stream: BinaryIO | Readable) -> tuple[Readable, Compression]:
    """Wrap ``stream`` so that reading yields the uncompressed bytes; also say what it was."""
    head = b""
    while len(head) < 6:
        more = stream.read(6 - len(head))
        if not more:
            break
        head += more
    kind = detect(head)
    raw = _Prefixed(head, stream)
    if kind is Compression.NONE:
        return raw, kind
    if kind is Compression.GZIP:
        return _GzipReader(raw), kind
    if kind is Compression.ZSTD:
        return _ZstdReader(raw), kind
    return _StdlibReader(raw, kind), kind


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


def compressor(kind: Compression, level: int | None = None) -> _Compressor:
    """An incremental compressor for writing layers (export, commit, push)."""
    if kind is Compression.GZIP:
        return zlib.compressobj(level if level is not None else 6, zlib.DEFLATED,
                                16 + zlib.MAX_WBITS)
    if kind is Compression.ZSTD:
        import zstandard

        c = zstandard.ZstdCompressor(level=level if level is not None else 3).compressobj()
        return c
    raise InvalidArgument(f"unsupported compression for writing: {kind.value}")
