"""Container endpoints beyond the basic lifecycle, through the real docker CLI and the API."""

from __future__ import annotations

import json
import os
import tempfile
import time

import pytest

from tests.daemon_fixture import Berthd, cleanup_root
from tests.e2e.test_docker_cli import docker, run_ok

pytestmark = pytest.mark.root


def test_long_exec_root_still_reaches_shims() -> None:
    """Shim sockets past sun_path's 108 bytes are reached through a directory fd."""
    root = tempfile.mkdtemp(prefix="bt" + "x" * 40, dir="/tmp")
    daemon = Berthd(root)
    try:
        daemon.start()
        daemon.seed_busybox()
        cid = run_ok(daemon, "run", "-d", "busybox", "sleep", "300").strip()
        assert len(os.path.join(daemon.exec_root, "containers", cid, "shim.sock")) > 108
        assert run_ok(daemon, "inspect", "-f", "{{.State.Running}}", cid).strip() == "true"
        assert run_ok(daemon, "top", cid).count("sleep 300") == 1
        run_ok(daemon, "stop", "-t", "1", cid)
        run_ok(daemon, "rm", cid)
    finally:
        daemon.stop()
        leaks = cleanup_root(root)
    assert not leaks


def test_rename_and_filters(berthd: Berthd) -> None:
    run_ok(berthd, "create", "--name", "one", "--label", "tier=web", "busybox", "true")
    assert docker(berthd, "run", "--name", "two", "busybox", "sh", "-c", "exit 3").returncode == 3
    run_ok(berthd, "rename", "one", "uno")
    names = run_ok(berthd, "ps", "-a", "--format", "{{.Names}}").split()
    assert sorted(names) == ["two", "uno"]
    assert run_ok(berthd, "ps", "-a", "--filter", "label=tier=web",
                  "--format", "{{.Names}}").split() == ["uno"]
    assert run_ok(berthd, "ps", "-a", "--filter", "exited=3",
                  "--format", "{{.Names}}").split() == ["two"]
    assert run_ok(berthd, "ps", "-a", "--filter", "status=created",
                  "--format", "{{.Names}}").split() == ["uno"]
    assert run_ok(berthd, "ps", "-a", "--filter", "before=two",
                  "--format", "{{.Names}}").split() == ["uno"]
    assert run_ok(berthd, "ps", "-a", "--filter", "name=^/tw",
                  "--format", "{{.Names}}").split() == ["two"]
    result = docker(berthd, "rename", "uno", "two")
    assert result.returncode != 0
    out = run_ok(berthd, "container", "prune", "-f")
    assert "Total reclaimed space" in out
    assert run_ok(berthd, "ps", "-aq") == ""


def test_top_and_restart(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "busybox", "sleep", "300").strip()
    top = run_ok(berthd, "top", cid)
    assert "sleep 300" in top and "PID" in top
    top = run_ok(berthd, "top", cid, "-o", "pid,comm")
    assert "sleep" in top and "COMMAND" in top
    first = run_ok(berthd, "inspect", "-f", "{{.State.Pid}}", cid)
    run_ok(berthd, "restart", "-t", "0", cid)
    second = run_ok(berthd, "inspect", "-f", "{{.State.Pid}} {{.State.Running}}", cid)
    assert second.split()[1] == "true" and second.split()[0] != first.strip()
    run_ok(berthd, "rm", "-f", cid)


def test_bad_input_is_refused(berthd: Berthd) -> None:
    result = docker(berthd, "run", "--restart", "sometimes", "busybox", "true")
    assert result.returncode != 0 and b"restart policy" in result.stderr
    result = docker(berthd, "run", "-m", "1k", "busybox", "true")
    assert result.returncode != 0 and b"Minimum memory limit" in result.stderr
    status, body, _ = berthd.request("POST", "/containers/create",
                                     {"Image": "busybox", "Cmd": ["true"],
                                      "HostConfig": {"Memory": -5}})
    assert status == 400, body
    status, body, _ = berthd.request("POST", "/containers/create",
                                     {"Image": "busybox", "Cmd": ["true"],
                                      "HostConfig": {"Memory": "lots"}})
    assert status == 400, body
    assert run_ok(berthd, "ps", "-aq") == ""


def test_binds_tmpfs_readonly_and_env(berthd: Berthd) -> None:
    with tempfile.TemporaryDirectory() as host_dir:
        with open(os.path.join(host_dir, "in.txt"), "w") as f:
            f.write("from host\n")
        out = run_ok(berthd, "run", "--rm", "-v", f"{host_dir}:/data", "--tmpfs", "/scratch",
                     "--read-only", "busybox", "sh", "-c",
                     "cat /data/in.txt; echo made > /data/out.txt; echo t > /scratch/x && "
                     "cat /scratch/x; touch /nope 2>/dev/null || echo ro")
        assert out == "from host\nt\nro\n"
        with open(os.path.join(host_dir, "out.txt")) as f:
            assert f.read() == "made\n"
        out = run_ok(berthd, "run", "--rm", "-v", f"{host_dir}:/data:ro", "busybox", "sh", "-c",
                     "touch /data/x 2>/dev/null || echo denied")
        assert out == "denied\n"


def test_caps_and_security_opts(berthd: Berthd) -> None:
    out = run_ok(berthd, "run", "--rm", "--cap-drop", "ALL", "busybox", "sh", "-c",
                 "grep CapEff /proc/self/status")
    assert out.split()[1] == "0000000000000000"
    out = run_ok(berthd, "run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "sh", "-c",
                 "grep CapEff /proc/self/status")
    assert int(out.split()[1], 16) & (1 << 12)
    out = run_ok(berthd, "run", "--rm", "--security-opt", "no-new-privileges", "busybox",
                 "sh", "-c", "grep NoNewPrivs /proc/self/status")
    assert out.split()[1] == "1"
    out = run_ok(berthd, "run", "--rm", "--ulimit", "nofile=512:1024", "--shm-size", "8m",
                 "busybox", "sh", "-c", "ulimit -n; df -k /dev/shm | tail -1")
    lines = out.splitlines()
    assert lines[0] == "512" and lines[1].split()[1] == "8192"


def test_inspect_shape(berthd: Berthd) -> None:
    cid = run_ok(berthd, "create", "-v", "/anon", "--stop-signal", "SIGUSR1",
                 "--restart", "on-failure:2", "busybox", "true").strip()
    info = json.loads(run_ok(berthd, "inspect", cid))[0]
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "Name", "RestartCount",
                "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"):
        assert key in info
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                   "MaximumRetryCount": 2}
    (mount,) = info["Mounts"]
    assert mount["Type"] == "volume" and mount["Destination"] == "/anon"
    assert set(mount) == {"Type", "Name", "Source", "Destination", "Driver", "Mode", "RW",
                          "Propagation"}
    run_ok(berthd, "rm", "-v", cid)
    assert run_ok(berthd, "volume", "ls", "-q") == ""


def test_diff_and_export(berthd: Berthd) -> None:
    run_ok(berthd, "run", "busybox", "sh", "-c", "echo x > /made; rm /etc/group")
    cid = run_ok(berthd, "ps", "-lq").strip()
    diff = run_ok(berthd, "diff", cid)
    assert "A /made" in diff and "D /etc/group" in diff
    out = docker(berthd, "export", cid)
    assert out.returncode == 0 and len(out.stdout) > 10240
    started = time.monotonic()
    run_ok(berthd, "rm", cid)
    assert time.monotonic() - started < 10
