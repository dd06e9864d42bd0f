"""``docker commit``, ``docker diff`` and ``docker export`` with the real CLI."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.daemon_fixture import Berthd, running_berthd

pytestmark = pytest.mark.root

DOCKER = "/usr/local/bin/docker"


def run_ok(daemon: Berthd, *args: str) -> str:
    r = subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, timeout=120)
    assert r.returncode == 0, (args, r.stderr.decode(), daemon.logs()[-3000:])
    return r.stdout.decode()


def test_commit_runs_with_the_change(berthd: Berthd) -> None:
    run_ok(berthd, "run", "--name", "c1", "busybox", "sh", "-c",
           "echo hi > /x; rm /bin/ls; mkdir -p /tmp/a")
    diff = run_ok(berthd, "diff", "c1").splitlines()
    assert {"A /x", "D /bin/ls", "C /bin", "A /tmp/a"} <= set(diff)
    out = run_ok(berthd, "commit", "-c", 'CMD ["cat", "/x"]', "-c", "ENV A=1", "-c", "EXPOSE 80",
                 "-m", "a message", "-a", "someone", "c1", "mine:1")
    image_id = out.strip()
    assert image_id.startswith("sha256:")
    assert run_ok(berthd, "run", "--rm", "mine:1") == "hi\n"
    assert "A=1" in run_ok(berthd, "run", "--rm", "mine:1", "env").split()
    r = subprocess.run([DOCKER, "run", "--rm", "mine:1", "test", "-e", "/bin/ls"],
                       env=berthd.env(), capture_output=True)
    assert r.returncode == 1
    info = json.loads(run_ok(berthd, "image", "inspect", "mine:1"))[0]
    assert info["Id"] == image_id and info["Author"] == "someone"
    assert info["Comment"] == "a message" and info["Config"]["ExposedPorts"] == {"80/tcp": {}}
    busybox = json.loads(run_ok(berthd, "image", "inspect", "busybox"))[0]
    assert info["Parent"] == busybox["Id"]
    assert info["RootFS"]["Layers"][:-1] == busybox["RootFS"]["Layers"]
    history = run_ok(berthd, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}",
                     "mine:1")
    assert history.splitlines()[0] == "sh -c echo hi > /x; rm /bin/ls; mkdir -p /tmp/a|a message"
    # The same changes committed again: the same layer.
    run_ok(berthd, "commit", "c1", "mine:2")
    again = json.loads(run_ok(berthd, "image", "inspect", "mine:2"))[0]
    assert again["RootFS"]["Layers"] == info["RootFS"]["Layers"]
    # Saved and loaded elsewhere, the committed image keeps its ID and its change.
    saved = Path(berthd.root) / "mine.tar"
    run_ok(berthd, "save", "-o", str(saved), "mine:1")
    with running_berthd(seed=False) as fresh:
        run_ok(fresh, "load", "-i", str(saved))
        assert json.loads(run_ok(fresh, "image", "inspect", "mine:1"))[0]["Id"] == image_id
        assert run_ok(fresh, "run", "--rm", "mine:1") == "hi\n"
    r = subprocess.run([DOCKER, "rmi", "mine:1"], env=berthd.env(), capture_output=True)
    assert r.returncode == 0, r.stderr


def test_commit_running_container_pauses(berthd: Berthd) -> None:
    run_ok(berthd, "run", "-d", "--name", "c2", "busybox", "sh", "-c",
           "echo x > /y; exec sleep 60")
    for _ in range(50):
        if "A /y" in run_ok(berthd, "diff", "c2"):
            break
    run_ok(berthd, "commit", "c2", "running:1")
    state = json.loads(run_ok(berthd, "inspect", "c2"))[0]["State"]
    assert state["Running"] and not state["Paused"]
    assert run_ok(berthd, "run", "--rm", "running:1", "cat", "/y") == "x\n"
    run_ok(berthd, "rm", "-f", "c2")


def test_export_streams_the_tree(berthd: Berthd, tmp_path: Path) -> None:
    run_ok(berthd, "create", "--name", "c3", "busybox")
    out = tmp_path / "e.tar"
    run_ok(berthd, "export", "-o", str(out), "c3")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"bin/sh", "etc/passwd"} <= names
    imported = run_ok(berthd, "import", str(out), "flat:1").strip()
    assert imported.startswith("sha256:")
    assert run_ok(berthd, "run", "--rm", "flat:1", "echo", "ok") == "ok\n"


def test_commit_errors(berthd: Berthd) -> None:
    r = subprocess.run([DOCKER, "commit", "nope"], env=berthd.env(), capture_output=True)
    assert r.returncode != 0 and b"No such container" in r.stderr
    run_ok(berthd, "create", "--name", "c4", "busybox")
    r = subprocess.run([DOCKER, "commit", "-c", "FROM x", "c4"], env=berthd.env(),
                       capture_output=True)
    assert r.returncode != 0 and b"not a valid change command" in r.stderr
