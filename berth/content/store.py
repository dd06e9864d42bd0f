"""The local content store: immutable, content-addressed blobs on disk.

Layout under ``<data-root>/content``::

    blobs/sha256/<hex>    one read-only file per blob, named by the sha256 of its bytes
    ingest/blob-<random>  a blob being written; renamed into blobs/ once verified
    ingest/ref-<hash>     a resumable ingest, named by the caller's ref (kept across crashes)

A blob becomes visible only whole and verified: it is streamed into ``ingest/`` while hashed
and counted, fsynced, checked against the expected digest and size, made read-only, then
renamed into place (and the directory fsynced). Two ingests of the same blob may race: each
writes its own temp file and the second rename replaces identical bytes, so readers always see
a complete blob. Deleting is unlinking; readers holding the file keep their inode.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from berth.errors import InvalidArgument, NotFound, Unavailable
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
               size: int | None = None, ref: str | None = None) -> Info: ...
    def writer(self, ref: str | None = None) -> Writer: ...
    def status(self, ref: str) -> int: ...
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

    def writer(self, ref: str | None = None) -> Writer:
        """An ingest written piece by piece (a tar being produced, a download): ``write``,
        then ``commit`` to verify and publish, or ``abort``; with ``ref``, resumable."""
        return Writer(self, ref)

    def _ref_path(self, ref: str) -> str:
        return os.path.join(self._ingest, "ref-" + hashlib.sha256(ref.encode()).hexdigest())

    def status(self, ref: str) -> int:
        """Bytes already ingested under ``ref`` (0 if none)."""
        try:
            return os.path.getsize(self._ref_path(ref))
        except FileNotFoundError:
            return 0

    def ingest(self, stream: _Readable, expected: str | None = None,
               size: int | None = None, ref: str | None = None) -> Info:
        """Copy ``stream`` into the store, verifying ``expected`` digest and ``size`` if given.

        A mismatch raises ``InvalidArgument`` and leaves nothing behind. Reads at most
        ``size + 1`` bytes when the size is known, so an over-long stream fails fast. With
        ``ref``, ``stream`` continues an earlier, interrupted ingest from ``status(ref)``.
        """
        want = Digest(expected) if expected is not None else None
        if size is not None and size < 0:
            raise InvalidArgument(f"invalid blob size {size}")
        w = Writer(self, ref)
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
        except InvalidArgument:
            w.abort()
            raise
        except BaseException:
            w.close()  # a broken stream: a ref'd ingest keeps what it got
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

    def clean_ingest(self, max_age: float = 24 * 3600) -> int:
        """Remove temp files of ingests that died with the process, and resumable ones not
        touched for ``max_age`` seconds; call at startup only."""
        n = 0
        now = time.time()
        for name in os.listdir(self._ingest):
            path = os.path.join(self._ingest, name)
            with contextlib.suppress(FileNotFoundError):
                if name.startswith("ref-") and now - os.stat(path).st_mtime < max_age:
                    continue
                os.unlink(path)
                n += 1
        return n


class Writer:
    """One ingest in ``ingest/``: hashed and counted as written; visible only once committed.

    With a ``ref`` (a name the caller chooses, e.g. the digest being downloaded) the partial
    file survives a failure or a crash and a later writer of the same ref resumes after the
    bytes already there (``offset``); one writer per ref at a time (a second one gets
    ``Unavailable``). Without a ref the temp file is anonymous and removed on abort."""

    def __init__(self, store: LocalStore, ref: str | None = None) -> None:
        self._store = store
        self._h = hashlib.sha256()
        self.size = 0
        self._ref = ref
        if ref is None:
            fd, self._tmp = tempfile.mkstemp(prefix="blob-", dir=store._ingest)
        else:
            self._tmp = store._ref_path(ref)
            fd = os.open(self._tmp, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise Unavailable(f"ingest {ref}: another writer holds it") from None
            while chunk := os.read(fd, _CHUNK):  # re-hash what an earlier attempt wrote
                self._h.update(chunk)
                self.size += len(chunk)
        self._f: BinaryIO | None = os.fdopen(fd, "ab" if ref is not None else "wb")

    def digest(self) -> Digest:
        """The digest of what was written so far (what ``commit`` would publish)."""
        return Digest.from_hex(self._h.copy().hexdigest())

    @property
    def offset(self) -> int:
        """Bytes already in the ingest: where a resumed download starts."""
        return self.size

    def write(self, data: bytes) -> int:
        assert self._f is not None, "write after commit or abort"
        self._h.update(data)
        self._f.write(data)
        self.size += len(data)
        return len(data)

    def commit(self, expected: str | None = None, size: int | None = None) -> Info:
        """Flush, fsync, verify ``expected``/``size``, publish; a mismatch discards the
        partial data (it cannot become right by appending)."""
        assert self._f is not None, "commit after commit or abort"
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            got = Digest.from_hex(self._h.hexdigest())
            want = Digest(expected) if expected is not None else None
            if size is not None and self.size != size:
                raise InvalidArgument(
                    f"blob {want or got} size mismatch: expected {size} bytes, got {self.size}")
            if want is not None and got != want:
                raise InvalidArgument(f"digest mismatch: expected {want}, got {got}")
            info = self._store._publish(self._tmp, got)
            self._f.close()
            self._f = None
        except BaseException:
            self.abort(discard=True)
            raise
        return info

    def close(self) -> None:
        """Stop writing; a ref'd ingest keeps its bytes for a later resume."""
        self.abort(discard=self._ref is None)

    def abort(self, discard: bool = True) -> None:
        if discard:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
        if self._f is not None:
            self._f.close()
            self._f = None
