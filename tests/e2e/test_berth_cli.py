"""Our own CLI, `berth`, against berthd: the same workflows as the docker CLI."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.daemon_fixture import FIXTURES, REPO, Berthd

pytestmark = pytest.mark.root

BERTH = str(Path(REPO) / ".venv" / "bin" / "berth")


def berth(daemon: Berthd, *args: str, input: bytes | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([BERTH, *args], env=daemon.env(), input=input, capture_output=True,
                          timeout=timeout)


def ok(daemon: Berthd, *args: str, **kw: object) -> str:
    result = berth(daemon, *args, **kw)  # type: ignore[arg-type]
    assert result.returncode == 0, (args, result.returncode, result.stderr.decode())
    return result.stdout.decode()


def test_run_rm_and_exit_codes(berthd: Berthd) -> None:
    assert ok(berthd, "run", "--rm", "busybox", "echo", "hello from berth") == "hello from berth\n"
    assert berth(berthd, "run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    missing = berth(berthd, "run", "--rm", "busybox", "nosuchcommand")
    assert missing.returncode == 127
    unknown = berth(berthd, "run", "--rm", "nosuchimage")
    assert unknown.returncode == 125 and b"Error response from daemon" in unknown.stderr
    assert ok(berthd, "ps", "-aq") == ""


def test_stdin(berthd: Berthd) -> None:
    assert ok(berthd, "run", "-i", "--rm", "busybox", "cat", input=b"x") == "x"


def test_detached_lifecycle(berthd: Berthd) -> None:
    cid = ok(berthd, "run", "-d", "--name", "web", "-e", "K=V", "busybox", "sh", "-c",
             "echo $K; exec sleep 300").strip()
    assert len(cid) == 64
    deadline = time.monotonic() + 10
    while ok(berthd, "logs", "web") != "V\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ok(berthd, "logs", "web") == "V\n"
    table = ok(berthd, "ps").splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                "PORTS", "NAMES"]
    assert cid[:12] in table[1] and table[1].endswith("web")
    assert ok(berthd, "ps", "-q") == cid[:12] + "\n"
    ok(berthd, "stop", "-t", "1", "web")
    assert json.loads(ok(berthd, "inspect", "web"))[0]["State"]["ExitCode"] == 137
    ok(berthd, "rm", "web")
    assert ok(berthd, "ps", "-aq") == ""


def test_kill_and_force_remove(berthd: Berthd) -> None:
    cid = ok(berthd, "run", "-d", "busybox", "sleep", "300").strip()
    ok(berthd, "kill", cid)
    assert json.loads(ok(berthd, "inspect", cid))[0]["State"]["Running"] is False
    cid2 = ok(berthd, "run", "-d", "busybox", "sleep", "300").strip()
    ok(berthd, "rm", "-f", cid, cid2)
    assert ok(berthd, "ps", "-aq") == ""


def test_images_load_import_tag_rmi(berthd: Berthd, tmp_path: Path) -> None:
    out = ok(berthd, "load", "-i", str(FIXTURES / "multilayer-docker-save.tar"))
    assert "Loaded image: fixture/multilayer:1" in out
    assert ok(berthd, "run", "--rm", "fixture/multilayer:1") == "one\n"
    table = ok(berthd, "images").splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.startswith("fixture/multilayer") for line in table)
    ok(berthd, "tag", "busybox", "mine/box:1")
    assert "Untagged: mine/box:1" in ok(berthd, "rmi", "mine/box:1")
    from tests.daemon_fixture import busybox_tar

    archive = tmp_path / "rootfs.tar"
    archive.write_bytes(busybox_tar())
    image_id = ok(berthd, "import", "-c", 'CMD ["echo", "imported"]', str(archive),
                  "again:latest").strip()
    assert image_id.startswith("sha256:")
    assert ok(berthd, "run", "--rm", "again") == "imported\n"


def test_version_info(berthd: Berthd) -> None:
    out = ok(berthd, "version")
    assert "Client:" in out and "Server:" in out and "1.44" in out
    assert "Images:" in ok(berthd, "info") or "Images" in ok(berthd, "info")


def test_cannot_connect_is_clear(tmp_path: Path) -> None:
    result = subprocess.run([BERTH, "-H", f"unix://{tmp_path}/none.sock", "ps"],
                            capture_output=True)
    assert result.returncode != 0
    assert b"Cannot connect to the berth daemon" in result.stderr
