"""A corpus of hand-made hostile archives, built here by code (no binaries committed).

Every case is applied twice: as a layer, by ``apply_layer`` into a directory inside a
sandbox that also holds "host" files the archive aims at; and wrapped in a ``docker save``
archive loaded by the image service. Each must be refused (``InvalidArgument``, the store
exactly as before) or contained (whatever it writes lands inside its own tree). Either way
the sandbox's host files, and the real host paths the cases name, are untouched.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import stat
import struct
import tarfile
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from berth.archive import Limits, WhiteoutMode, apply_layer
from berth.errors import InvalidArgument
from berth.image import ImageService
from berth.metadata import MetadataStore
from tests.conformance.layers import make_tar

pytestmark = pytest.mark.root

# A host path no test creates: a case that writes it has escaped.
HOST_MARK = f"/tmp/berth-hostile-{uuid.uuid4().hex[:12]}"
REFUSE, CONTAIN = "refuse", "contain"


@dataclass
class Case:
    name: str
    build: Callable[[str], bytes]     # given the sandbox's "outside" dir, the layer bytes
    expect: str
    check: Callable[[Path], None] | None = None   # more checks of the unpacked tree


def _header(name: str, size_field: bytes | None = None, typeflag: bytes = b"0",
            size: int = 0, linkname: str = "") -> bytes:
    """A ustar header with a raw size field (for sizes ``tarfile`` would not write)."""
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.linkname, ti.mode = size, typeflag, linkname, 0o644
    block = bytearray(ti.tobuf(tarfile.USTAR_FORMAT))
    if size_field is not None:
        block[124:136] = size_field
        block[148:156] = b"        "
        chk = sum(block[:512])
        block[148:156] = b"%06o\0 " % chk
    return bytes(block[:512])


def _pax(records: dict[str, str | bytes], then: bytes) -> bytes:
    body = b""
    for k, v in records.items():
        vb = v.encode() if isinstance(v, str) else v
        rec = b" " + k.encode() + b"=" + vb + b"\n"
        n = len(rec)
        while len(str(n + len(str(n))).encode()) + len(rec) != n:
            n = len(str(n).encode()) + len(rec)
        body += str(n).encode() + rec
    head = _header("././@PaxHeader", typeflag=b"x", size=len(body))
    return head + body + b"\0" * (-len(body) % 512) + then


END = b"\0" * 1024


@functools.cache
def _gzip_bomb(_: str) -> bytes:
    # A tar whose one file claims 1 GiB of zeros: ~1 MB compressed.
    head = _header("bomb", size=1 << 30)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(head)]
    zero = b"\0" * (1 << 20)
    for _ in range(1 << 10):
        out.append(z.compress(zero))
    out.append(z.flush())
    return b"".join(out)


def _truncated(_: str) -> bytes:
    data = make_tar([{"name": "big", "data": b"x" * 100_000}])
    return data[:50_000]


def _truncated_gzip(_: str) -> bytes:
    data = gzip.compress(make_tar([{"name": "f", "data": os.urandom(100_000)}]))
    return data[: len(data) // 2]


def _assert_setuid(root: Path) -> None:
    assert stat.S_IMODE((root / "suid").stat().st_mode) == 0o4755


def _assert_inside(rel: str, content: bytes | None = None) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        path = root / rel
        assert path.exists() or path.is_symlink(), f"{rel} should be inside the tree"
        if content is not None:
            assert path.read_bytes() == content

    return check


def _pwned_inside(root: Path) -> None:
    # The link's absolute target was resolved inside the tree, as a chroot would.
    found = [p for p in root.rglob("pwned") if p.read_bytes() == b"x"]
    assert found and all(root in p.parents for p in found)


def _no_forged_overlay_xattr(root: Path) -> None:
    with pytest.raises(OSError):
        os.getxattr(root / "d", "trusted.overlay.opaque")


def _device_inside(root: Path) -> None:
    # Created, as Docker does for a daemon running as root, but only inside the tree.
    assert stat.S_ISCHR(os.lstat(root / "sda").st_mode)


def cases() -> list[Case]:
    host = HOST_MARK
    return [
        Case("dotdot", lambda o: make_tar([{"name": "../escape", "data": b"x"}]), REFUSE),
        Case("dotdot-deep", lambda o: make_tar([{"name": "a/../../escape", "data": b"x"}]),
             REFUSE),
        Case("dotdot-pax-path", lambda o: _pax({"path": "../../pax-escape"},
                                               _header("innocent", size=0)) + END, REFUSE),
        Case("absolute-path", lambda o: make_tar([{"name": host + "/abs", "data": b"x"}]),
             CONTAIN, _assert_inside(host.lstrip("/") + "/abs", b"x")),
        Case("symlink-abs-then-write", lambda o: make_tar([
            {"name": "ln", "type": "symlink", "target": o},
            {"name": "ln/pwned", "data": b"x"}]), CONTAIN, _pwned_inside),
        Case("symlink-rel-then-write", lambda o: make_tar([
            {"name": "ln", "type": "symlink", "target": "../../../../../../../" + o},
            {"name": "ln/pwned", "data": b"x"}]), CONTAIN),
        Case("symlink-chain", lambda o: make_tar([
            {"name": "a", "type": "symlink", "target": "b"},
            {"name": "b", "type": "symlink", "target": o},
            {"name": "a/pwned", "data": b"x"}]), CONTAIN),
        Case("symlink-over-file-target", lambda o: make_tar([
            {"name": "target", "type": "symlink", "target": o + "/target"},
            {"name": "target", "data": b"overwritten"}]), CONTAIN,
            _assert_inside("target", b"overwritten")),
        Case("symlink-loop", lambda o: make_tar([
            {"name": "l1", "type": "symlink", "target": "l2"},
            {"name": "l2", "type": "symlink", "target": "l1"},
            {"name": "l1/f", "data": b"x"}]), REFUSE),
        Case("hardlink-absolute-outside", lambda o: make_tar([
            {"name": "h", "type": "link", "target": o + "/secret"}]), REFUSE),
        Case("hardlink-dotdot", lambda o: make_tar([
            {"name": "h", "type": "link", "target": "../../../../../../" + o + "/secret"}]),
             REFUSE),
        Case("hardlink-through-symlink", lambda o: make_tar([
            {"name": "d", "type": "symlink", "target": o},
            {"name": "h", "type": "link", "target": "d/secret"}]), REFUSE),
        Case("hardlink-then-write", lambda o: make_tar([
            {"name": "h", "type": "link", "target": "/etc/passwd"},
            {"name": "h", "data": b"x"}]), REFUSE),
        Case("device-node", lambda o: make_tar([
            {"name": "sda", "type": "char", "major": 8, "minor": 0}]), CONTAIN,
             _device_inside),
        Case("setuid-kept", lambda o: make_tar([
            {"name": "suid", "data": b"#!/bin/sh\n", "mode": 0o4755}]), CONTAIN,
             _assert_setuid),
        Case("absurd-size-octal", lambda o: _header("f", size_field=b"77777777777\0") + END,
             REFUSE),
        Case("absurd-size-base256", lambda o: _header(
            "f", size_field=b"\x80" + b"\0" * 3 + struct.pack(">Q", 1 << 62)) + END, REFUSE),
        Case("negative-size-base256", lambda o: _header(
            "f", size_field=b"\xff" * 12) + END, REFUSE),
        Case("huge-pax-header", lambda o: _header("././@PaxHeader", typeflag=b"x",
                                                  size_field=b"17777777777\0") + END, REFUSE),
        Case("long-gnu-name", lambda o: make_tar([{"name": "a/" * 3000 + "f"}],
                                                 fmt=tarfile.GNU_FORMAT), REFUSE),
        Case("gzip-bomb", _gzip_bomb, REFUSE),
        Case("duplicates", lambda o: make_tar([
            {"name": "dup", "data": b"one"}, {"name": "dup", "type": "dir"},
            {"name": "dup/in", "data": b"x"}, {"name": "dup", "data": b"last"}]), CONTAIN,
             _assert_inside("dup", b"last")),
        Case("truncated", _truncated, REFUSE),
        Case("truncated-gzip", _truncated_gzip, REFUSE),
        Case("not-a-tar", lambda o: os.urandom(4096), REFUSE),
        Case("whiteout-dotdot", lambda o: make_tar([{"name": ".wh..."}]), REFUSE),
        Case("whiteout-through-symlink", lambda o: make_tar([
            {"name": "ln", "type": "symlink", "target": o},
            {"name": "ln/.wh.secret"}]), CONTAIN),
        Case("opaque-through-symlink", lambda o: make_tar([
            {"name": "ln", "type": "symlink", "target": o},
            {"name": "ln/.wh..wh..opq"}]), CONTAIN),
        Case("forged-overlay-xattr", lambda o: make_tar([
            {"name": "d", "type": "dir", "xattrs": {"trusted.overlay.opaque": "y"}}]),
             CONTAIN, _no_forged_overlay_xattr),
        Case("file-over-root", lambda o: make_tar([
            {"name": ".", "type": "symlink", "target": o},
            {"name": "./f", "data": b"x"}]), CONTAIN, _assert_inside("f", b"x")),
        Case("dir-symlink-swap", lambda o: make_tar([
            {"name": "d", "type": "dir"}, {"name": "d/a", "data": b"1"},
            {"name": "d", "type": "symlink", "target": o},
            {"name": "d/b", "data": b"2"}]), CONTAIN),
    ]


CASES = cases()


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 25


def snapshot_tree(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = os.lstat(p)
            data = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_size,
                                             hashlib.sha256(data).hexdigest() if data else None,
                                             os.readlink(p) if p.is_symlink() else None)
    return out


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    (outside / "target").write_text("target")
    (outside / "sub").mkdir()
    (outside / "sub" / "keep").write_text("keep")
    before = snapshot_tree(outside)
    yield outside, tmp_path
    assert snapshot_tree(outside) == before, "a host file changed"
    assert not os.path.lexists(HOST_MARK), "a write reached the real host path"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_layer_apply(case: Case, sandbox: tuple[Path, Path]) -> None:
    outside, tmp = sandbox
    dest = tmp / "dest"
    dest.mkdir()
    data = case.build(str(outside))
    limits = Limits(max_bytes=256 << 20)
    for mode in (WhiteoutMode.OVERLAY, WhiteoutMode.REMOVE):
        for p in list(dest.iterdir()):
            os.system(f"rm -rf '{p}'")  # noqa: S605 - our own temp dir
        if case.expect == REFUSE:
            with pytest.raises(InvalidArgument):
                apply_layer(io.BytesIO(data), str(dest), whiteouts=mode, limits=limits)
        else:
            apply_layer(io.BytesIO(data), str(dest), whiteouts=mode, limits=limits)
            if case.check is not None:
                case.check(dest)


def _docker_archive(layer: bytes, diff_id: str | None = None) -> bytes:
    diff_id = diff_id or "sha256:" + hashlib.sha256(_raw(layer)).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["hostile:1"],
                            "Layers": ["layer.tar"]}]).encode()
    return make_tar([{"name": "config.json", "data": config},
                     {"name": "layer.tar", "data": layer},
                     {"name": "manifest.json", "data": manifest}])


def _raw(layer: bytes) -> bytes:
    if layer[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(layer)
        except (EOFError, OSError, zlib.error):
            return layer
    return layer


def store_state(svc: ImageService) -> dict[str, Any]:
    db = svc.db.read()
    return {
        "tables": {t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}").fetchall()))
                   for t in ("images", "tags", "layers", "image_layers", "layer_blobs")},
        "blobs": sorted(i.digest for i in svc.content.walk()),
        "snapshots": sorted(i.key for i in svc.snapshots.walk()),
        "dirs": sorted(os.listdir(svc.snapshots.root)),
        "ingest": os.listdir(os.path.join(svc.data_root, "content", "ingest")),
    }


# The service reads the whole of a 4 GiB bomb before refusing it (bounded by the disk, not by
# a small limit): it is checked at the layer level above.
STORE_CASES = [c for c in CASES if c.name != "gzip-bomb"]


@pytest.mark.parametrize("case", STORE_CASES, ids=[c.name for c in STORE_CASES])
def test_load_into_the_store(case: Case, sandbox: tuple[Path, Path]) -> None:
    outside, tmp = sandbox
    db = MetadataStore(str(tmp / "berth.db"))
    svc = ImageService(str(tmp / "root"), db)
    try:
        before = store_state(svc)
        archive = _docker_archive(case.build(str(outside)))
        if case.expect == REFUSE:
            with pytest.raises(InvalidArgument):
                list(svc.load(io.BytesIO(archive)))
            assert store_state(svc) == before
        else:
            list(svc.load(io.BytesIO(archive)))
            assert svc.resolve("hostile:1")
    finally:
        svc.snapshots.close()
        db.close()


def test_wrong_diff_id_is_refused(sandbox: tuple[Path, Path]) -> None:
    _, tmp = sandbox
    db = MetadataStore(str(tmp / "berth.db"))
    svc = ImageService(str(tmp / "root"), db)
    try:
        before = store_state(svc)
        archive = _docker_archive(make_tar([{"name": "f", "data": b"x"}]),
                                  diff_id="sha256:" + "0" * 64)
        with pytest.raises(InvalidArgument, match="digest mismatch"):
            list(svc.load(io.BytesIO(archive)))
        assert store_state(svc) == before
    finally:
        svc.snapshots.close()
        db.close()


@pytest.mark.parametrize("bad", ["../../../etc/passwd", "/etc/passwd", "missing.tar"])
def test_archive_paths_outside_are_refused(bad: str, sandbox: tuple[Path, Path]) -> None:
    _, tmp = sandbox
    db = MetadataStore(str(tmp / "berth.db"))
    svc = ImageService(str(tmp / "root"), db)
    try:
        manifest = json.dumps([{"Config": "c.json", "Layers": [bad]}]).encode()
        config = json.dumps({"os": "linux", "rootfs": {
            "type": "layers", "diff_ids": ["sha256:" + "1" * 64]}}).encode()
        archive = make_tar([{"name": "manifest.json", "data": manifest},
                            {"name": "c.json", "data": config},
                            {"name": "evil", "type": "symlink", "target": "/etc/passwd"}])
        with pytest.raises(InvalidArgument):
            list(svc.load(io.BytesIO(archive)))
    finally:
        svc.snapshots.close()
        db.close()


def _oci(index: dict[str, Any], blobs: dict[str, bytes]) -> bytes:
    entries = [{"name": "oci-layout", "data": b'{"imageLayoutVersion":"1.0.0"}'},
               {"name": "index.json", "data": json.dumps(index).encode()}]
    entries += [{"name": f"blobs/sha256/{hashlib.sha256(b).hexdigest()}", "data": b}
                for b in blobs.values()]
    return make_tar(entries)


def _self_nesting_index() -> bytes:
    # Index blobs that point at each other: a cycle the loader must not follow forever.
    inner = {"schemaVersion": 2, "manifests": []}
    blobs = {}
    for _ in range(6):
        data = json.dumps(inner).encode()
        blobs[hashlib.sha256(data).hexdigest()] = data
        inner = {"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data),
            "platform": {"os": "linux", "architecture": "amd64"}}]}
    return _oci(inner, blobs)


ARCHIVE_CASES: dict[str, Callable[[], bytes]] = {
    "manifest-is-a-symlink-out": lambda: make_tar([
        {"name": "manifest.json", "type": "symlink", "target": "/etc/hostname"}]),
    "manifest-dotdot": lambda: make_tar([
        {"name": "../manifest.json", "data": b"[]"}]),
    "config-too-large": lambda: make_tar([
        {"name": "manifest.json", "data": json.dumps(
            [{"Config": "c.json", "Layers": []}]).encode()},
        {"name": "c.json", "data": b" " * (9 << 20)}]),
    "indexes-nested-too-deep": _self_nesting_index,
    "oci-blob-wrong-digest": lambda: _oci({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + "a" * 64, "size": 2}]}, {"x": b"{}"}),
    "empty-archive": lambda: b"\0" * 1024,
}


@pytest.mark.parametrize("name", sorted(ARCHIVE_CASES))
def test_bad_image_archives_are_refused(name: str, sandbox: tuple[Path, Path]) -> None:
    _, tmp = sandbox
    db = MetadataStore(str(tmp / "berth.db"))
    svc = ImageService(str(tmp / "root"), db)
    try:
        before = store_state(svc)
        with pytest.raises(InvalidArgument):
            list(svc.load(io.BytesIO(ARCHIVE_CASES[name]())))
        assert store_state(svc) == before
    finally:
        svc.snapshots.close()
        db.close()
