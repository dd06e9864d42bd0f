"""``docker save`` through berthd: Docker 25's layout, round trips, and skopeo reading it."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.daemon_fixture import FIXTURES, Berthd, running_berthd

pytestmark = pytest.mark.root

DOCKER = "/usr/local/bin/docker"
MULTI = "fixture/multilayer:1"


def run_ok(daemon: Berthd, *args: str) -> str:
    r = subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, timeout=120)
    assert r.returncode == 0, (args, r.stderr.decode(), daemon.logs()[-3000:])
    return r.stdout.decode()


def ids(daemon: Berthd) -> dict[str, str]:
    out = run_ok(daemon, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    return dict(line.split() for line in out.splitlines())


def test_save_layout_and_round_trip(berthd: Berthd, tmp_path: Path) -> None:
    run_ok(berthd, "load", "-i", str(FIXTURES / "multilayer-docker-save.tar"))
    run_ok(berthd, "tag", "busybox", "other/bb:2")
    out = tmp_path / "all.tar"
    run_ok(berthd, "save", "-o", str(out), "busybox", MULTI, "other/bb:2")
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        layout = json.load(tar.extractfile("oci-layout"))  # type: ignore[arg-type]
    assert layout == {"imageLayoutVersion": "1.0.0"}
    assert {"blobs", "blobs/sha256", "index.json", "manifest.json", "repositories"} <= set(names)
    assert len(names) == len(set(names)), "each blob is stored once"
    tags = sorted(t for m in manifest for t in m["RepoTags"])
    assert tags == ["busybox:latest", MULTI, "other/bb:2"]
    assert all(p.startswith("blobs/sha256/") for m in manifest for p in [m["Config"], *m["Layers"]])
    refs = sorted(m["annotations"]["io.containerd.image.name"] for m in index["manifests"])
    assert refs == ["docker.io/fixture/multilayer:1", "docker.io/library/busybox:latest",
                    "docker.io/other/bb:2"]
    before = ids(berthd)
    with running_berthd(seed=False) as fresh:
        run_ok(fresh, "load", "-i", str(out))
        assert ids(fresh) == before
        assert "hard-link" in run_ok(fresh, "run", "--rm", "--entrypoint", "ls", MULTI, "/data")


def test_save_stdout_by_id_and_repo(berthd: Berthd, tmp_path: Path) -> None:
    run_ok(berthd, "tag", "busybox", "busybox:two")
    image_id = ids(berthd)["busybox:latest"]
    status, data, headers = berthd.request("GET", f"/v1.44/images/{image_id}/get")
    assert status == 200 and headers["content-type"] == "application/x-tar"
    path = tmp_path / "id.tar"
    path.write_bytes(data)
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] is None  # saved by ID: no names
    status, data, _ = berthd.request("GET", "/v1.44/images/get", query={"names": ["busybox"]})
    path.write_bytes(data)
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert sorted(manifest[0]["RepoTags"]) == ["busybox:latest", "busybox:two"]
    status, data, _ = berthd.request("GET", "/v1.44/images/nope:1/get")
    assert status == 404


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_reads_the_save(berthd: Berthd, tmp_path: Path) -> None:
    run_ok(berthd, "load", "-i", str(FIXTURES / "multilayer-oci.tar"))
    out = tmp_path / "m.tar"
    run_ok(berthd, "save", "-o", str(out), MULTI)
    info = json.loads(subprocess.run(["skopeo", "inspect", f"docker-archive:{out}"],
                                     check=True, capture_output=True).stdout)
    assert len(info["Layers"]) == 3 and info["Labels"]["org.example.fixture"] == "multilayer"
    dest = tmp_path / "dir"
    subprocess.run(["skopeo", "copy", f"oci-archive:{out}", f"dir:{dest}"], check=True,
                   capture_output=True)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["config"]["digest"] == ids(berthd)[MULTI]
