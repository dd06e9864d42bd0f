"""Containers outlive the daemon: kill -9 berthd with 20 running, start it again; and a host
reboot, simulated by clearing the exec root."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import DOCKER, run_ok

pytestmark = pytest.mark.root

COUNTER = "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done"


def _inspect(berthd: Berthd, ref: str) -> dict:  # type: ignore[type-arg]
    return json.loads(run_ok(berthd, "inspect", ref))[0]


def _wait_for(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_kill_9_with_20_running(berthd: Berthd) -> None:
    names = [f"live{i}" for i in range(20)]
    for name in names:
        run_ok(berthd, "run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    run_ok(berthd, "run", "-d", "--name", "quits", "busybox", "sh", "-c", "sleep 1; exit 7")
    run_ok(berthd, "run", "-d", "--name", "phoenix", "--restart", "always", "busybox",
           "sh", "-c", "sleep 1; exit 3")
    _wait_for(lambda: "line3" in run_ok(berthd, "logs", "live19"))
    berthd.stop(signal.SIGKILL)
    down_at = time.time()
    time.sleep(2.5)
    berthd.start()
    for name in names:
        info = _inspect(berthd, name)
        assert info["State"]["Running"], name
    # Lines written while the daemon was down are in the logs.
    logs = run_ok(berthd, "logs", "-t", "live0").splitlines()
    stamps = [line.split()[0] for line in logs]
    assert any(down_at + 0.5 < _epoch(s) < down_at + 2 for s in stamps)
    info = _inspect(berthd, "quits")
    assert not info["State"]["Running"] and info["State"]["ExitCode"] == 7
    _wait_for(lambda: _inspect(berthd, "phoenix")["RestartCount"] >= 1)
    # attach and logs -f still reach the running containers.
    follow = subprocess.Popen([DOCKER, "logs", "-f", "--tail", "0", "live3"],
                              env=berthd.env(), stdout=subprocess.PIPE)
    attach = subprocess.Popen([DOCKER, "attach", "--no-stdin", "live4"], env=berthd.env(),
                              stdout=subprocess.PIPE)
    try:
        assert follow.stdout is not None and attach.stdout is not None
        assert follow.stdout.readline().startswith(b"line")
        assert attach.stdout.readline().startswith(b"line")
    finally:
        for proc in (follow, attach):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    run_ok(berthd, "stop", "-t", "0", "live0")
    assert _inspect(berthd, "live0")["State"]["ExitCode"] == 137
    run_ok(berthd, "rm", "-f", *names, "quits", "phoenix")


def _epoch(stamp: str) -> float:
    from datetime import datetime

    main, _, frac = stamp.rstrip("Z").partition(".")
    base = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").timestamp() - time.timezone
    return base + float("0." + (frac or "0"))


def _simulate_reboot(berthd: Berthd) -> None:
    """Everything of the exec root dies with the host: launcher, shims, containers, mounts."""
    root = berthd.exec_root
    pids = []
    for name in ("launcher.pid",):
        with contextlib.suppress(OSError, ValueError), open(os.path.join(root, name)) as f:
            pids.append(int(f.read().strip()))
    containers = os.path.join(root, "containers")
    for cid in os.listdir(containers) if os.path.isdir(containers) else []:
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(containers, cid, "shim.json")) as f:
                state = json.load(f)
            pids += [int(state.get("init_pid") or 0), int(state.get("shim_pid") or 0)]
    for pid in pids:
        if pid > 1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for target in sorted((m for m in mounts if m.startswith(root + "/")), key=len,
                         reverse=True):
        subprocess.run(["umount", "-l", target], check=False)
    shutil.rmtree(root, ignore_errors=True)


def test_host_reboot_marks_exited_and_restarts_policies(berthd: Berthd) -> None:
    run_ok(berthd, "run", "-d", "--name", "plain", "busybox", "sleep", "300")
    run_ok(berthd, "run", "-d", "--name", "always", "--restart", "always", "busybox",
           "sleep", "300")
    run_ok(berthd, "run", "-d", "--name", "unless", "--restart", "unless-stopped", "busybox",
           "sleep", "300")
    run_ok(berthd, "run", "-d", "--name", "stopped", "--restart", "unless-stopped", "busybox",
           "sleep", "300")
    run_ok(berthd, "stop", "-t", "0", "stopped")
    berthd.stop(signal.SIGKILL)
    _simulate_reboot(berthd)
    berthd.start()
    info = _inspect(berthd, "plain")
    assert not info["State"]["Running"] and info["State"]["Status"] == "exited"
    _wait_for(lambda: _inspect(berthd, "always")["State"]["Running"] and
              _inspect(berthd, "unless")["State"]["Running"])
    time.sleep(0.5)
    assert not _inspect(berthd, "stopped")["State"]["Running"]
    run_ok(berthd, "rm", "-f", "plain", "always", "unless", "stopped")
