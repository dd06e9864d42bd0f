"""Write a directory as a tar stream (export, commit, save): the inverse of ``apply``.

Entries come in sorted order with names relative to the root (``etc/passwd``, directories
with a trailing slash), PAX format so long names, large ids and xattrs survive, mtimes in
whole seconds and no user/group names, as Docker writes layers. Hard links are found by inode.
With ``whiteouts=OVERLAY`` an overlay upper directory becomes a layer: 0/0 character devices
turn into ``.wh.NAME`` and opaque directories get a ``.wh..wh..opq`` entry.

Headers come from ``tarfile``; the bytes are copied by us in large chunks, with no record
padding, so the output is a function of the tree alone (commit's layers are deterministic).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable
from typing import BinaryIO

from berth.archive.apply import (
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
    WhiteoutMode,
)
from berth.archive.diff import Item, walk_layer, walk_merged

__all__ = ["write_items", "write_merged", "write_tar"]


def _xattrs(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for key in sorted(keys):
        if key.startswith("trusted.overlay.") or not key.startswith(("security.", "user.",
                                                                     "trusted.")):
            continue
        try:
            value = os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    return out


_CHUNK = 1 << 20
_BLOCK = 512


class _Emitter:
    """Tar headers from ``tarfile`` (PAX where needed), file bytes copied in big chunks, and
    exactly two zero blocks at the end (no record padding): the same tree always gives the
    same bytes, and an empty layer is Docker's empty tar."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.inodes: dict[tuple[int, int], str] = {}

    def header(self, ti: tarfile.TarInfo) -> None:
        self.out.write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def marker(self, name: str, st: os.stat_result) -> None:
        ti = tarfile.TarInfo(name)
        ti.mtime, ti.mode, ti.uname, ti.gname = int(st.st_mtime), 0o600, "", ""
        self.header(ti)

    def entry(self, rel: str, path: str, st: os.stat_result) -> None:
        m = st.st_mode
        name = rel + "/" if stat.S_ISDIR(m) else rel
        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(m)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = int(st.st_mtime)
        pax = _xattrs(path)
        if pax:
            ti.pax_headers = pax
        if stat.S_ISREG(m):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                if key in self.inodes:
                    ti.type, ti.linkname = tarfile.LNKTYPE, self.inodes[key]
                    self.header(ti)
                    return
                self.inodes[key] = rel
            ti.type, ti.size = tarfile.REGTYPE, st.st_size
            with open(path, "rb") as f:
                self.header(ti)
                self._copy(f, st.st_size, rel)
            return
        if stat.S_ISDIR(m):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(m):
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISFIFO(m):
            ti.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return  # sockets are not archived
        self.header(ti)

    def _copy(self, f: BinaryIO, size: int, rel: str) -> None:
        left = size
        while left:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                # The file shrank while we read it: pad, as the header promised the size.
                chunk = b"\0" * min(_CHUNK, left)
            self.out.write(chunk[:left])
            left -= min(len(chunk), left)
        rest = size % _BLOCK
        if rest:
            self.out.write(b"\0" * (_BLOCK - rest))

    def close(self) -> None:
        self.out.write(b"\0" * (2 * _BLOCK))


def write_items(items: Iterable[Item], out: BinaryIO) -> None:
    """Stream ``items`` (from ``berth.archive.diff``) to ``out`` as an uncompressed tar."""
    em = _Emitter(out)
    for item in items:
        if item.kind == "whiteout":
            head, _, base = item.rel.rpartition("/")
            em.marker((head + "/" if head else "") + WHITEOUT_PREFIX + base, item.st)
        elif item.kind == "opaque":
            em.marker(item.rel + "/" + WHITEOUT_OPAQUE, item.st)
        else:
            em.entry(item.rel, item.path, item.st)
    em.close()


def write_tar(root: str, out: BinaryIO, *, whiteouts: WhiteoutMode | None = None,
              ignore: set[str] | None = None) -> None:
    """Stream the tree under ``root`` to ``out`` as an uncompressed tar; with
    ``whiteouts=OVERLAY``, overlay whiteouts and opaque directories become Docker's markers."""
    items = walk_layer(root, ignore)
    if whiteouts is not WhiteoutMode.OVERLAY:
        items = (i for i in items if i.kind == "entry")
    write_items(items, out)


def write_merged(layers: list[str], out: BinaryIO, *, ignore: set[str] | None = None) -> None:
    """Stream the flattened tree of overlay ``layers`` (top first) to ``out``: export."""
    write_items(walk_merged(layers, ignore), out)
