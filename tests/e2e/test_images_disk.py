"""Copy on write, measured: fifty containers of one image cost their own writes, not copies."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.daemon_fixture import Berthd

pytestmark = pytest.mark.root

DOCKER = "/usr/local/bin/docker"


def used(root: str) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            if n.endswith(("-wal", "-shm")):
                continue  # SQLite journals: reused, bounded by checkpoints
            total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
    return total


def test_fifty_containers_use_one_image(berthd: Berthd) -> None:
    snapshots = os.path.join(berthd.data_root, "snapshots")
    before_all, before = used(berthd.data_root), used(snapshots)
    for i in range(50):
        r = subprocess.run([DOCKER, "create", "--name", f"c{i}", "busybox", "true"],
                           env=berthd.env(), capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
    extra = used(snapshots) - before
    image = berthd.json("GET", "/v1.44/images/busybox/json")["Size"]
    assert extra <= 1 << 20, f"the snapshots of 50 containers took {extra} bytes"
    assert extra < image, "less than one copy of the image for all fifty"
    whole = used(berthd.data_root) - before_all
    print(f"50 containers: snapshots +{extra} B, whole data root +{whole} B, image {image} B")
