"""berth.util.rootpath: paths resolved inside a root as a chroot would, whatever the tree holds.

No root needed: the trees are built in a temp dir, with a sibling ``outside`` that nothing
may ever reach.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.util.rootpath import Missing, RootWalker


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """root/{etc/hosts, real/x/, abs -> /real, up -> ../../../real, out -> /../outside,
    file, loop1 <-> loop2, self -> self}, and tmp/outside/secret next to it."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("no")
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "hosts").write_text("")
    (r / "real" / "x").mkdir(parents=True)
    (r / "file").write_text("")
    os.symlink("/real", r / "abs")
    os.symlink("../../../real", r / "up")
    os.symlink("/../outside", r / "out")
    os.symlink("../outside/secret", r / "real" / "sneaky")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink("self", r / "self")
    return r


def resolve(root: Path, path: str, **kw: object) -> tuple[str, ...]:
    with RootWalker(str(root)) as walker:
        return walker.resolve(path, **kw)  # type: ignore[arg-type]


def test_plain_and_dotdot_clamped_at_the_root(root: Path) -> None:
    assert resolve(root, "/etc/hosts") == ("etc", "hosts")
    assert resolve(root, "") == ()
    assert resolve(root, "/../../..") == ()
    assert resolve(root, "../../etc/./hosts") == ("etc", "hosts")
    assert resolve(root, "real/x/../../../../etc") == ("etc",)


def test_absolute_and_relative_links_stay_inside(root: Path) -> None:
    assert resolve(root, "/abs/x") == ("real", "x")
    assert resolve(root, "/up/x") == ("real", "x")
    assert resolve(root, "/out", missing=Missing.LEXICAL) == ("outside",)
    assert resolve(root, "/real/sneaky", missing=Missing.LEXICAL) == ("outside", "secret")
    with pytest.raises(FileNotFoundError):
        resolve(root, "/out/secret")
    with pytest.raises(FileNotFoundError):
        resolve(root, "/real/sneaky")


def test_dotdot_after_a_link_is_physical(root: Path) -> None:
    # /abs is /real: its parent is the root, not the directory holding the link.
    assert resolve(root, "/real/x/../../abs/..") == ()
    assert resolve(root, "/abs/x/..") == ("real",)


@pytest.mark.parametrize("missing", list(Missing))
@pytest.mark.parametrize("path", ["/loop1", "/self/x", "/loop2/a/b"])
def test_link_loops_fail_with_eloop(root: Path, missing: Missing, path: str) -> None:
    with pytest.raises(OSError) as err:
        resolve(root, path, missing=missing)
    assert err.value.errno == errno.ELOOP


def test_link_limit_counts_every_link(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.symlink("d", tmp_path / "l0")
    for i in range(1, 6):
        os.symlink(f"l{i - 1}", tmp_path / f"l{i}")
    with RootWalker(str(tmp_path), max_links=6) as walker:
        assert walker.resolve("l5") == ("d",)
    with RootWalker(str(tmp_path), max_links=5) as walker, pytest.raises(OSError) as err:
        walker.resolve("l5")
    assert err.value.errno == errno.ELOOP


@pytest.mark.parametrize("missing", [Missing.FAIL, Missing.ALLOW_LAST, Missing.CREATE])
def test_a_file_in_the_middle_is_not_a_directory(root: Path, missing: Missing) -> None:
    with pytest.raises(NotADirectoryError) as err:
        resolve(root, "/etc/hosts/x", missing=missing)
    assert err.value.filename == "hosts"
    assert not (root / "etc" / "hosts").is_dir()


def test_a_file_in_the_middle_joins_lexically(root: Path) -> None:
    assert resolve(root, "/etc/hosts/x/y", missing=Missing.LEXICAL) == ("etc", "hosts", "x", "y")
    assert resolve(root, "/file/../abs", missing=Missing.LEXICAL) == ("real",)


def test_last_component_kind(root: Path) -> None:
    assert resolve(root, "/etc/hosts") == ("etc", "hosts")
    with pytest.raises(NotADirectoryError):
        resolve(root, "/etc/hosts", directory=True)
    assert resolve(root, "/etc", directory=True) == ("etc",)
    with pytest.raises(ValueError):
        resolve(root, "/etc", directory=True, follow_last=False)


def test_last_link_is_left_alone_unless_followed(root: Path) -> None:
    assert resolve(root, "/abs", follow_last=False) == ("abs",)
    assert resolve(root, "/loop1", follow_last=False) == ("loop1",)
    assert resolve(root, "/nothing", follow_last=False) == ("nothing",)
    assert resolve(root, "/abs/x", follow_last=False) == ("real", "x")
    assert resolve(root, "/abs/..", follow_last=False) == ()  # not last: walked, then left
    assert resolve(root, "/abs") == ("real",)


def test_missing_fail(root: Path) -> None:
    with pytest.raises(FileNotFoundError):
        resolve(root, "/etc/nothing")
    with pytest.raises(FileNotFoundError):
        resolve(root, "/nothing/x")


def test_missing_allow_last(root: Path) -> None:
    assert resolve(root, "/etc/nothing", missing=Missing.ALLOW_LAST) == ("etc", "nothing")
    assert resolve(root, "/abs/new/", missing=Missing.ALLOW_LAST) == ("real", "new")
    with pytest.raises(FileNotFoundError):
        resolve(root, "/nothing/x", missing=Missing.ALLOW_LAST)


def test_missing_lexical(root: Path) -> None:
    assert resolve(root, "/a/b/../c", missing=Missing.LEXICAL) == ("a", "c")
    # Back out of the written part, the walk resolves again.
    assert resolve(root, "/a/b/../../abs/x", missing=Missing.LEXICAL) == ("real", "x")
    assert resolve(root, "/abs/new/../x", missing=Missing.LEXICAL) == ("real", "x")


def test_missing_create(root: Path) -> None:
    with RootWalker(str(root)) as walker:
        assert walker.resolve("/abs/p/q", missing=Missing.CREATE) == ("real", "p", "q")
        assert walker.created == [("real", "p"), ("real", "p", "q")]
        fd = walker.dir_fd(("real", "p", "q"))
        assert os.fstat(fd).st_ino == os.stat(root / "real" / "p" / "q").st_ino
    assert stat.S_ISDIR(os.lstat(root / "real" / "p" / "q").st_mode)


def test_create_through_a_link_out_creates_inside(root: Path) -> None:
    with RootWalker(str(root)) as walker:
        assert walker.resolve("/out/new", missing=Missing.CREATE) == ("outside", "new")
    assert (root / "outside" / "new").is_dir()
    assert sorted(os.listdir(root.parent / "outside")) == ["secret"]


def test_borrowed_root_fd_is_left_open_and_cache_is_bounded(root: Path) -> None:
    deep = root.joinpath(*"abcdefgh")
    deep.mkdir(parents=True)
    before = len(os.listdir("/proc/self/fd"))
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        walker = RootWalker(fd, cache_size=3)
        phys = walker.resolve("a/b/c/d/e/f/g/h/../../g/h")
        assert phys == tuple("abcdefgh")
        assert len(os.listdir("/proc/self/fd")) <= before + 1 + 3 + 1
        assert os.fstat(walker.dir_fd(phys)).st_ino == os.stat(deep).st_ino
        walker.close()
        os.fstat(fd)  # still ours
    finally:
        os.close(fd)
    assert len(os.listdir("/proc/self/fd")) == before


# -- property: whatever the tree and the path, the walk stays inside the root ------------

_NAMES = ("a", "b", "c")
_COMPONENT = st.sampled_from((*_NAMES, "..", ".", ""))
_REL = st.lists(_COMPONENT, min_size=1, max_size=5).map("/".join)
_LINK_TARGET = st.tuples(st.booleans(), _REL).map(lambda t: ("/" if t[0] else "") + t[1])
_ENTRY = st.tuples(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3),
                   st.one_of(st.just("dir"), st.just("file"), _LINK_TARGET))


def _build(root: str, entries: list[tuple[list[str], str]]) -> None:
    for names, kind in entries:
        path = os.path.join(root, *names)
        parent = os.path.dirname(path)
        if os.path.lexists(path) or os.path.realpath(parent) != parent or not os.path.isdir(parent):
            continue  # only plant entries in real directories of the tree
        if kind == "dir":
            os.mkdir(path)
        elif kind == "file":
            open(path, "w").close()
        else:
            os.symlink(kind or ".", path)


def _snapshot(top: str) -> Iterator[str]:
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            yield os.path.relpath(os.path.join(d, n), top)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(_ENTRY, max_size=12), path=_REL, absolute=st.booleans(),
       missing=st.sampled_from(list(Missing)),
       last=st.sampled_from([(True, False), (True, True), (False, False)]))
def test_result_is_always_inside_the_root(entries: list[tuple[list[str], str]], path: str,
                                          absolute: bool, missing: Missing,
                                          last: tuple[bool, bool]) -> None:
    follow_last, directory = last
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        outside = os.path.join(tmp, "a")  # what a link to /.. or ../a would reach on the host
        os.mkdir(root)
        os.mkdir(outside)
        _build(root, entries)
        with RootWalker(root) as walker:
            try:
                phys = walker.resolve(("/" if absolute else "") + path, missing=missing,
                                      follow_last=follow_last, directory=directory)
            except (FileNotFoundError, NotADirectoryError):
                return
            except OSError as e:
                assert e.errno == errno.ELOOP
                return
            assert all(p not in ("", ".", "..") and "/" not in p for p in phys)
            # The longest prefix that exists is a real directory chain under the root.
            real = phys
            while real and not os.path.lexists(os.path.join(root, *real)):
                real = real[:-1]
            if real and not stat.S_ISDIR(os.lstat(os.path.join(root, *real)).st_mode):
                real = real[:-1]
            where = os.readlink(f"/proc/self/fd/{walker.dir_fd(real)}")
            assert where == root or where.startswith(root + "/")
            for i in range(1, len(real) + 1):
                assert not os.path.islink(os.path.join(root, *real[:i]))
            if directory and missing in (Missing.FAIL, Missing.CREATE):
                assert real == phys  # the whole path is a real directory
        assert list(_snapshot(outside)) == []
