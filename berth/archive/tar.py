"""A streaming tar reader with limits, hashing every byte it consumes.

Why not ``tarfile``: it reads PAX and GNU long-name headers of any declared size into memory,
cannot hash the raw stream it consumes, and costs a Python object per attribute per entry.
This reader parses the three formats layers come in (ustar, GNU, PAX), bounds every piece of
metadata, and hands file contents out in large chunks, so that the digest of the uncompressed
stream (a layer's diff ID) falls out of the same pass that unpacks it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from berth.archive.compression import Readable
from berth.errors import InvalidArgument

__all__ = ["Entry", "Limits", "TarReader", "TarType"]

BLOCK = 512
_CHUNK = 1 << 20


class TarType:
    REG = "0"
    LINK = "1"
    SYMLINK = "2"
    CHAR = "3"
    BLOCK = "4"
    DIR = "5"
    FIFO = "6"
    CONT = "7"


@dataclass(frozen=True)
class Limits:
    """Bounds against hostile archives; ``None`` means unbounded."""

    max_meta_size: int = 1 << 20        # one PAX header or GNU long name
    max_path_len: int = 4096            # PATH_MAX
    max_entries: int | None = 10_000_000
    max_bytes: int | None = None        # uncompressed bytes of the whole stream


@dataclass
class Entry:
    name: str
    type: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: float
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    atime: float | None = None
    xattrs: dict[str, bytes] = field(default_factory=dict)


def _nul_str(b: bytes) -> str:
    i = b.find(b"\x00")
    if i >= 0:
        b = b[:i]
    return b.decode("utf-8", "surrogateescape")


def _number(b: bytes, what: str) -> int:
    if b and b[0] & 0x80:
        # GNU base-256: big-endian two's complement, first byte 0x80 (positive) or 0xff.
        val = int.from_bytes(b, "big", signed=False)
        if b[0] == 0xFF:
            val -= 1 << (8 * len(b))
        else:
            val &= ~(0x80 << (8 * (len(b) - 1)))
        return val
    try:
        return int(b.partition(b"\x00")[0] or b"0", 8)  # int() ignores surrounding spaces
    except ValueError:
        if not b.partition(b"\x00")[0].strip():
            return 0
        raise InvalidArgument(f"invalid tar header: bad {what} field") from None


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156], "checksum")
    unsigned = sum(block) - sum(block[148:156]) + 8 * 0x20
    if stored == unsigned:
        return True
    signed = sum((c - 256 if c > 127 else c) for c in block[:148] + block[156:]) + 8 * 0x20
    return stored == signed


def _parse_pax(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        sp = data.find(b" ", pos)
        if sp < 0:
            raise InvalidArgument("invalid tar header: malformed PAX record")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise InvalidArgument("invalid tar header: malformed PAX record") from None
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1:end] != b"\n":
            raise InvalidArgument("invalid tar header: malformed PAX record")
        key, eq, value = data[sp + 1:end - 1].partition(b"=")
        if not eq:
            raise InvalidArgument("invalid tar header: malformed PAX record")
        out[key.decode("utf-8", "surrogateescape")] = value
        pos = end
    return out


class TarReader:
    """Iterate the entries of an uncompressed tar stream; read each file's data as it comes.

    Every byte taken from ``source`` goes through ``sha256``; after iteration ends, ``drain()``
    has consumed any trailer so ``digest()`` is the digest of the whole stream.
    """

    def __init__(self, source: Readable, limits: Limits | None = None) -> None:
        self._src = source
        self.limits = limits or Limits()
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self._pos = 0
        self.total = 0          # bytes consumed from source
        self._remaining = 0     # data bytes of the current entry not yet read
        self._pad = 0
        self._entries = 0
        self._global: dict[str, bytes] = {}

    # -- raw byte supply -------------------------------------------------
    def _fill(self, want: int) -> bool:
        """Make at least ``want`` unread bytes available; False at EOF."""
        while len(self._buf) - self._pos < want:
            chunk = self._read_source(max(_CHUNK, want))
            if not chunk:
                return False
            if self._pos:
                del self._buf[:self._pos]
                self._pos = 0
            self._buf += chunk
        return True

    def _read_source(self, n: int) -> bytes:
        chunk = self._src.read(n)
        if chunk:
            self._hash.update(chunk)
            self.total += len(chunk)
            if self.limits.max_bytes is not None and self.total > self.limits.max_bytes:
                raise InvalidArgument(
                    f"archive exceeds the limit of {self.limits.max_bytes} uncompressed bytes")
        return chunk

    def _take(self, n: int) -> bytes:
        if not self._fill(n):
            raise InvalidArgument("unexpected EOF in tar archive")
        out = bytes(self._buf[self._pos:self._pos + n])
        self._pos += n
        return out

    def _take_upto(self, n: int) -> bytes:
        if len(self._buf) == self._pos and not self._fill(1):
            raise InvalidArgument("unexpected EOF in tar archive")
        avail = len(self._buf) - self._pos
        k = min(n, avail)
        out = bytes(memoryview(self._buf)[self._pos:self._pos + k])
        self._pos += k
        return out

    # -- entry data ------------------------------------------------------
    def chunks(self) -> Iterator[bytes]:
        """The current entry's data, in chunks of up to 1 MiB."""
        while self._remaining:
            if self._pos == len(self._buf) and self._remaining >= _CHUNK:
                # Big file data goes straight from the source to the caller: one copy less.
                chunk = self._read_source(_CHUNK)
                if not chunk:
                    raise InvalidArgument("unexpected EOF in tar archive")
                self._remaining -= len(chunk)
                yield chunk
                continue
            chunk = self._take_upto(min(self._remaining, _CHUNK))
            self._remaining -= len(chunk)
            yield chunk
        if self._pad:
            self._take(self._pad)
            self._pad = 0

    def skip(self) -> None:
        for _ in self.chunks():
            pass

    def _read_meta(self, size: int, what: str) -> bytes:
        if size > self.limits.max_meta_size:
            raise InvalidArgument(f"invalid tar header: {what} of {size} bytes is too large")
        data = self._take(size)
        pad = -size % BLOCK
        if pad:
            self._take(pad)
        return data

    # -- headers ---------------------------------------------------------
    def __iter__(self) -> Iterator[Entry]:
        return self

    def __next__(self) -> Entry:
        self.skip()
        entry = self._next_header()
        if entry is None:
            raise StopIteration
        return entry

    def _next_header(self) -> Entry | None:
        pax: dict[str, bytes] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            if not self._fill(BLOCK):
                if len(self._buf) - self._pos:
                    raise InvalidArgument("unexpected EOF in tar archive")
                return None  # clean EOF at a header boundary, as Go's archive/tar accepts
            block = self._take(BLOCK)
            if block.count(0) == BLOCK:
                if self._fill(BLOCK) and self._take(BLOCK).count(0) != BLOCK:
                    raise InvalidArgument("invalid tar header: data after end-of-archive block")
                return None
            if not _checksum_ok(block):
                raise InvalidArgument("invalid tar header: checksum mismatch (not a tar archive?)")
            typeflag = chr(block[156]) if block[156] else TarType.REG
            size = _number(block[124:136], "size")
            if size < 0:
                raise InvalidArgument("invalid tar header: negative size")
            if typeflag in ("x", "g"):
                records = _parse_pax(self._read_meta(size, "PAX header"))
                if typeflag == "g":
                    self._global.update(records)
                else:
                    pax.update(records)
                continue
            if typeflag in ("L", "K"):
                value = _nul_str(self._read_meta(size, "GNU long name"))
                if typeflag == "L":
                    long_name = value
                else:
                    long_link = value
                continue
            if typeflag == "S" or any(k.startswith("GNU.sparse.") for k in pax):
                raise InvalidArgument("sparse files in layers are not supported")
            return self._make_entry(block, typeflag, size, {**self._global, **pax},
                                    long_name, long_link)

    def _make_entry(self, block: bytes, typeflag: str, size: int, pax: dict[str, bytes],
                    long_name: str | None, long_link: str | None) -> Entry:
        self._entries += 1
        if self.limits.max_entries is not None and self._entries > self.limits.max_entries:
            raise InvalidArgument(f"archive has more than {self.limits.max_entries} entries")
        name = _nul_str(block[0:100])
        if block[257:263] == b"ustar\x00":
            prefix = _nul_str(block[345:500])
            if prefix:
                name = prefix + "/" + name
        if long_name is not None:
            name = long_name
        linkname = long_link if long_link is not None else _nul_str(block[157:257])
        entry = Entry(
            name=name, type=typeflag, mode=_number(block[100:108], "mode") & 0o7777,
            uid=_number(block[108:116], "uid"), gid=_number(block[116:124], "gid"),
            size=size, mtime=float(_number(block[136:148], "mtime")), linkname=linkname,
            devmajor=_number(block[329:337], "devmajor"),
            devminor=_number(block[337:345], "devminor"),
        )
        for key, raw in pax.items():
            self._apply_pax(entry, key, raw)
        if len(entry.name.encode("utf-8", "surrogateescape")) > self.limits.max_path_len:
            raise InvalidArgument("invalid tar header: path name too long")
        if entry.type in (TarType.LINK, TarType.SYMLINK, TarType.DIR, TarType.CHAR,
                          TarType.BLOCK, TarType.FIFO):
            # Only regular files carry data; a size on anything else is skipped, as Go does
            # for links and devices.
            data_size = 0 if entry.type in (TarType.LINK, TarType.SYMLINK, TarType.DIR) \
                else entry.size
        else:
            data_size = entry.size
        self._remaining = data_size
        self._pad = -data_size % BLOCK
        return entry

    @staticmethod
    def _apply_pax(entry: Entry, key: str, raw: bytes) -> None:
        try:
            if key == "path":
                entry.name = raw.decode("utf-8", "surrogateescape")
            elif key == "linkpath":
                entry.linkname = raw.decode("utf-8", "surrogateescape")
            elif key == "size":
                entry.size = int(raw)
            elif key == "uid":
                entry.uid = int(raw)
            elif key == "gid":
                entry.gid = int(raw)
            elif key == "mtime":
                entry.mtime = float(raw)
            elif key == "atime":
                entry.atime = float(raw)
            elif key.startswith("SCHILY.xattr."):
                entry.xattrs[key[len("SCHILY.xattr."):]] = raw
        except ValueError:
            raise InvalidArgument(f"invalid tar header: bad PAX value for {key}") from None
        if entry.size < 0:
            raise InvalidArgument("invalid tar header: negative size")

    def drain(self) -> None:
        """Consume the rest of the stream (trailer padding) so the digest covers all of it."""
        self.skip()
        self._pos = len(self._buf)
        while self._fill(_CHUNK):
            self._pos = len(self._buf)
        self._pos = len(self._buf)

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
