"""``secure_join``: symlinks in a rootfs resolve inside it. No root needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.runtime.rootfs import secure_join


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "real").mkdir()
    os.symlink("/real", r / "abs")
    os.symlink("../../../../real", r / "up")
    os.symlink("/etc/../../..", r / "escape")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink("real/x", r / "rel")
    return r


def test_plain_paths(root: Path) -> None:
    assert secure_join(str(root), "/etc/hosts") == f"{root}/etc/hosts"
    assert secure_join(str(root), "/") == str(root)
    assert secure_join(str(root), "a/./b//c") == f"{root}/a/b/c"


def test_dotdot_stops_at_root(root: Path) -> None:
    assert secure_join(str(root), "/../../etc") == f"{root}/etc"


def test_absolute_symlink_is_rooted(root: Path) -> None:
    assert secure_join(str(root), "/abs/file") == f"{root}/real/file"


def test_relative_symlink_cannot_climb_out(root: Path) -> None:
    assert secure_join(str(root), "/up/file") == f"{root}/real/file"
    assert secure_join(str(root), "/escape/x") == f"{root}/x"


def test_relative_symlink_and_missing_tail(root: Path) -> None:
    assert secure_join(str(root), "/rel/y/z") == f"{root}/real/x/y/z"


def test_symlink_loops_fail(root: Path) -> None:
    with pytest.raises(OSError):
        secure_join(str(root), "/loop1/x")
