"""Apply a layer tar stream into a directory, safely, converting whiteouts.

Safety model: every path in the archive is cleaned lexically (an entry that climbs above the
root with ``..`` is refused, an absolute path is taken relative to the root), and every parent
directory is then reached inside ``dest`` by ``berth.util.rootpath`` (why that cannot leave the
root is written there), creating missing ones and refusing a non-directory, so no write ever
lands outside ``dest``, whatever links the archive or earlier layers planted. Final components
are never followed: files are created ``O_EXCL|O_NOFOLLOW`` after removing whatever was there,
hard links are made with ``linkat`` without following, and metadata is set on the entry itself.

Whiteouts (``.wh.NAME``) and opaque markers (``.wh..wh..opq``) are, by ``WhiteoutMode``:
``OVERLAY``: written in overlayfs' own format, a 0/0 character device and the
``trusted.overlay.opaque=y`` xattr, for a layer applied into a snapshot's upper directory;
``REMOVE``: carried out, deleting what they hide, for a layer applied onto a flattened tree.

Duplicate entries: the last one wins, except that a directory over a directory only updates
its metadata (Docker's rule). Directory mtimes are set at the end, after their contents.
"""

from __future__ import annotations

import enum
import errno
import os
import shutil
import stat
from dataclasses import dataclass
from typing import BinaryIO

from berth.archive.compression import Compression, Readable, open_decompressed
from berth.archive.tar import Entry, Limits, TarReader, TarType
from berth.errors import InvalidArgument
from berth.util.rootpath import Missing, RootWalker

__all__ = ["ApplyResult", "WhiteoutMode", "apply_layer", "clean_path"]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"

_O_DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_DIR_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FD_CACHE = 256
_KNOWN_TYPES = frozenset({TarType.REG, TarType.CONT, TarType.DIR, TarType.SYMLINK, TarType.LINK,
                          TarType.CHAR, TarType.BLOCK, TarType.FIFO})
_HOST_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EMFILE,
                          errno.ENFILE, errno.ENOMEM})


class WhiteoutMode(enum.Enum):
    OVERLAY = "overlay"
    REMOVE = "remove"


@dataclass(frozen=True)
class ApplyResult:
    diff_id: str          # sha256 of the uncompressed tar stream
    tar_size: int         # bytes of the uncompressed tar stream
    entries: int
    compression: Compression


def clean_path(name: str) -> tuple[str, ...]:
    """The components of an archive path under the root; refuse ``..`` that climbs out."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise InvalidArgument(f"invalid tar entry {name!r}: path escapes the root")
            parts.pop()
            continue
        parts.append(part)
    return tuple(parts)


class _Tree:
    """Directory fds under one root, reached through a :class:`RootWalker`, with each
    archive directory's resolution remembered until something is removed."""

    def __init__(self, root: str) -> None:
        self.root_fd = os.open(root, _O_DIR_READ)
        self.walker = RootWalker(self.root_fd, cache_size=_FD_CACHE)
        self._logical: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.created_dirs = self.walker.created  # the same list: the applier reads, clears it

    def close(self) -> None:
        self.walker.close()
        os.close(self.root_fd)

    def invalidate(self) -> None:
        """Forget every cached resolution: called whenever a directory or link goes away."""
        self.walker.forget()
        self._logical.clear()

    def dir_fd(self, parts: tuple[str, ...], create: bool) -> int:
        """An fd (owned by the cache: use it before the next call) for the directory at
        ``parts``, resolving symlinks inside the root; missing ones are created if asked."""
        phys = self._logical.get(parts)
        if phys is not None:
            try:
                return self.walker.dir_fd(phys)
            except OSError:
                self.invalidate()
        try:
            phys = self.walker.resolve(parts, directory=True,
                                       missing=Missing.CREATE if create else Missing.FAIL)
        except NotADirectoryError:
            raise InvalidArgument(
                f"cannot unpack under {'/'.join(parts)}: not a directory") from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise InvalidArgument(
                    f"{'/'.join(parts)}: too many levels of symbolic links") from None
            raise
        self._logical[parts] = phys
        return self.walker.dir_fd(phys)


def _set_xattrs(target: int | str, xattrs: dict[str, bytes], follow: bool = True) -> None:
    for key, value in xattrs.items():
        if key.startswith("trusted.overlay."):
            continue  # never let a layer forge overlayfs' own metadata
        try:
            os.setxattr(target, key, value, follow_symlinks=follow)
        except OSError as e:
            # As Docker: not every filesystem or privilege level supports every namespace.
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _Applier:
    def __init__(self, dest: str, reader: TarReader, mode: WhiteoutMode) -> None:
        self.tree = _Tree(dest)
        self.reader = reader
        self.mode = mode
        self.unpacked: set[tuple[str, ...]] = set()
        self.dir_times: list[tuple[tuple[str, ...], int, int]] = []
        self.entries = 0

    def run(self) -> None:
        try:
            for entry in self.reader:
                self.entries += 1
                self._entry(entry)
            self._dir_times()
        finally:
            self.tree.close()

    def _entry(self, e: Entry) -> None:
        parts = clean_path(e.name)
        if not parts:
            if e.type == TarType.DIR:
                self._meta_fd(self.tree.root_fd, e)
                self.dir_times.append(((), _ns(e.atime or e.mtime), _ns(e.mtime)))
            return
        base = parts[-1]
        parent = parts[:-1]
        if parts[0].startswith(WHITEOUT_META_PREFIX) and parts != (WHITEOUT_OPAQUE,):
            return  # aufs bookkeeping (.wh..wh.plnk and friends), as Docker skips it
        pfd = self.tree.dir_fd(parent, create=True)
        if self.tree.created_dirs:
            if self.mode is WhiteoutMode.REMOVE:
                self.unpacked.update(self.tree.created_dirs)
            self.tree.created_dirs.clear()
        if base.startswith(WHITEOUT_PREFIX):
            if base == WHITEOUT_OPAQUE:
                self._opaque(parent, pfd)
            else:
                self._whiteout(parts, pfd, base[len(WHITEOUT_PREFIX):], e)
            return
        t = e.type
        if t in (TarType.REG, TarType.CONT):
            self._file(pfd, base, e)  # replaces what is there itself, saving a stat
        elif t not in _KNOWN_TYPES:
            return  # unknown types carry nothing we can create; Go's archive skips them too
        else:
            self._replace_existing(pfd, base, t == TarType.DIR)
            if t == TarType.DIR:
                self._dir(pfd, base, parts, e)
            elif t == TarType.SYMLINK:
                self._symlink(pfd, base, e)
            elif t == TarType.LINK:
                self._hardlink(pfd, base, e)
            else:
                self._node(pfd, base, e)
        if self.mode is WhiteoutMode.REMOVE:
            self.unpacked.add(parts)

    # -- creating --------------------------------------------------------
    def _replace_existing(self, pfd: int, base: str, new_is_dir: bool) -> None:
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode) and new_is_dir:
            return
        self._remove(pfd, base, st)

    def _remove(self, pfd: int, base: str, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self.tree.invalidate()

    def _file(self, pfd: int, base: str, e: Entry) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(base, flags, 0o600, dir_fd=pfd)
        except FileExistsError:
            self._replace_existing(pfd, base, False)
            fd = os.open(base, flags, 0o600, dir_fd=pfd)
        try:
            for chunk in self.reader.chunks():
                _write_all(fd, chunk)
            self._meta_fd(fd, e)
            os.utime(fd, ns=(_ns(e.atime or e.mtime), _ns(e.mtime)))
        finally:
            os.close(fd)

    def _dir(self, pfd: int, base: str, parts: tuple[str, ...], e: Entry) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            pass
        fd = os.open(base, _O_DIR_READ, dir_fd=pfd)
        try:
            self._meta_fd(fd, e)
        finally:
            os.close(fd)
        self.dir_times.append((parts, _ns(e.atime or e.mtime), _ns(e.mtime)))

    def _meta_fd(self, fd: int, e: Entry) -> None:
        # chown first: it clears setuid/setgid bits and file capabilities.
        os.fchown(fd, e.uid, e.gid)
        os.fchmod(fd, e.mode)
        if e.xattrs:
            _set_xattrs(fd, e.xattrs)

    def _symlink(self, pfd: int, base: str, e: Entry) -> None:
        # The target is stored as is: we never follow links while unpacking, so a link that
        # points out of the tree is harmless here, and inside a container it resolves there.
        os.symlink(e.linkname, base, dir_fd=pfd)
        self._meta_nofollow(pfd, base, e, chmod=False)

    def _node(self, pfd: int, base: str, e: Entry) -> None:
        if e.type == TarType.FIFO:
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            kind = stat.S_IFCHR if e.type == TarType.CHAR else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(e.devmajor, e.devminor), dir_fd=pfd)
        self._meta_nofollow(pfd, base, e, chmod=True)

    def _meta_nofollow(self, pfd: int, base: str, e: Entry, chmod: bool) -> None:
        os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            # The entry was created just now by us and is not a symlink: following is moot.
            os.chmod(base, e.mode, dir_fd=pfd)
        if e.xattrs:
            _set_xattrs(f"/proc/self/fd/{pfd}/{base}", e.xattrs, follow=False)
        os.utime(base, ns=(_ns(e.atime or e.mtime), _ns(e.mtime)), dir_fd=pfd,
                 follow_symlinks=False)

    def _hardlink(self, pfd: int, base: str, e: Entry) -> None:
        target = clean_path(e.linkname)
        if not target:
            raise InvalidArgument(f"invalid hard link {e.name!r} to the root directory")
        pfd = os.dup(pfd)  # the next resolution may evict it from the cache
        try:
            try:
                tfd = self.tree.dir_fd(target[:-1], create=False)
                os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                raise InvalidArgument(
                    f"invalid hard link {e.name!r}: target {e.linkname!r} not found in the "
                    "layer") from None
            except PermissionError:
                raise InvalidArgument(
                    f"invalid hard link {e.name!r} to {e.linkname!r}") from None
        finally:
            os.close(pfd)

    # -- whiteouts -------------------------------------------------------
    def _whiteout(self, parts: tuple[str, ...], pfd: int, name: str, e: Entry) -> None:
        if not name or name in (".", ".."):
            raise InvalidArgument(f"invalid whiteout entry {e.name!r}")
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None:
            self._remove(pfd, name, st)
        if self.mode is WhiteoutMode.OVERLAY:
            os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
            os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)

    def _opaque(self, parent: tuple[str, ...], pfd: int) -> None:
        if self.mode is WhiteoutMode.OVERLAY:
            os.setxattr(f"/proc/self/fd/{pfd}", OVERLAY_OPAQUE_XATTR, b"y")
            return
        self._remove_not_unpacked(parent, pfd)

    def _remove_not_unpacked(self, parent: tuple[str, ...], pfd: int) -> None:
        rfd = os.open(".", _O_DIR_READ, dir_fd=pfd)
        try:
            for name in os.listdir(rfd):
                path = (*parent, name)
                st = os.stat(name, dir_fd=rfd, follow_symlinks=False)
                if path not in self.unpacked:
                    self._remove(rfd, name, st)
                elif stat.S_ISDIR(st.st_mode):
                    cfd = os.open(name, _O_DIR_PATH, dir_fd=rfd)
                    try:
                        self._remove_not_unpacked(path, cfd)
                    finally:
                        os.close(cfd)
        finally:
            os.close(rfd)

    def _dir_times(self) -> None:
        for parts, atime, mtime in reversed(self.dir_times):
            try:
                if not parts:
                    os.utime(self.tree.root_fd, ns=(atime, mtime))
                    continue
                pfd = self.tree.dir_fd(parts[:-1], create=False)
                os.utime(parts[-1], ns=(atime, mtime), dir_fd=pfd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError, InvalidArgument):
                continue  # removed or replaced by a later entry


def _ns(t: float) -> int:
    return int(t * 1_000_000_000)


def apply_layer(stream: BinaryIO | Readable, dest: str, *,
                whiteouts: WhiteoutMode = WhiteoutMode.OVERLAY, limits: Limits | None = None,
                expected_diff_id: str | None = None) -> ApplyResult:
    """Unpack the (possibly compressed) layer ``stream`` into the existing directory ``dest``.

    Returns the diff ID computed while streaming. With ``expected_diff_id``, a mismatch is an
    ``InvalidArgument`` raised after unpacking: the caller discards ``dest``.
    """
    source, compression = open_decompressed(stream)
    reader = TarReader(source, limits)
    applier = _Applier(dest, reader, whiteouts)
    try:
        applier.run()
    except OSError as e:
        if e.errno in _HOST_ERRNOS:
            raise  # the host's trouble, not the archive's
        raise InvalidArgument(f"failed to apply layer: {e}") from e
    reader.drain()
    diff_id = reader.digest()
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise InvalidArgument(
            f"layer digest mismatch: expected {expected_diff_id}, got {diff_id}")
    return ApplyResult(diff_id, reader.total, applier.entries, compression)
