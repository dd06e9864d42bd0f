"""The local content store: immutable, content-addressed blobs on disk.

Layout under ``<data-root>/content``::

    blobs/sha256/<hex>    one read-only file per blob, named by the sha256 of its bytes
    ingest/<random>       a blob being written; renamed into blobs/ once verified

A blob becomes visible only whole and verified: it is streamed into ``ingest/`` while hashed
and counted, fsynced, checked against the expected digest and size, made read-only, then
renamed into place (and the directory fsynced). Two ingests of the same blob may race: each
writes its own temp file and the second rename replaces identical bytes, so readers always see
a complete blob. Deleting is unlinking; readers holding the file keep their inode.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from berth.errors import InvalidArgument, NotFound
from berth.oci.digest import Digest
from berth.util import fsync_dir

__all__ = ["ContentStore", "Info", "LocalStore", "Writer"]

_CHUNK = 1 << 20


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Info:
    digest: Digest
    size: int
    created: float  # unix time the blob was committed


class ContentStore(Protocol):
    """Blobs by digest. Lifecycle: ``ingest`` (verify, then publish atomically) → ``open`` /
    ``info`` / ``walk`` any number of times → ``delete`` when nothing references the blob.
    The store keeps no references itself: garbage collection is the caller's (see ``image``)."""

    def ingest(self, stream: _Readable, expected: str | None = None,
               size: int | None = None) -> Info: ...
    def writer(self) -> Writer: ...
    def put(self, data: bytes, expected: str | None = None) -> Info: ...
    def open(self, digest: str) -> BinaryIO: ...
    def read(self, digest: str) -> bytes: ...
    def exists(self, digest: str) -> bool: ...
    def info(self, digest: str) -> Info: ...
    def delete(self, digest: str) -> None: ...
    def walk(self) -> Iterator[Info]: ...
    def path(self, digest: str) -> str: ...


class LocalStore:
    """``ContentStore`` on a local directory (``<data-root>/content``)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._blobs = os.path.join(root, "blobs", "sha256")
        self._ingest = os.path.join(root, "ingest")
        os.makedirs(self._blobs, exist_ok=True)
        os.makedirs(self._ingest, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self._blobs, Digest(digest).hex)

    def writer(self) -> Writer:
        """An ingest written piece by piece (a tar being produced, a download): ``write``,
        then ``commit`` to verify and publish, or ``abort``."""
        return Writer(self)

    def ingest(self, stream: _Readable, expected: str | None = None,
               size: int | None = None) -> Info:
        """Copy ``stream`` into the store, verifying ``expected`` digest and ``size`` if given.

        A mismatch raises ``InvalidArgument`` and leaves nothing behind. Reads at most
        ``size + 1`` bytes when the size is known, so an over-long stream fails fast.
        """
        want = Digest(expected) if expected is not None else None
        if size is not None and size < 0:
            raise InvalidArgument(f"invalid blob size {size}")
        w = Writer(self)
        try:
            while True:
                limit = _CHUNK if size is None else min(_CHUNK, size + 1 - w.size)
                if limit <= 0:
                    raise InvalidArgument(
                        f"blob {want or ''} is larger than the expected {size} bytes")
                chunk = stream.read(limit)
                if not chunk:
                    break
                w.write(chunk)
            return w.commit(expected, size)
        except BaseException:
            w.abort()
            raise

    def _publish(self, tmp: str, got: Digest) -> Info:
        os.chmod(tmp, 0o444)
        os.replace(tmp, os.path.join(self._blobs, got.hex))
        fsync_dir(self._blobs)
        return self.info(got)

    def put(self, data: bytes, expected: str | None = None) -> Info:
        import io

        return self.ingest(io.BytesIO(data), expected, len(data))

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def info(self, digest: str) -> Info:
        try:
            st = os.stat(self.path(digest))
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None
        return Info(Digest(digest), st.st_size, st.st_mtime)

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def walk(self) -> Iterator[Info]:
        for name in sorted(os.listdir(self._blobs)):
            try:
                yield self.info(Digest.from_hex(name))
            except (NotFound, InvalidArgument):
                continue  # vanished meanwhile, or a stray file that is not a blob

    def clean_ingest(self) -> int:
        """Remove temp files of ingests that died with the process; call at startup only."""
        n = 0
        for name in os.listdir(self._ingest):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self._ingest, name))
                n += 1
        return n


class Writer:
    """One ingest in ``ingest/``: hashed and counted as written; visible only once committed."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        fd, self._tmp = tempfile.mkstemp(prefix="blob-", dir=store._ingest)
        self._f: BinaryIO | None = os.fdopen(fd, "wb")
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        assert self._f is not None, "write after commit or abort"
        self._h.update(data)
        self._f.write(data)
        self.size += len(data)
        return len(data)

    def commit(self, expected: str | None = None, size: int | None = None) -> Info:
        """Flush, fsync, verify ``expected``/``size``, publish; aborts on a mismatch."""
        assert self._f is not None, "commit after commit or abort"
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None
            got = Digest.from_hex(self._h.hexdigest())
            want = Digest(expected) if expected is not None else None
            if size is not None and self.size != size:
                raise InvalidArgument(
                    f"blob {want or got} size mismatch: expected {size} bytes, got {self.size}")
            if want is not None and got != want:
                raise InvalidArgument(f"digest mismatch: expected {want}, got {got}")
            info = self._store._publish(self._tmp, got)
        except BaseException:
            self.abort()
            raise
        return info

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
