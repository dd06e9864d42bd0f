"""Helpers shared by the image, archive and snapshot tests: build tars, describe trees."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "images"


def make_tar(entries: list[dict[str, Any]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar from entry dicts: name, type ("file", "dir", "symlink", "link", "fifo",
    "char"), data, target, mode, uid, gid, mtime, xattrs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            kind = e.get("type", "file")
            ti.mode = e.get("mode", 0o755 if kind == "dir" else 0o644)
            ti.uid, ti.gid = e.get("uid", 0), e.get("gid", 0)
            ti.mtime = e.get("mtime", 1_000_000_000)
            if e.get("xattrs"):
                ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in e["xattrs"].items()}
            data = None
            if kind == "file":
                raw = e.get("data", b"")
                ti.size = len(raw)
                data = io.BytesIO(raw)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, e["target"]
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, e["target"]
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif kind == "char":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = e.get("major", 0), e.get("minor", 0)
            tar.addfile(ti, data)
    return buf.getvalue()


def describe(root: str) -> tuple[dict[str, dict[str, Any]], list[list[str]]]:
    """Every path under ``root`` in the shape of ``multilayer-expected-rootfs.json``."""
    out: dict[str, dict[str, Any]] = {}
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(path, root)
            st = os.lstat(path)
            m = st.st_mode
            kind = ("dir" if stat.S_ISDIR(m) else "symlink" if stat.S_ISLNK(m)
                    else "file" if stat.S_ISREG(m) else "fifo" if stat.S_ISFIFO(m)
                    else "char" if stat.S_ISCHR(m) else "block" if stat.S_ISBLK(m) else "other")
            d: dict[str, Any] = {"type": kind, "mode": oct(m), "uid": st.st_uid, "gid": st.st_gid}
            if kind == "file":
                with open(path, "rb") as f:
                    d["size"] = st.st_size
                    d["sha256"] = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif kind == "symlink":
                d["target"] = os.readlink(path)
            out[rel] = d
    groups = sorted(sorted(g) for g in inodes.values() if len(g) > 1)
    return out, groups


# Runtime-made files the fixture leaves out; "/dockerenv" is how the fixture's export spelled
# "/.dockerenv" (it exists in no layer), so it is left out here as well.
_RUNTIME_TOP = {"dev", "proc", "sys", "dockerenv", ".dockerenv"}


def expected_rootfs() -> tuple[dict[str, dict[str, Any]], list[list[str]]]:
    data = json.loads((FIXTURES / "multilayer-expected-rootfs.json").read_text())
    entries = {k: v for k, v in data["entries"].items() if k.split("/")[1] not in _RUNTIME_TOP}
    return entries, sorted(sorted(g) for g in data["hardlink_groups"])


def assert_matches_expected(root: str) -> None:
    want, want_groups = expected_rootfs()
    got, got_groups = describe(root)
    got = {k: v for k, v in got.items() if k.split("/")[1] not in _RUNTIME_TOP}
    diffs = [(k, want.get(k), got.get(k)) for k in sorted(set(want) | set(got))
             if want.get(k) != got.get(k)]
    assert not diffs, f"{len(diffs)} differences, first: {diffs[:5]}"
    assert got_groups == want_groups


@contextlib.contextmanager
def mounted(mounts: list[dict[str, Any]], target: str) -> Iterator[str]:
    """Mount snapshot mounts on ``target`` (root only), always unmounting afterwards."""
    assert len(mounts) == 1
    m = mounts[0]
    opts = ",".join(o for o in m["options"] if o != "rbind")
    if m["type"] == "bind":
        cmd = ["mount", "--rbind", m["source"], target]
        subprocess.run(cmd, check=True)
        try:
            if "ro" in m["options"]:
                subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
            yield target
        finally:
            subprocess.run(["umount", "-l", target], check=False)
        return
    subprocess.run(["mount", "-t", m["type"], "-o", opts, m["source"], target], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", target], check=False)
