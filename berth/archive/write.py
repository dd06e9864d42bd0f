"""Write a directory as a tar stream (export, commit, save): the inverse of ``apply``.

Entries come in sorted order with names relative to the root (``etc/passwd``, directories
with a trailing slash), PAX format so long names, large ids and xattrs survive, mtimes in
whole seconds and no user/group names, as Docker writes layers. Hard links are found by inode.
With ``whiteouts=OVERLAY`` an overlay upper directory becomes a layer: 0/0 character devices
turn into ``.wh.NAME`` and opaque directories get a ``.wh..wh..opq`` entry.

This uses ``tarfile`` for now; writing is not on any latency-critical path yet.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import BinaryIO

from berth.archive.apply import (
    OVERLAY_OPAQUE_XATTR,
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
    WhiteoutMode,
)

__all__ = ["write_tar"]


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


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def write_tar(root: str, out: BinaryIO, *, whiteouts: WhiteoutMode | None = None) -> None:
    """Stream the tree under ``root`` to ``out`` as an uncompressed tar."""
    seen_inodes: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:

        def add(rel: str, path: str, st: os.stat_result) -> None:
            ti = tarfile.TarInfo(rel)
            ti.mode = stat.S_IMODE(st.st_mode)
            ti.uid, ti.gid = st.st_uid, st.st_gid
            ti.uname = ti.gname = ""
            ti.mtime = int(st.st_mtime)
            pax = _xattrs(path)
            if pax:
                ti.pax_headers = pax
            m = st.st_mode
            if stat.S_ISREG(m):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen_inodes:
                    ti.type, ti.linkname = tarfile.LNKTYPE, seen_inodes[key]
                    tar.addfile(ti)
                    return
                seen_inodes[key] = rel
                ti.type, ti.size = tarfile.REGTYPE, st.st_size
                with open(path, "rb") as f:
                    tar.addfile(ti, f)
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
            tar.addfile(ti)

        def walk(dirpath: str, prefix: str) -> None:
            for name in sorted(os.listdir(dirpath)):
                path = os.path.join(dirpath, name)
                rel = prefix + name
                st = os.lstat(path)
                if (whiteouts is WhiteoutMode.OVERLAY and stat.S_ISCHR(st.st_mode)
                        and st.st_rdev == 0):
                    wh = tarfile.TarInfo(prefix + WHITEOUT_PREFIX + name)
                    wh.mtime, wh.mode = int(st.st_mtime), 0o600
                    tar.addfile(wh)
                    continue
                add(rel, path, st)
                if stat.S_ISDIR(st.st_mode):
                    if whiteouts is WhiteoutMode.OVERLAY and _is_opaque(path):
                        opq = tarfile.TarInfo(rel + "/" + WHITEOUT_OPAQUE)
                        opq.mtime, opq.mode = int(st.st_mtime), 0o600
                        tar.addfile(opq)
                    walk(path, rel + "/")

        walk(root, "")
