"""``berth-runtime`` exec, ps, pause, resume, update and features as separate processes,
and the state JSON against the OCI schema. Needs root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.daemon_fixture import SPECS as SHARED_SPECS
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness

harness = support.harness
subreaper = support.subreaper
pytestmark = pytest.mark.root

SPECS = SHARED_SPECS / "oci" / "runtime"


def cli(root: Path, *args: str, check: bool = True, **kw: object
        ) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    return subprocess.run([sys.executable, "-m", "berth.runtime.cli", "--root", str(root),
                           *args], text=True, check=check, timeout=60, **kw)  # type: ignore


def started(harness: Harness, tmp_path: Path, args: list[str]) -> Path:
    root = tmp_path / "root"
    b = harness.bundle(args)
    spec = json.loads((b / "config.json").read_text())
    spec["linux"]["cgroupsPath"] = harness.cgroup_path("cli")
    (b / "config.json").write_text(json.dumps(spec))
    # The container keeps create's stdio: no pipes, or reading them would wait for it.
    cli(root, "create", "--bundle", str(b), "c1", stdin=subprocess.DEVNULL,
        capture_output=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli(root, "start", "c1")
    return root


def validate_state(doc: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not (SPECS / "state-schema.json").exists():
        pytest.skip("no OCI schemas here")
    schema = json.loads((SPECS / "state-schema.json").read_text())
    resolver = jsonschema.RefResolver(base_uri=f"file://{SPECS}/", referrer=schema)
    jsonschema.validate(doc, schema, resolver=resolver)


def test_exec_ps_pause_resume_update(harness: Harness, tmp_path: Path) -> None:
    root = started(harness, tmp_path, ["sleep", "100"])
    try:
        validate_state(json.loads(cli(root, "state", "c1").stdout))
        r = cli(root, "exec", "--env", "PATH=/bin", "--env", "X=1", "--cwd", "/tmp", "c1",
                "sh", "-c", "echo $X $(pwd) $(id -u); exit 5", check=False)
        assert r.returncode == 5 and r.stdout == "1 /tmp 0\n"
        r = cli(root, "exec", "--user", "1000:1000", "c1", "id", "-u", check=False)
        assert r.stdout == "1000\n"
        r = cli(root, "exec", "c1", "no-such-command", check=False)
        assert r.returncode == 127 and "not found" in r.stderr
        proc = tmp_path / "process.json"
        proc.write_text(json.dumps({"args": ["sh", "-c", "echo from-file"],
                                    "env": ["PATH=/bin"], "cwd": "/"}))
        assert cli(root, "exec", "--process", str(proc), "c1").stdout == "from-file\n"
        cli(root, "exec", "-d", "--pid-file", str(tmp_path / "epid"), "c1", "sleep", "50",
            capture_output=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        epid = int((tmp_path / "epid").read_text())
        pids = json.loads(cli(root, "ps", "--format", "json", "c1").stdout)
        assert epid in pids and len(pids) == 2
        # Detached, it was reparented to us (the subreaper): ours to reap, or the
        # container's init could not finish dying when deleted.
        os.kill(epid, signal.SIGKILL)
        os.waitpid(epid, 0)
        cli(root, "pause", "c1")
        assert json.loads(cli(root, "state", "c1").stdout)["status"] == "paused"
        cli(root, "resume", "c1")
        state = json.loads(cli(root, "state", "c1").stdout)
        assert state["status"] == "running"
        validate_state(state)
        cli(root, "update", "--memory", str(64 << 20), "--pids-limit", "30", "c1")
        cg = Path("/sys/fs/cgroup/memory") / harness.cgroup_paths[0]
        assert int((cg / "memory.limit_in_bytes").read_text()) == 64 << 20
    finally:
        cli(root, "delete", "--force", "c1", check=False)
    time.sleep(0.05)


def test_exec_tty_through_the_foreground_relay(harness: Harness, tmp_path: Path) -> None:
    root = started(harness, tmp_path, ["sleep", "100"])
    try:
        r = cli(root, "exec", "-t", "c1", "tty", check=False, stdin=subprocess.DEVNULL)
        assert r.returncode == 0 and r.stdout.strip() == "/dev/pts/0"
    finally:
        cli(root, "delete", "--force", "c1", check=False)


def test_features(harness: Harness, tmp_path: Path) -> None:
    doc = json.loads(cli(tmp_path, "features").stdout)
    assert "user" in doc["linux"]["namespaces"] and "SCMP_ACT_ERRNO" in \
        doc["linux"]["seccomp"]["actions"]
    assert doc["linux"]["cgroup"]["v1"] is True
    jsonschema = pytest.importorskip("jsonschema")
    if (SPECS / "features-schema.json").exists():
        schema = json.loads((SPECS / "features-schema.json").read_text())
        resolver = jsonschema.RefResolver(base_uri=f"file://{SPECS}/", referrer=schema)
        jsonschema.validate(doc, schema, resolver=resolver)
