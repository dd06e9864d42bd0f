"""The snapshotter conformance suite: every implementation of ``Snapshotter`` passes it.

Lifecycle and bookkeeping tests need no privileges; the ones that mount what the snapshotter
returns (to prove the mounts present the right tree) need root, and always unmount.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from berth.errors import AlreadyExists, FailedPrecondition, NotFound
from berth.snapshot import Kind, OverlaySnapshotter, Snapshotter
from tests.conformance.layers import mounted

Factory = Callable[[str], Snapshotter]
IMPLEMENTATIONS: dict[str, Factory] = {"overlay": OverlaySnapshotter}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def sn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Snapshotter]:
    s = IMPLEMENTATIONS[request.param](str(tmp_path / "snapshots"))
    yield s
    close = getattr(s, "close", None)
    if close:
        close()


def _upper(mounts: list[dict]) -> str:
    """The writable directory of an active snapshot's mounts."""
    m = mounts[0]
    if m["type"] == "bind":
        return m["source"]
    return next(o.split("=", 1)[1] for o in m["options"] if o.startswith("upperdir="))


def _commit_layer(sn: Snapshotter, name: str, parent: str | None,
                  files: dict[str, bytes]) -> None:
    mounts = sn.prepare(f"tmp-{name}", parent)
    for rel, data in files.items():
        path = os.path.join(_upper(mounts), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if data is None:
            os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))  # an overlay whiteout
        else:
            Path(path).write_bytes(data)
    sn.commit(name, f"tmp-{name}")


def test_prepare_without_parent_is_a_writable_bind(sn: Snapshotter) -> None:
    mounts = sn.prepare("a")
    assert mounts == [{"type": "bind", "source": mounts[0]["source"], "options": ["rw", "rbind"]}]
    assert os.path.isdir(mounts[0]["source"])
    assert sn.mounts("a") == mounts
    info = sn.stat("a")
    assert (info.kind, info.parent) == (Kind.ACTIVE, None)


def test_prepare_on_parent_is_an_overlay(sn: Snapshotter) -> None:
    _commit_layer(sn, "base", None, {"f": b"1"})
    _commit_layer(sn, "mid", "base", {"g": b"2"})
    mounts = sn.prepare("c", "mid")
    assert len(mounts) == 1 and mounts[0]["type"] == "overlay"
    assert mounts[0]["source"] == "overlay"
    opts = dict(o.split("=", 1) for o in mounts[0]["options"])
    lowers = opts["lowerdir"].split(":")
    assert len(lowers) == 2
    assert os.path.exists(os.path.join(lowers[0], "g"))  # nearest layer first
    assert os.path.exists(os.path.join(lowers[1], "f"))
    assert os.path.isdir(opts["upperdir"]) and os.path.isdir(opts["workdir"])


def test_commit_makes_a_parent_and_retires_the_key(sn: Snapshotter) -> None:
    sn.prepare("k")
    sn.commit("layer", "k")
    with pytest.raises(NotFound):
        sn.stat("k")
    assert sn.stat("layer").kind is Kind.COMMITTED
    with pytest.raises(FailedPrecondition):
        sn.mounts("layer")
    with pytest.raises(FailedPrecondition):
        sn.commit("again", "layer")


def test_names_are_unique(sn: Snapshotter) -> None:
    sn.prepare("k")
    with pytest.raises(AlreadyExists):
        sn.prepare("k")
    sn.commit("n", "k")
    sn.prepare("k2")
    with pytest.raises(AlreadyExists):
        sn.commit("n", "k2")
    assert sn.stat("k2").kind is Kind.ACTIVE  # a failed commit leaves the snapshot active


def test_parent_must_exist_and_be_committed(sn: Snapshotter) -> None:
    with pytest.raises(NotFound):
        sn.prepare("x", "missing")
    sn.prepare("active")
    with pytest.raises(FailedPrecondition):
        sn.prepare("x", "active")


def test_views(sn: Snapshotter) -> None:
    assert sn.view("v0")[0]["options"] == ["ro", "rbind"]
    _commit_layer(sn, "base", None, {"f": b"1"})
    one = sn.view("v1", "base")
    assert one[0]["type"] == "bind" and "ro" in one[0]["options"]
    _commit_layer(sn, "top", "base", {"g": b"2"})
    two = sn.view("v2", "top")
    assert two[0]["type"] == "overlay"
    assert not any(o.startswith(("upperdir=", "workdir=")) for o in two[0]["options"])
    assert sn.stat("v2").kind is Kind.VIEW


def test_remove_refuses_parents_and_frees_keys(sn: Snapshotter) -> None:
    _commit_layer(sn, "base", None, {"f": b"1"})
    sn.prepare("child", "base")
    with pytest.raises(FailedPrecondition):
        sn.remove("base")
    upper = _upper(sn.mounts("child"))
    sn.remove("child")
    assert not os.path.exists(upper)
    sn.remove("base")
    with pytest.raises(NotFound):
        sn.remove("base")
    assert list(sn.walk()) == []
    sn.prepare("base")  # the name is free again


def test_walk_and_usage(sn: Snapshotter) -> None:
    _commit_layer(sn, "base", None, {"a": b"12345", "d/b": b"123"})
    sn.prepare("c", "base", labels={"x": "y"})
    infos = {i.key: i for i in sn.walk()}
    assert set(infos) == {"base", "c"}
    assert infos["c"].parent == "base" and infos["c"].labels == {"x": "y"}
    usage = sn.usage("base")
    assert usage.size == 8 and usage.inodes == 3


def test_layers_are_shared(sn: Snapshotter) -> None:
    _commit_layer(sn, "base", None, {"f": b"1"})
    lowers = set()
    for i in range(50):
        m = sn.prepare(f"ctr{i}", "base")
        lowers.add(m[0]["source"] if m[0]["type"] == "bind" else m[0]["options"][0])
    assert len(lowers) == 1
    assert len(list(sn.walk())) == 51


@pytest.mark.root
def test_mounts_present_the_stacked_tree(sn: Snapshotter, tmp_path: Path) -> None:
    _commit_layer(sn, "base", None, {"etc/a": b"base", "etc/gone": b"x", "keep": b"k"})
    _commit_layer(sn, "top", "base", {"etc/a": b"top", "etc/gone": None})
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(sn.prepare("ctr", "top"), str(target)):
        assert (target / "etc/a").read_bytes() == b"top"
        assert not (target / "etc/gone").exists()
        assert (target / "keep").read_bytes() == b"k"
        (target / "new").write_bytes(b"written")
    # Writes land in the container's own upper directory only.
    assert Path(_upper(sn.mounts("ctr")), "new").read_bytes() == b"written"
    with mounted(sn.view("look", "top"), str(target)):
        assert (target / "etc/a").read_bytes() == b"top"
        with pytest.raises(OSError):
            (target / "nope").write_bytes(b"x")
    assert os.listdir(target) == []


@pytest.mark.root
def test_single_layer_mounts(sn: Snapshotter, tmp_path: Path) -> None:
    _commit_layer(sn, "base", None, {"f": b"1"})
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(sn.view("v", "base"), str(target)):
        assert (target / "f").read_bytes() == b"1"
    with mounted(sn.prepare("rw", "base"), str(target)):
        (target / "g").write_bytes(b"2")
    assert os.listdir(target) == []


def test_overlay_cleanup_removes_orphans(tmp_path: Path) -> None:
    s = OverlaySnapshotter(str(tmp_path))
    s.prepare("kept")
    os.makedirs(tmp_path / "999" / "fs")
    os.makedirs(tmp_path / "rm-3" / "fs")
    assert sorted(s.cleanup()) == ["999", "rm-3"]
    assert s.stat("kept").kind is Kind.ACTIVE
    s.close()


@pytest.mark.root
def test_long_chains_still_mount(sn: Snapshotter, tmp_path: Path) -> None:
    """More layers than one mount's options can name: the lowers are flattened once."""
    parent = None
    depth = 150
    for i in range(depth):
        files: dict[str, bytes | None] = {f"layer{i}": str(i).encode(), "top": str(i).encode()}
        if i == depth - 1:
            files["layer0"] = None  # a whiteout in the last layer
        _commit_layer(sn, f"l{i}", parent, files)  # type: ignore[arg-type]
        parent = f"l{i}"
    mounts = sn.prepare("deep", parent)
    opts = ",".join(mounts[0]["options"])
    assert len(opts) < os.sysconf("SC_PAGESIZE")
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(mounts, str(target)):
        assert (target / "top").read_text() == str(depth - 1)
        assert (target / "layer1").read_text() == "1"
        assert not (target / "layer0").exists()
        (target / "new").write_text("w")
    assert os.path.exists(os.path.join(_upper(mounts), "new"))
    assert sn.mounts("deep") == mounts  # made once, reused
    sn.remove("deep")


def test_fifty_containers_share_one_image(sn: Snapshotter) -> None:
    """Fifty active snapshots on one image cost their directories, not copies."""
    _commit_layer(sn, "image", None, {f"f{i}": os.urandom(100_000) for i in range(20)})
    root = getattr(sn, "root", None)
    if root is None:
        pytest.skip("no directory to measure")

    def used() -> int:
        total = 0
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                if n.endswith(("-wal", "-shm")):
                    continue  # SQLite's journal: reused, bounded by checkpoints, not per row
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
        return total

    before = used()
    for i in range(50):
        sn.prepare(f"c{i}", "image")
    extra = used() - before
    assert extra <= 1 << 20, f"50 containers took {extra} bytes"
