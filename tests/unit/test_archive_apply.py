"""Layer apply: fidelity to real layers, whiteouts, and refusal of hostile archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from berth.archive import (
    Compression,
    Limits,
    TarReader,
    WhiteoutMode,
    apply_layer,
    open_decompressed,
    write_tar,
)
from berth.errors import InvalidArgument
from tests.conformance.layers import FIXTURES, assert_matches_expected, describe, make_tar

pytestmark = pytest.mark.root  # unpacking sets owners and makes device nodes

REMOVE = WhiteoutMode.REMOVE
OVERLAY = WhiteoutMode.OVERLAY


def _apply(data: bytes, dest: Path, mode: WhiteoutMode = REMOVE, **kw: object):
    return apply_layer(io.BytesIO(data), str(dest), whiteouts=mode, **kw)  # type: ignore[arg-type]


def _docker_save_layers(tmp_path: Path) -> tuple[list[Path], list[str]]:
    out = tmp_path / "save"
    out.mkdir()
    with tarfile.open(FIXTURES / "multilayer-docker-save.tar") as t:
        t.extractall(out, filter="data")
    manifest = json.loads((out / "manifest.json").read_text())[0]
    config = json.loads((out / manifest["Config"]).read_text())
    return [out / p for p in manifest["Layers"]], config["rootfs"]["diff_ids"]


def test_fixture_layers_flatten_to_the_expected_tree(tmp_path: Path) -> None:
    layers, diff_ids = _docker_save_layers(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    for layer, diff_id in zip(layers, diff_ids, strict=True):
        with open(layer, "rb") as f:
            result = apply_layer(f, str(root), whiteouts=REMOVE, expected_diff_id=diff_id)
        assert result.diff_id == diff_id
        assert result.compression is Compression.NONE
    assert_matches_expected(str(root))
    # The 2001 mtime of the hard-linked setuid file survives.
    assert os.lstat(root / "data/keep/a").st_mtime == 981173106


def test_oci_gzip_layers_flatten_to_the_expected_tree(tmp_path: Path) -> None:
    out = tmp_path / "oci"
    out.mkdir()
    with tarfile.open(FIXTURES / "multilayer-oci.tar") as t:
        t.extractall(out, filter="data")
    index = json.loads((out / "index.json").read_text())
    mdigest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((out / "blobs/sha256" / mdigest).read_text())
    config = json.loads((out / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    root = tmp_path / "root"
    root.mkdir()
    for desc, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        with open(out / "blobs/sha256" / desc["digest"][7:], "rb") as f:
            result = apply_layer(f, str(root), whiteouts=REMOVE, expected_diff_id=diff_id)
        assert result.compression is Compression.GZIP
    assert_matches_expected(str(root))


def test_overlay_mode_writes_overlay_whiteouts(tmp_path: Path) -> None:
    layers, _ = _docker_save_layers(tmp_path)
    upper = tmp_path / "upper"
    upper.mkdir()
    with open(layers[2], "rb") as f:
        apply_layer(f, str(upper), whiteouts=OVERLAY)
    for name in ("data/del.txt", "data/gone"):
        st = os.lstat(upper / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(upper / "data/opq", "trusted.overlay.opaque") == b"y"
    assert not (upper / "data/opq/.wh..wh..opq").exists()
    assert (upper / "data/opq/d").read_bytes() == b"new\n"


def test_diff_id_covers_the_whole_stream_and_compressions(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    raw = make_tar([{"name": "a", "data": b"hello"}])
    assert len(raw) % 10240 == 0  # tarfile pads: the padding is part of the diff ID
    want = "sha256:" + hashlib.sha256(raw).hexdigest()
    for data, kind in [(raw, Compression.NONE), (gzip.compress(raw), Compression.GZIP),
                       (zstandard.ZstdCompressor().compress(raw), Compression.ZSTD)]:
        dest = tmp_path / kind.value
        dest.mkdir()
        result = _apply(data, dest)
        assert (result.diff_id, result.compression, result.tar_size) == (want, kind, len(raw))
        assert (dest / "a").read_bytes() == b"hello"


def test_diff_id_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        _apply(make_tar([{"name": "a"}]), tmp_path, expected_diff_id="sha256:" + "0" * 64)


def test_metadata_is_kept(tmp_path: Path) -> None:
    _apply(make_tar([
        {"name": "d", "type": "dir", "mode": 0o1777, "uid": 7, "gid": 8, "mtime": 12345},
        {"name": "d/suid", "data": b"x", "mode": 0o4755, "uid": 1000, "gid": 1000},
        {"name": "d/sgid", "data": b"x", "mode": 0o2711, "uid": 0, "gid": 50},
        {"name": "d/fifo", "type": "fifo", "mode": 0o640},
        {"name": "d/null", "type": "char", "major": 1, "minor": 3, "mode": 0o666},
        {"name": "d/x", "data": b"x", "xattrs": {"user.note": "hi"}},
        {"name": "d/ln", "type": "symlink", "target": "/nowhere", "uid": 5, "gid": 6},
    ]), tmp_path)
    d = os.lstat(tmp_path / "d")
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_gid, d.st_mtime) == (0o1777, 7, 8, 12345)
    s = os.lstat(tmp_path / "d/suid")
    assert (stat.S_IMODE(s.st_mode), s.st_uid) == (0o4755, 1000)
    assert stat.S_IMODE(os.lstat(tmp_path / "d/sgid").st_mode) == 0o2711
    assert stat.S_ISFIFO(os.lstat(tmp_path / "d/fifo").st_mode)
    null = os.lstat(tmp_path / "d/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert os.getxattr(tmp_path / "d/x", "user.note") == b"hi"
    ln = os.lstat(tmp_path / "d/ln")
    assert (os.readlink(tmp_path / "d/ln"), ln.st_uid, ln.st_gid) == ("/nowhere", 5, 6)


def test_duplicates_last_wins(tmp_path: Path) -> None:
    _apply(make_tar([
        {"name": "f", "data": b"one"},
        {"name": "f", "data": b"two"},
        {"name": "d", "type": "dir", "mode": 0o700},
        {"name": "d/keep", "data": b"k"},
        {"name": "d", "type": "dir", "mode": 0o755},   # dir over dir: keeps the children
        {"name": "x", "type": "dir"},
        {"name": "x/child", "data": b"c"},
        {"name": "x", "data": b"file now"},            # file over dir: the dir goes
        {"name": "l", "type": "symlink", "target": "f"},
        {"name": "l", "data": b"plain"},               # file over symlink: not written through
    ]), tmp_path)
    assert (tmp_path / "f").read_bytes() == b"two"
    assert (tmp_path / "d/keep").exists()
    assert stat.S_IMODE(os.lstat(tmp_path / "d").st_mode) == 0o755
    assert (tmp_path / "x").read_bytes() == b"file now"
    assert (tmp_path / "l").read_bytes() == b"plain" and not (tmp_path / "l").is_symlink()
    assert (tmp_path / "f").read_bytes() == b"two"


def test_whiteouts_remove_mode(tmp_path: Path) -> None:
    _apply(make_tar([{"name": "a", "data": b"1"}, {"name": "d", "type": "dir"},
                     {"name": "d/lower", "data": b"1"}, {"name": "d/sub", "type": "dir"},
                     {"name": "d/sub/deep", "data": b"1"}]), tmp_path)
    _apply(make_tar([{"name": ".wh.a"}, {"name": "d", "type": "dir"},
                     {"name": "d/new", "data": b"2"}, {"name": "d/.wh..wh..opq"}]), tmp_path)
    assert not (tmp_path / "a").exists()
    assert sorted(os.listdir(tmp_path / "d")) == ["new"]


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "./../escape"])
def test_dotdot_escape_is_refused(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InvalidArgument, match="escapes the root"):
        _apply(make_tar([{"name": name, "data": b"x"}]), dest)
    assert not (tmp_path / "escape").exists()


def test_absolute_paths_are_contained(tmp_path: Path) -> None:
    _apply(make_tar([{"name": "/etc/berth-test-file", "data": b"x"}]), tmp_path)
    assert (tmp_path / "etc/berth-test-file").read_bytes() == b"x"
    assert not Path("/etc/berth-test-file").exists()


@pytest.mark.parametrize("target", ["OUTSIDE", "../../../../../../OUTSIDE", "../OUTSIDE"])
def test_symlink_then_write_through_stays_inside(tmp_path: Path, target: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    target = target.replace("OUTSIDE", str(outside).lstrip("/") if target == "OUTSIDE"
                            else "outside")
    if target.startswith(str(outside).lstrip("/")):
        target = "/" + target  # an absolute link to the real outside directory
    _apply(make_tar([
        {"name": "evil", "type": "symlink", "target": target},
        {"name": "evil/pwned", "data": b"x"},
        {"name": "evil/sub/pwned2", "data": b"y"},
    ]), dest)
    assert os.listdir(outside) == []
    written = [p for p in describe(str(dest))[0] if p.endswith("pwned")]
    assert len(written) == 1  # landed inside dest, where a chroot would have put it


def test_symlink_parent_chain_cannot_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    _apply(make_tar([
        {"name": "a", "type": "symlink", "target": "b/../.."},
        {"name": "b", "type": "dir"},
        {"name": "c", "type": "symlink", "target": "a/a/a/outside"},
        {"name": "c/file", "data": b"x"},
    ]), dest)
    assert os.listdir(outside) == []
    assert (dest / "outside/file").exists()


def test_hard_link_outside_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"host secret")
    dest = tmp_path / "dest"
    dest.mkdir()
    for target in ["../secret", "/" + str(secret).lstrip("/")]:
        with pytest.raises(InvalidArgument):
            _apply(make_tar([{"name": "h", "type": "link", "target": target}]), dest)
    # Through a symlinked directory: resolved inside the root, where there is no such file.
    with pytest.raises(InvalidArgument, match="not found"):
        _apply(make_tar([{"name": "up", "type": "symlink", "target": str(tmp_path)},
                         {"name": "h", "type": "link", "target": "up/secret"}]), dest)
    assert os.stat(secret).st_nlink == 1


def test_hard_link_inside_works(tmp_path: Path) -> None:
    _apply(make_tar([{"name": "a", "data": b"x", "mode": 0o4755},
                     {"name": "d/b", "type": "link", "target": "a"}]), tmp_path)
    assert os.stat(tmp_path / "a").st_ino == os.stat(tmp_path / "d/b").st_ino


def test_bad_input_is_invalid_argument(tmp_path: Path) -> None:
    raw = make_tar([{"name": "big", "data": os.urandom(50_000)}])
    cases = {
        "truncated": raw[:20_000],
        "not a tar": b"this is not a tar archive at all" * 40,
        "truncated gzip": gzip.compress(raw)[:3000],
        "bad checksum": raw[:148] + b"99999999" + raw[156:],
    }
    for what, data in cases.items():
        dest = tmp_path / what.replace(" ", "-")
        dest.mkdir()
        with pytest.raises(InvalidArgument):
            _apply(data, dest)


def test_absurd_metadata_and_bombs_are_bounded(tmp_path: Path) -> None:
    # A PAX header claiming 1 GiB: refused from the header alone, nothing buffered.
    ti = tarfile.TarInfo("x")
    ti.type = tarfile.XHDTYPE
    ti.size = 1 << 30
    header = ti.tobuf(format=tarfile.USTAR_FORMAT)
    with pytest.raises(InvalidArgument, match="too large"):
        _apply(header + b"\0" * 1024, tmp_path)
    # A decompression bomb: 64 MiB of zeros in ~64 KiB of gzip, with a 1 MiB limit.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        big = tarfile.TarInfo("zeros")
        big.size = 64 << 20
        tar.addfile(big, io.BytesIO(bytes(big.size)))
    assert len(buf.getvalue()) < 200_000
    dest = tmp_path / "bomb"
    dest.mkdir()
    with pytest.raises(InvalidArgument, match="limit"):
        _apply(buf.getvalue(), dest, limits=Limits(max_bytes=1 << 20))


def test_reader_formats(tmp_path: Path) -> None:
    long = "d/" + "n" * 150 + "/" + "f" * 120
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
        name = long if fmt != tarfile.USTAR_FORMAT else "d/" + "n" * 90 + "/" + "f" * 90
        data = make_tar([{"name": name, "data": b"x", "uid": 3_000_000 if fmt ==
                          tarfile.GNU_FORMAT else 7}], fmt=fmt)
        src, _ = open_decompressed(io.BytesIO(data))
        entries = list(TarReader(src))
        assert [e.name for e in entries] == [name]
        if fmt == tarfile.GNU_FORMAT:
            assert entries[0].uid == 3_000_000  # base-256 encoded


def test_write_tar_round_trips(tmp_path: Path) -> None:
    layers, _ = _docker_save_layers(tmp_path)
    flat = tmp_path / "flat"
    flat.mkdir()
    for layer in layers:
        with open(layer, "rb") as f:
            apply_layer(f, str(flat), whiteouts=REMOVE)
    buf = io.BytesIO()
    write_tar(str(flat), buf)
    again = tmp_path / "again"
    again.mkdir()
    _apply(buf.getvalue(), again)
    assert describe(str(again)) == describe(str(flat))


def test_write_tar_turns_overlay_whiteouts_back(tmp_path: Path) -> None:
    layers, _ = _docker_save_layers(tmp_path)
    upper = tmp_path / "upper"
    upper.mkdir()
    with open(layers[2], "rb") as f:
        apply_layer(f, str(upper), whiteouts=OVERLAY)
    buf = io.BytesIO()
    write_tar(str(upper), buf, whiteouts=OVERLAY)
    names = tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()
    assert {"data/.wh.del.txt", "data/.wh.gone", "data/opq/.wh..wh..opq"} <= set(names)
    assert "data/del.txt" not in names
