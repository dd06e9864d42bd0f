"""Resolve an untrusted path inside a root directory, the way a chroot would, never leaving it.

Used wherever berth reaches into a tree it does not trust: unpacking a layer, ``docker cp``,
mount destinations before ``pivot_root``.

Why it is safe: the kernel never follows a link for us and never walks ``..`` for us. Every
directory is entered with ``openat(parent_fd, name, O_PATH|O_DIRECTORY|O_NOFOLLOW)``, one
component at a time from a descriptor of the root; that open fails with ``ENOTDIR`` on a
symlink or a non-directory, and only then is the entry ``lstat``-ed and ``readlink``-ed,
relative to the same parent fd (a last component that need not be entered is only
``lstat``-ed). A link is resolved by us, inside the root: an absolute target restarts at the
root, ``..`` pops our own list of components and stops at the root (in a chroot the root is
its own parent), and after ``max_links`` links the walk fails with ``ELOOP``. So the path
returned names real directories below the root (plus, by policy, a final name or a lexical
tail), whatever ``..``, absolute or relative links the tree holds. If the tree changes while
we walk (a running container), a component swapped for a link makes the next ``openat`` fail
instead of following it, and a directory moved meanwhile cannot take us above the root, as
``..`` never reaches the kernel. The fds are ``O_CLOEXEC`` and all closed by
:meth:`RootWalker.close`, so none of them is left for a container to inherit.

What a caller still owns: the returned path is a plan, not a capability. Act on it through
:meth:`RootWalker.dir_fd` and ``*at`` calls without following the final component, or (as
the runtime does for mount targets, before any container process exists) by path while
nothing untrusted runs.

Errors are those the kernel gives for the same situations, so callers map them once:
``FileNotFoundError`` (a missing component the policy refuses), ``NotADirectoryError`` (a
non-directory where a directory must be; ``filename`` is its name) and ``OSError`` with
``errno.ELOOP`` (too many links).
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Iterable

__all__ = ["Missing", "RootWalker"]

_O_DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_ROOT = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
Physical = tuple[str, ...]


class Missing(enum.Enum):
    """What a component that does not exist does to the walk."""

    FAIL = "fail"              # FileNotFoundError
    ALLOW_LAST = "allow-last"  # the last component may be missing (a middle one fails)
    LEXICAL = "lexical"        # it, and everything after it, is joined as written; so is
                               # anything under a non-directory (where it would be created)
    CREATE = "create"          # made as a directory (mode 0o755 under the umask)


class RootWalker:
    """Walks paths below one root; keeps the directory fds it opened (LRU) for reuse.

    ``root`` is a path (opened here, following it: the root itself is trusted, and
    ``/proc/PID/root`` must be followed) or a directory fd the caller keeps owning.
    Cached fds stay right while no directory or link below the root is removed or replaced:
    a caller that does so calls :meth:`forget`; callers facing a tree that changes on its
    own (a running container) use a walker per resolution.
    """

    def __init__(self, root: str | int, *, max_links: int = 40, cache_size: int = 256) -> None:
        if isinstance(root, str):
            self.root_fd, self._own_root = os.open(root, _O_ROOT), True
        else:
            self.root_fd, self._own_root = root, False
        self.max_links = max_links
        self._cache_size = max(2, cache_size)
        self._fds: dict[Physical, int] = {}  # in use order, the least recent first
        self.created: list[Physical] = []  # directories made by Missing.CREATE, in order

    def __enter__(self) -> RootWalker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.forget()
        if self._own_root:
            os.close(self.root_fd)
            self._own_root = False

    def forget(self) -> None:
        """Close every cached fd: the tree changed under them."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def dir_fd(self, phys: Physical) -> int:
        """An ``O_PATH`` fd of the symlink-free directory ``phys`` (as :meth:`resolve`
        returns), opened without following anything. The cache owns it: use it before the
        next call."""
        if not phys:
            return self.root_fd
        fd = self._fds.pop(phys, None)
        if fd is not None:
            self._fds[phys] = fd
            return fd
        depth = len(phys) - 1
        while depth and phys[:depth] not in self._fds:
            depth -= 1
        fd = self.dir_fd(phys[:depth])
        for i in range(depth + 1, len(phys) + 1):
            fd = self._open(phys[:i], fd)
        return fd

    def _open(self, phys: Physical, parent_fd: int) -> int:
        fd = os.open(phys[-1], _O_DIR_PATH, dir_fd=parent_fd)
        self._fds[phys] = fd
        if len(self._fds) > self._cache_size:
            os.close(self._fds.pop(next(iter(self._fds))))
        return fd

    def resolve(self, path: str | Iterable[str], *, missing: Missing = Missing.FAIL,
                follow_last: bool = True, directory: bool = False) -> Physical:
        """The physical components of ``path`` (a string, or its components) below the root.

        ``follow_last=False`` leaves the last component as written (it may be a link or
        missing: it is not looked at). ``directory=True`` wants every component, the last
        included, to be a directory (so it needs ``follow_last``); otherwise the last one
        may be anything.
        """
        if directory and not follow_last:
            raise ValueError("a directory is wanted: the last component must be followed")
        todo = _components(path.split("/") if isinstance(path, str) else path)
        todo.reverse()  # a stack: the next component last
        cur: Physical = ()
        cur_fd: int | None = self.root_fd  # None: look it up (after ``..``)
        lexical = 0  # how many trailing components of ``cur`` are only written, not real
        links = 0
        while todo:
            comp = todo.pop()
            if comp == "..":
                if cur:
                    cur, cur_fd = cur[:-1], None
                    lexical = max(0, lexical - 1)
                continue
            last = not todo
            if lexical:
                cur += (comp,)
                lexical += 1
                continue
            if last and not follow_last:
                return (*cur, comp)
            child = (*cur, comp)
            fd = self._fds.pop(child, None)
            if fd is not None:
                self._fds[child] = fd
                cur, cur_fd = child, fd
                continue
            if cur_fd is None:
                cur_fd = self.dir_fd(cur)
            mode, fd = self._look(child, cur_fd, need_fd=directory or not last)
            if mode is None:
                if missing is Missing.CREATE:
                    os.mkdir(comp, 0o755, dir_fd=cur_fd)
                    self.created.append(child)
                    fd = self._open(child, cur_fd)
                elif missing is Missing.LEXICAL or (missing is Missing.ALLOW_LAST and last):
                    lexical = 1
                else:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), comp)
            elif stat.S_ISLNK(mode):
                links += 1
                if links > self.max_links:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), comp)
                target = os.readlink(comp, dir_fd=cur_fd)
                if target.startswith("/"):
                    cur, cur_fd = (), self.root_fd
                todo.extend(reversed(_components(target.split("/"))))
                continue
            elif not stat.S_ISDIR(mode):
                if missing is Missing.LEXICAL:
                    lexical = 1
                elif directory or not last:
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), comp)
            cur, cur_fd = child, fd
        return cur

    def _look(self, child: Physical, parent_fd: int,
              need_fd: bool) -> tuple[int | None, int | None]:
        """The file type of ``child`` (None when missing) and, when it is a directory and
        ``need_fd``, its fd (opened and cached). Only what is not a directory is stat'ed."""
        if need_fd:
            try:
                return stat.S_IFDIR, self._open(child, parent_fd)
            except FileNotFoundError:
                return None, None
            except NotADirectoryError:
                pass  # a link or another kind of file
        try:
            st = os.stat(child[-1], dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None, None
        return stat.S_IFMT(st.st_mode), None


def _components(parts: Iterable[str]) -> list[str]:
    return [p for p in parts if p not in ("", ".")]
