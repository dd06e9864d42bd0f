"""Reading overlay layer directories: a container's changes, and trees to archive.

An overlay upper directory records a container's changes in overlayfs' format: new and
modified entries as themselves, deletions as 0/0 character devices, a directory whose lower
contents are hidden with ``trusted.overlay.opaque=y``. From that and the lower directories:

* ``changes`` lists what ``docker diff`` shows, by Docker's own rules for overlay (a path in
  the upper is *added*, or *changed* if any lower has it; a whiteout, or an opaque directory
  that hides a lower one, is *deleted*; a directory that is only there as the parent of a
  change, with its lower's size, mode and mtime, is left out; the parent of an addition or
  deletion is always *changed*);
* ``walk_layer`` yields an upper directory's entries for a layer tar (whiteouts and opaque
  markers as entries), and ``walk_merged`` the flattened tree of several layers, as a mounted
  overlay would show it, without mounting anything.

``ignore`` names paths (relative, no leading slash) that are not the container's own doing:
mount points the runtime creates (``etc/hosts`` and friends). They are skipped when they
are empty, and so is a directory that holds nothing else and is unchanged otherwise.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Item", "changes", "ignored", "is_opaque", "walk_layer", "walk_merged"]

OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"

CHANGE_MODIFY, CHANGE_ADD, CHANGE_DELETE = 0, 1, 2


@dataclass(frozen=True)
class Item:
    """One entry to archive: ``kind`` is ``entry``, ``whiteout`` (``rel`` is the hidden
    path) or ``opaque`` (``rel`` is the directory)."""

    rel: str
    path: str
    st: os.stat_result
    kind: str = "entry"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _listdir(path: str) -> list[str]:
    # Go's filepath.Walk order: names sorted bytewise.
    return sorted(os.listdir(path), key=lambda n: n.encode("utf-8", "surrogateescape"))


def ignored(upper: str, lowers: list[str], candidates: frozenset[str]) -> set[str]:
    """The relative paths under ``upper`` to leave out (see the module docstring)."""
    skip: set[str] = set()
    for rel in sorted(candidates, key=lambda r: -r.count("/")):  # children before parents
        path = os.path.join(upper, rel)
        st = _lstat(path)
        if st is None:
            continue
        if ((stat.S_ISREG(st.st_mode) and st.st_size == 0)
                or (stat.S_ISDIR(st.st_mode) and not is_opaque(path)
                    and all(f"{rel}/{n}" in skip for n in os.listdir(path)))):
            skip.add(rel)
    # Parents that hold only skipped entries and match a lower directory go too.
    for rel in sorted({os.path.dirname(r) for r in skip if os.path.dirname(r)},
                      key=lambda r: -r.count("/")):
        path = os.path.join(upper, rel)
        st = _lstat(path)
        if st is None or not stat.S_ISDIR(st.st_mode) or is_opaque(path):
            continue
        if any(f"{rel}/{n}" not in skip for n in os.listdir(path)):
            continue
        for lower in lowers:
            lst = _lstat(os.path.join(lower, rel))
            if lst is not None:
                if (stat.S_ISDIR(lst.st_mode) and lst.st_mode == st.st_mode
                        and (lst.st_uid, lst.st_gid) == (st.st_uid, st.st_gid)):
                    skip.add(rel)
                break
    return skip


def changes(upper: str, lowers: list[str],
            ignore: set[str] | None = None) -> list[tuple[str, int]]:
    """``(path, kind)`` for ``docker diff``: kind 0 changed, 1 added, 2 deleted."""
    ignore = ignore or set()
    out: list[tuple[str, int]] = []
    changed_dirs: set[str] = set()

    def in_lower(rel: str) -> os.stat_result | None:
        for lower in lowers:
            st = _lstat(os.path.join(lower, rel))
            if st is not None:
                return st
        return None

    def visit(rel: str, path: str, st: os.stat_result) -> None:
        kind: int | None = None
        opaque = stat.S_ISDIR(st.st_mode) and is_opaque(path)
        if is_whiteout(st) or (opaque and in_lower(rel) is not None):
            kind = CHANGE_DELETE
        else:
            lst = in_lower(rel)
            if lst is None:
                kind = CHANGE_ADD
            elif (stat.S_ISDIR(lst.st_mode) and stat.S_ISDIR(st.st_mode)
                  and lst.st_size == st.st_size and lst.st_mode == st.st_mode
                  and int(lst.st_mtime) == int(st.st_mtime)):
                kind = None  # a parent of changes only
            else:
                kind = CHANGE_MODIFY
        if kind is not None:
            out.append(("/" + rel, kind))
            if stat.S_ISDIR(st.st_mode):
                changed_dirs.add(rel)
            if kind != CHANGE_MODIFY:
                parent = os.path.dirname(rel)
                if parent and parent not in changed_dirs:
                    out.append(("/" + parent, CHANGE_MODIFY))
                    changed_dirs.add(parent)

    def walk(dirpath: str, prefix: str) -> None:
        for name in _listdir(dirpath):
            rel = prefix + name
            if rel in ignore or (not prefix and name.startswith(".wh..wh.")):
                continue
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            visit(rel, path, st)
            if stat.S_ISDIR(st.st_mode):
                walk(path, rel + "/")

    walk(upper, "")
    return out


def walk_layer(root: str, ignore: set[str] | None = None) -> Iterator[Item]:
    """The entries of an upper directory in tar order: parents first, names sorted."""
    ignore = ignore or set()

    def walk(dirpath: str, prefix: str) -> Iterator[Item]:
        for name in _listdir(dirpath):
            rel = prefix + name
            if rel in ignore:
                continue
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if is_whiteout(st):
                yield Item(rel, path, st, "whiteout")
                continue
            yield Item(rel, path, st)
            if stat.S_ISDIR(st.st_mode):
                if is_opaque(path):
                    yield Item(rel, path, st, "opaque")
                yield from walk(path, rel + "/")

    yield from walk(root, "")


def walk_merged(layers: list[str], ignore: set[str] | None = None) -> Iterator[Item]:
    """The flattened tree of ``layers`` (top first), as an overlay mount of them shows it."""
    ignore = ignore or set()

    def walk(rel: str, dirs: list[str]) -> Iterator[Item]:
        # dirs: this directory in each layer that contributes to it, top first.
        seen: dict[str, tuple[str, os.stat_result, int]] = {}
        hidden: set[str] = set()
        for i, d in enumerate(dirs):
            try:
                names = os.listdir(d)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                if name in seen or name in hidden:
                    continue
                path = os.path.join(d, name)
                st = os.lstat(path)
                if is_whiteout(st):
                    hidden.add(name)
                else:
                    seen[name] = (path, st, i)
        for name in sorted(seen, key=lambda n: n.encode("utf-8", "surrogateescape")):
            child = f"{rel}/{name}" if rel else name
            if child in ignore:
                continue
            path, st, i = seen[name]
            yield Item(child, path, st)
            if stat.S_ISDIR(st.st_mode):
                below = [path]
                if not is_opaque(path):
                    for d in dirs[i + 1:]:
                        lst = _lstat(os.path.join(d, name))
                        if lst is None:
                            continue
                        if not stat.S_ISDIR(lst.st_mode):
                            break  # a file or whiteout there ends the directory's history
                        below.append(os.path.join(d, name))
                        if is_opaque(os.path.join(d, name)):
                            break
                yield from walk(child, below)

    roots = []
    for d in layers:
        roots.append(d)
        if is_opaque(d):
            break
    yield from walk("", roots)
