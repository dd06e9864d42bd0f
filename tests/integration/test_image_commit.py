"""A container's changes from its snapshot: ``docker diff``, commit and export, through the
image service alone (the container's writes are made straight into its upper directory,
as overlayfs would record them: files, 0/0 character-device whiteouts, opaque dirs)."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.errors import NotFound
from berth.image import ImageService
from berth.metadata import MetadataStore
from tests.conformance.layers import FIXTURES, assert_matches_expected, mounted

pytestmark = pytest.mark.root

EMPTY_TAR = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
MULTI = "fixture/multilayer:1"


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    db = MetadataStore(str(tmp_path / "berth.db"))
    service = ImageService(str(tmp_path / "root"), db)
    with open(FIXTURES / "multilayer-docker-save.tar", "rb") as f:
        list(service.load(f, quiet=True))
    yield service
    service.snapshots.close()
    db.close()


def container(svc: ImageService, key: str = "c" * 64) -> str:
    svc.prepare_rootfs(key, svc.resolve(MULTI).id)
    return svc.snapshots.upperdir(key)


def write_changes(upper: str) -> None:
    """What ``echo hi > /x; rm /bin/ls; echo y >> /etc/passwd; rm -rf /deep; mkdir /data/opq``
    leaves in an overlay upper dir, plus the runtime's own mount points."""
    os.makedirs(f"{upper}/bin")
    os.mknod(f"{upper}/bin/ls", stat.S_IFCHR, 0)
    os.makedirs(f"{upper}/etc")
    Path(f"{upper}/etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\ny\n")
    for name in ("hostname", "hosts", "resolv.conf"):
        Path(f"{upper}/etc/{name}").touch()
    Path(f"{upper}/x").write_text("hi\n")
    os.mknod(f"{upper}/deep", stat.S_IFCHR, 0)
    os.makedirs(f"{upper}/data/opq")
    os.setxattr(f"{upper}/data/opq", "trusted.overlay.opaque", b"y")
    Path(f"{upper}/data/opq/new").write_text("n")


def test_changes_as_docker_diff(svc: ImageService) -> None:
    key = "c" * 64
    write_changes(container(svc, key))
    got = [(c["Path"], c["Kind"]) for c in svc.container_changes(key)]
    assert got == [
        ("/bin", 0), ("/bin/ls", 2),
        ("/data", 0), ("/data/opq", 2), ("/data/opq/new", 1),
        ("/deep", 2),
        ("/etc", 0), ("/etc/passwd", 0),
        ("/x", 1),
    ]


def test_no_changes_no_layer(svc: ImageService) -> None:
    key = "c" * 64
    upper = container(svc, key)
    os.makedirs(f"{upper}/etc")
    Path(f"{upper}/etc/hosts").touch()  # the runtime's mount point only
    assert svc.container_changes(key) == []
    parent = svc.resolve(MULTI)
    image_id = svc.commit(key, parent.id, {"Cmd": ["sh"]}, run_config={"Cmd": ["true"]})
    rec = svc.resolve(image_id)
    assert rec.diff_ids == parent.diff_ids and rec.chain_id == parent.chain_id
    assert rec.config["history"][-1]["empty_layer"] is True
    assert not svc.content.exists(EMPTY_TAR)


def layer_tar(svc: ImageService, diff_id: str) -> bytes:
    return svc.content.read(diff_id)


def test_commit_layer_holds_only_the_changes(svc: ImageService, tmp_path: Path) -> None:
    key = "c" * 64
    write_changes(container(svc, key))
    parent = svc.resolve(MULTI)
    image_id = svc.commit(key, parent.id, {"Cmd": ["cat", "/x"], "Env": ["A=1"]},
                          container_id=key, run_config={"Cmd": ["sh", "-c", "echo hi"]},
                          author="me", comment="msg", reference="mine:1")
    rec = svc.resolve("mine:1")
    assert rec.id == image_id
    assert rec.diff_ids[:-1] == parent.diff_ids
    cfg = rec.config
    assert cfg["author"] == "me" and cfg["comment"] == "msg" and cfg["container"] == key
    assert cfg["config"]["Cmd"] == ["cat", "/x"]
    assert cfg["history"][-1]["created_by"] == "sh -c echo hi"
    assert list(cfg) == sorted(cfg)
    assert svc.inspect(image_id)["Parent"] == parent.id
    with tarfile.open(fileobj=io.BytesIO(layer_tar(svc, rec.diff_ids[-1]))) as tar:
        names = tar.getnames()
    assert names == ["bin", "bin/.wh.ls", "data", "data/opq", "data/opq/.wh..wh..opq",
                     "data/opq/new", ".wh.deep", "etc", "etc/passwd", "x"]
    # The image's tree: a container of it sees the changes.
    svc.prepare_rootfs("d" * 64, image_id)
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(svc.rootfs_mounts("d" * 64), str(target)):
        assert (target / "x").read_text() == "hi\n"
        assert not (target / "bin/ls").exists() and not (target / "deep").exists()
        assert os.listdir(target / "data/opq") == ["new"]
        assert not (target / "etc/hosts").exists()


def test_commit_is_deterministic(svc: ImageService) -> None:
    a, b = "a" * 64, "b" * 64
    write_changes(container(svc, a))
    write_changes(container(svc, b))
    for key in (a, b):  # the same changes at different times
        for root, dirs, files in os.walk(svc.snapshots.upperdir(key)):
            for n in dirs + files:
                os.utime(os.path.join(root, n), (1_000_000_000, 1_000_000_000),
                         follow_symlinks=False)
    parent = svc.resolve(MULTI).id
    one = svc.resolve(svc.commit(a, parent, {}))
    two = svc.resolve(svc.commit(b, parent, {}))
    again = svc.resolve(svc.commit(a, parent, {}))
    assert one.diff_ids[-1] == two.diff_ids[-1] == again.diff_ids[-1]
    assert one.chain_id == two.chain_id


def test_export_is_the_flattened_tree(svc: ImageService, tmp_path: Path) -> None:
    key = "c" * 64
    container(svc, key)
    buf = io.BytesIO()
    svc.export_container(key, buf)
    out = tmp_path / "out"
    out.mkdir()
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        tar.extractall(out, filter="fully_trusted")
    assert_matches_expected(str(out))


def test_export_shows_changes(svc: ImageService) -> None:
    key = "c" * 64
    write_changes(container(svc, key))
    buf = io.BytesIO()
    svc.export_container(key, buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        names = set(tar.getnames())
        assert tar.extractfile("x").read() == b"hi\n"  # type: ignore[union-attr]
    assert "x" in names and "bin/ls" not in names and "deep" not in names
    assert "data/opq/new" in names and "data/opq/d" not in names
    assert "bin/sh" in names and "etc/hosts" in names  # mount points, as docker export has


def test_commit_of_unknown_container(svc: ImageService) -> None:
    with pytest.raises(NotFound):
        svc.commit("e" * 64, svc.resolve(MULTI).id, {})
    assert json.loads(json.dumps(svc.list()))  # the store is intact
