"""The three users of berth.util.rootpath keep their own policies and messages: layer apply
(creates, refuses a non-directory), ``docker cp`` (last component may be missing, followed only
after ``/``), mount destinations (missing parts joined lexically)."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest

from berth import errors
from berth.archive import WhiteoutMode, apply_layer
from berth.container import fs
from berth.runtime.rootfs import secure_join
from tests.conformance.layers import make_tar


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "hosts").write_text("")
    (r / "real").mkdir()
    os.symlink("/real", r / "abs")
    os.symlink("../../..", r / "up")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    return r


def _apply(entries: list[dict[str, object]], dest: Path) -> None:
    apply_layer(io.BytesIO(make_tar(entries)), str(dest), whiteouts=WhiteoutMode.REMOVE)


@pytest.mark.root
def test_apply_messages(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(errors.InvalidArgument, match=r"^cannot unpack under f/x: not a directory$"):
        _apply([{"name": "f", "data": b"x"}, {"name": "f/x/y", "data": b"y"}], dest)
    with pytest.raises(errors.InvalidArgument,
                       match=r"^l1/d: too many levels of symbolic links$"):
        _apply([{"name": "l1", "type": "symlink", "target": "l2"},
                {"name": "l2", "type": "symlink", "target": "l1"},
                {"name": "l1/d/file", "data": b"x"}], dest)
    with pytest.raises(errors.InvalidArgument, match="not found in the layer"):
        _apply([{"name": "h", "type": "link", "target": "missing/file"}], dest)


@pytest.mark.root
def test_apply_creates_parents_through_links_inside(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    _apply([{"name": "up", "type": "symlink", "target": "../../../.."},
            {"name": "up/new/dir/file", "data": b"x"}], dest)
    assert (dest / "new" / "dir" / "file").read_bytes() == b"x"
    assert sorted(os.listdir(tmp_path)) == ["dest"]


def test_cp_resolution_and_messages(root: Path) -> None:
    res = fs.resolve(str(root), "/abs")
    assert (res.parent, res.name) == ((), "abs")  # the last link itself
    res = fs.resolve(str(root), "/abs/")
    assert (res.parent, res.name) == ((), "real")
    res = fs.resolve(str(root), "/up/etc/new")
    assert (res.parent, res.name) == (("etc",), "new")
    assert fs.resolve(str(root), "/").host_path == f"{root}/."
    with pytest.raises(errors.NotFound, match=r"^Could not find the file /nope/x in container$"):
        fs.resolve(str(root), "/nope/x")
    with pytest.raises(errors.InvalidArgument, match=r"^hosts: not a directory$"):
        fs.resolve(str(root), "/etc/hosts/x")
    with pytest.raises(errors.InvalidArgument, match=r"^too many levels of symbolic links$"):
        fs.resolve(str(root), "/loop1/")
    with pytest.raises(errors.InvalidArgument, match="path is empty"):
        fs.resolve(str(root), "")


def test_cp_open_file_never_follows_a_last_link(root: Path, tmp_path: Path) -> None:
    (tmp_path / "host-secret").write_text("no")
    os.symlink(str(tmp_path / "host-secret"), root / "etc" / "passwd")
    assert fs.open_file_in_root(str(root), "/etc/passwd") is None
    fd = fs.open_file_in_root(str(root), "/abs/../etc/hosts")
    assert fd is not None
    os.close(fd)


def test_mount_destination_messages(root: Path) -> None:
    assert secure_join(str(root), "/etc/hosts/x/../y") == f"{root}/etc/hosts/y"
    with pytest.raises(OSError) as err:
        secure_join(str(root), "/loop1/x")
    assert (err.value.errno, err.value.strerror, err.value.filename) == (
        errno.ELOOP, "too many symlinks resolving path in rootfs", "/loop1/x")
