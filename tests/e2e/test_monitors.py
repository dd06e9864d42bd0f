"""Container monitors through berthd: containers share monitor processes (up to
``--containers-per-monitor``), and a monitor's death reaches only its own containers."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.daemon_fixture import Berthd, running_berthd
from tests.e2e.test_docker_cli import run_ok

pytestmark = pytest.mark.root


def monitor_pid(daemon: Berthd, cid: str) -> int:
    with open(os.path.join(daemon.exec_root, "containers", cid, "shim.json")) as f:
        return int(json.load(f)["shim_pid"])


def run_sleepers(daemon: Berthd, names: list[str]) -> list[int]:
    ids = [run_ok(daemon, "run", "-d", "--name", n, "busybox", "sleep", "600").strip()
           for n in names]
    return [monitor_pid(daemon, cid) for cid in ids]


def test_containers_share_a_monitor_unless_told(berthd: Berthd) -> None:
    shared = run_sleepers(berthd, ["m1", "m2", "m3"])
    assert len(set(shared)) == 1
    run_ok(berthd, "rm", "-f", "m1", "m2", "m3")
    with running_berthd(seed=True, extra_args=["--containers-per-monitor", "1"]) as apart:
        pids = run_sleepers(apart, ["a1", "a2", "a3"])
        assert len(set(pids)) == 3
        run_ok(apart, "rm", "-f", "a1", "a2", "a3")


def test_a_killed_monitor_ends_only_its_containers() -> None:
    with running_berthd(seed=True, extra_args=["--containers-per-monitor", "2"]) as daemon:
        pids = run_sleepers(daemon, ["k1", "k2", "k3"])
        assert pids[0] == pids[1] != pids[2]
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while "running" in run_ok(daemon, "inspect", "-f", "{{.State.Status}}", "k1"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for name in ("k1", "k2"):
            state = run_ok(daemon, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                           name).split()
            assert state == ["exited", "255"], name
        assert run_ok(daemon, "inspect", "-f", "{{.State.Status}}", "k3").strip() == "running"
        assert run_ok(daemon, "exec", "k3", "echo", "alive") == "alive\n"
        assert run_ok(daemon, "run", "--rm", "busybox", "echo", "new") == "new\n"
        run_ok(daemon, "rm", "-f", "k1", "k2", "k3")
