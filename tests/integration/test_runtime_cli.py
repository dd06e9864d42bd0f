"""``berth-runtime`` as runc's users drive it: separate processes per command. Needs root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness, extract_rootfs

harness = support.harness
subreaper = support.subreaper
pytestmark = pytest.mark.root


def cli(root: Path, *args: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    return subprocess.run([sys.executable, "-m", "berth.runtime.cli", "--root", str(root),
                           *args], text=True, check=check, timeout=60, **kw)  # type: ignore


def test_spec_create_start_state_kill_delete(harness: Harness, tmp_path: Path) -> None:
    root = tmp_path / "root"
    bundle = tmp_path / "b"
    extract_rootfs(bundle / "rootfs")
    cli(root, "spec", "--bundle", str(bundle), "--", "sh", "-c", "echo started; exec sleep 100")
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["process"]["args"] == ["sh", "-c", "echo started; exec sleep 100"]
    assert cli(root, "spec", "--bundle", str(bundle), check=False).returncode == 1

    out_path = tmp_path / "out"
    with open(out_path, "w") as out:
        subprocess.run([sys.executable, "-m", "berth.runtime.cli", "--root", str(root),
                        "create", "--bundle", str(bundle), "--pid-file",
                        str(tmp_path / "pid"), "c1"], stdout=out, stderr=out,
                       check=True, timeout=60)
    pid = int((tmp_path / "pid").read_text())
    state = json.loads(cli(root, "state", "c1").stdout)
    assert state["status"] == "created" and state["pid"] == pid and state["id"] == "c1"
    assert state["bundle"] == str(bundle)
    cli(root, "start", "c1")
    assert json.loads(cli(root, "state", "c1").stdout)["status"] == "running"
    listing = json.loads(cli(root, "list", "--format", "json").stdout)
    assert [c["id"] for c in listing] == ["c1"]
    assert cli(root, "delete", "c1", check=False).returncode == 1  # running
    cli(root, "kill", "c1", "KILL")
    assert support.wait_exit(pid) == 137
    assert json.loads(cli(root, "state", "c1").stdout)["status"] == "stopped"
    cli(root, "delete", "c1")
    assert not (root / "c1").exists()
    assert "does not exist" in cli(root, "state", "c1", check=False).stderr
    assert out_path.read_text() == "started\n"


def test_run_exits_with_the_containers_status(harness: Harness, tmp_path: Path) -> None:
    bundle = harness.bundle(["sh", "-c", "echo hi; exit 4"])
    res = cli(tmp_path / "root", "run", "--bundle", str(bundle), "r1", check=False)
    assert (res.returncode, res.stdout) == (4, "hi\n")
    assert not (tmp_path / "root" / "r1").exists()


def test_run_missing_command_is_127(harness: Harness, tmp_path: Path) -> None:
    bundle = harness.bundle(["no-such-command"])
    res = cli(tmp_path / "root", "run", "--bundle", str(bundle), "r2", check=False)
    assert res.returncode == 127
    assert "executable file not found" in res.stderr


@pytest.mark.skipif(shutil.which("runc") is None, reason="needs runc")
def test_runc_spec_bundle_runs(harness: Harness, tmp_path: Path) -> None:
    bundle = tmp_path / "runc-bundle"
    extract_rootfs(bundle / "rootfs")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sh", "-c", "hostname; echo $$; grep CapEff /proc/self/status; "
                               "touch /x 2>/dev/null || echo ro; exit 6"]
    (bundle / "config.json").write_text(json.dumps(spec))
    res = cli(tmp_path / "root", "run", "--bundle", str(bundle), "rs", check=False)
    assert res.returncode == 6, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:2] == ["runc", "1"]
    assert lines[2].split()[1] == "0000000020000420"  # runc spec: KILL, NET_BIND, AUDIT_WRITE
    assert lines[3] == "ro"  # runc spec makes the root read-only


@pytest.mark.skipif(shutil.which("crun") is None, reason="crun is not installed")
def test_crun_spec_bundle_runs(harness: Harness, tmp_path: Path) -> None:
    bundle = tmp_path / "crun-bundle"
    extract_rootfs(bundle / "rootfs")
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sh", "-c", "hostname; echo $$; id -u; exit 7"]
    (bundle / "config.json").write_text(json.dumps(spec))
    res = cli(tmp_path / "root", "run", "--bundle", str(bundle), "cs", check=False)
    assert res.returncode == 7, res.stderr
    assert res.stdout.splitlines() == ["crun", "1", "0"]


def test_run_forwards_signals(harness: Harness, tmp_path: Path) -> None:
    bundle = harness.bundle(["sh", "-c", "trap 'echo got-term; exit 9' TERM; echo ready; "
                                         "while true; do sleep 0.05; done"])
    proc = subprocess.Popen([sys.executable, "-m", "berth.runtime.cli", "--root",
                             str(tmp_path / "root"), "run", "--bundle", str(bundle), "sig"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.05)
        proc.terminate()
        assert proc.wait(20) == 9
        assert proc.stdout.read() == "got-term\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert os.listdir(tmp_path / "root") == []
