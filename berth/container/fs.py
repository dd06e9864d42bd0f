"""A container's filesystem seen from the daemon: paths resolved as a chroot would, stats in
Go's FileMode bits, and tar streams in and out (``docker cp``).

Safety: a path from the client is resolved inside the container root by
``berth.util.rootpath`` (why that cannot leave the root is written there), so ``../../etc``
and links pointing outside never reach a host file. Only the last component may be missing,
and it is not followed unless the path ends with ``/`` or ``/.``, as Docker does.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
from typing import Any

from berth import errors
from berth.util import suppress
from berth.util.rootpath import Missing, RootWalker

__all__ = ["Resolved", "path_stat_header", "resolve", "stat_of"]

# Go's os.FileMode type bits, which the docker CLI decodes from X-Docker-Container-Path-Stat.
_GO_DIR, _GO_SYMLINK, _GO_DEVICE = 1 << 31, 1 << 27, 1 << 26
_GO_PIPE, _GO_SOCKET, _GO_SETUID, _GO_SETGID = 1 << 25, 1 << 24, 1 << 23, 1 << 22
_GO_CHAR, _GO_STICKY = 1 << 21, 1 << 20


class Resolved:
    """A path inside the root: the symlink-free parent components and the final name."""

    def __init__(self, root: str, parent: tuple[str, ...], name: str) -> None:
        self.root = root
        self.parent = parent
        self.name = name

    @property
    def host_path(self) -> str:
        """The path through the root, every component a real directory when resolved; the
        root itself as ``ROOT/.`` (``/proc/PID/root`` is a link to be followed, once)."""
        if not self.parent and not self.name:
            return os.path.join(self.root, ".")
        return os.path.join(self.root, *self.parent, *((self.name,) if self.name else ()))

    @property
    def parent_path(self) -> str:
        return os.path.join(self.root, *self.parent)


def resolve(root: str, path: str) -> Resolved:
    """Resolve ``path`` (as the container would see it) under ``root``; missing final
    components are allowed (a PUT target's parent must exist; the caller checks)."""
    with RootWalker(root) as walker:
        return _resolve(walker, root, path)


def _resolve(walker: RootWalker, root: str, path: str) -> Resolved:
    if not path:
        raise errors.InvalidArgument("path is empty")
    follow_last = path.endswith("/") or path.endswith("/.")
    try:
        comps = walker.resolve(path, missing=Missing.ALLOW_LAST, follow_last=follow_last)
    except FileNotFoundError:
        raise errors.NotFound(f"Could not find the file {path} in container") from None
    except NotADirectoryError as e:
        raise errors.InvalidArgument(f"{e.filename}: not a directory") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise errors.InvalidArgument("too many levels of symbolic links") from None
        raise
    if not comps:
        return Resolved(root, (), "")
    return Resolved(root, comps[:-1], comps[-1])


def stat_of(res: Resolved, shown_name: str) -> dict[str, Any]:
    """Docker's ``PathStat`` for a resolved path (the link itself, not its target)."""
    try:
        st = os.lstat(res.host_path)
    except FileNotFoundError:
        raise errors.NotFound(f"Could not find the file {shown_name} in container") from None
    mode = st.st_mode
    go = stat.S_IMODE(mode) & 0o777
    if mode & stat.S_ISUID:
        go |= _GO_SETUID
    if mode & stat.S_ISGID:
        go |= _GO_SETGID
    if mode & stat.S_ISVTX:
        go |= _GO_STICKY
    link = ""
    if stat.S_ISDIR(mode):
        go |= _GO_DIR
    elif stat.S_ISLNK(mode):
        go |= _GO_SYMLINK
        link = os.readlink(res.host_path)
    elif stat.S_ISFIFO(mode):
        go |= _GO_PIPE
    elif stat.S_ISSOCK(mode):
        go |= _GO_SOCKET
    elif stat.S_ISCHR(mode):
        go |= _GO_DEVICE | _GO_CHAR
    elif stat.S_ISBLK(mode):
        go |= _GO_DEVICE
    from datetime import UTC, datetime

    mtime = datetime.fromtimestamp(st.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    name = res.name or "/"
    return {"name": name, "size": st.st_size, "mode": go, "mtime": mtime,
            "linkTarget": link}


def path_stat_header(path_stat: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(path_stat).encode()).decode()


def write_tree_tar(res: Resolved, rebase: str, out: Any) -> None:
    """Write the resolved path as a tar whose top entry is named ``rebase``; symlinks are
    archived as links, never followed."""
    import tarfile

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:

        def add(path: str, name: str) -> bool:
            st = os.lstat(path)
            info = tarfile.TarInfo(name)
            info.mode = stat.S_IMODE(st.st_mode)
            info.uid, info.gid = st.st_uid, st.st_gid
            info.mtime = int(st.st_mtime)
            m = st.st_mode
            if stat.S_ISREG(m):
                info.size = st.st_size
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as f:
                    tar.addfile(info, f)
                return False
            if stat.S_ISDIR(m):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                return True
            if stat.S_ISLNK(m):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
            elif stat.S_ISFIFO(m):
                info.type = tarfile.FIFOTYPE
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            else:
                return False
            tar.addfile(info)
            return False

        def walk(path: str, name: str) -> None:
            for entry in sorted(os.listdir(path)):
                child = os.path.join(path, entry)
                if add(child, f"{name}/{entry}"):
                    walk(child, f"{name}/{entry}")

        top = res.host_path
        if add(top, rebase):
            walk(top, rebase)


class TarEntry:
    """One member seen by :class:`TarHeaderScanner`: its name, whether it is a directory,
    and the stream offset of its header block (bytes before it belong to earlier members)."""

    __slots__ = ("is_dir", "name", "offset")

    def __init__(self, name: str, is_dir: bool, offset: int) -> None:
        self.name, self.is_dir, self.offset = name, is_dir, offset


class TarHeaderScanner:
    """Follow a tar stream as it passes by, naming its members without unpacking them.

    ``docker cp`` needs the names before (no-overwrite checks) and after (ownership) the
    unpacking, which happens elsewhere from the same bytes. Knows ustar, PAX ``path``
    records and GNU long names; member data is skipped, not kept.
    """

    _META_LIMIT = 1 << 20

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0            # stream offset of _buf[0]
        self._skip = 0           # data bytes (with padding) still to pass over
        self._meta: tuple[str, int] | None = None   # ("x"|"L", size) being collected
        self._long_name: str | None = None
        self.ended = False

    def feed(self, data: bytes) -> list[TarEntry]:
        entries: list[TarEntry] = []
        view = memoryview(data)
        while view and not self.ended:
            if self._skip and self._meta is None:
                step = min(self._skip, len(view))
                self._skip -= step
                self._pos += step
                view = view[step:]
                continue
            need = 512 if self._meta is None else _padded(self._meta[1])
            take = min(need - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < need:
                break
            block = bytes(self._buf)
            self._buf.clear()
            start = self._pos
            self._pos += need
            if self._meta is not None:
                kind, size = self._meta
                self._meta = None
                self._long_name = (_pax_path(block[:size]) if kind == "x"
                                   else block[:size].split(b"\0", 1)[0].decode(
                                       "utf-8", "surrogateescape")) or self._long_name
                continue
            entry = self._header(block, start)
            if entry is not None:
                entries.append(entry)
        return entries

    def _header(self, block: bytes, offset: int) -> TarEntry | None:
        if block == bytes(512):
            self.ended = True
            return None
        size = _tar_number(block[124:136])
        kind = chr(block[156]) if block[156] else "0"
        if kind in ("x", "L"):
            if size > self._META_LIMIT:
                raise errors.InvalidArgument("tar header too large")
            self._meta = (kind, size)
            return None
        if kind in ("g", "K"):
            self._skip = _padded(size)
            return None
        name = self._long_name
        self._long_name = None
        if name is None:
            name = block[0:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if block[257:262] == b"ustar":
                prefix = block[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                if prefix:
                    name = f"{prefix}/{name}"
        is_dir = kind == "5" or (kind in ("0", "\0") and name.endswith("/"))
        # Links, devices, fifos and directories carry no data.
        self._skip = _padded(size) if kind in ("0", "7") else 0
        return TarEntry(name, is_dir, offset)


def _padded(size: int) -> int:
    return (size + 511) // 512 * 512


def _tar_number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _pax_path(data: bytes) -> str | None:
    path = None
    while data:
        length_text, _, _ = data.partition(b" ")
        try:
            length = int(length_text)
        except ValueError:
            raise errors.InvalidArgument("malformed PAX header") from None
        record, data = data[:length], data[length:]
        key, _, value = record.partition(b" ")[2].partition(b"=")
        if key == b"path":
            path = value.rstrip(b"\n").decode("utf-8", "surrogateescape")
        if length <= 0:
            break
    return path


def member_path(directory: str, member: str) -> str | None:
    """The container path a tar member unpacks to under ``directory``; None for the
    directory itself (``./``)."""
    parts = [p for p in member.split("/") if p not in ("", ".")]
    if not parts:
        return None
    return os.path.normpath(os.path.join(directory, *parts))


def overwrite_conflict(root: str, directory: str, entry: TarEntry) -> str | None:
    """Docker's ``noOverwriteDirNonDir`` rule for one member: the message when unpacking it
    would replace a directory by a non-directory or the reverse, else None."""
    target = member_path(directory, entry.name)
    if target is None:
        return None
    try:
        res = resolve(root, target)
        st = os.lstat(res.host_path)
    except (errors.BerthError, OSError):
        return None  # not there (or unreachable): nothing to overwrite
    if stat.S_ISDIR(st.st_mode) and not entry.is_dir:
        return f'cannot overwrite directory "{target}" with non-directory "{directory}"'
    if not stat.S_ISDIR(st.st_mode) and entry.is_dir:
        return f'cannot overwrite non-directory "{target}" with directory "{directory}"'
    return None


def lchown_in_root(root: str, path: str, uid: int, gid: int) -> None:
    """chown ``path`` (a container path) itself, never a link's target, reaching it through
    directory fds opened without following links, so a path swapped meanwhile cannot lead
    the chown out of the root."""
    with RootWalker(root) as walker:
        res = _resolve(walker, root, path)
        if not res.name:
            return
        with suppress(FileNotFoundError):
            os.chown(res.name, uid, gid, dir_fd=walker.dir_fd(res.parent),
                     follow_symlinks=False)


def open_file_in_root(root: str, path: str) -> int | None:
    """An fd on a regular file of the container (``/etc/passwd``), opened without following a
    final link out of the root; None when it is missing or not a regular file."""
    try:
        with RootWalker(root) as walker:
            res = _resolve(walker, root, path)
            fd = os.open(res.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         dir_fd=walker.dir_fd(res.parent))
    except (errors.BerthError, OSError):
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd
