"""HostConfig fields reaching the container: init, seccomp, privileged, sysctls, groups,
resources, stop signal/timeout, OOM, log drivers and rotation."""

from __future__ import annotations

import json
import os
import tempfile
import time

import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import docker, run_ok

pytestmark = pytest.mark.root


def test_init_and_groups_and_sysctls(berthd: Berthd) -> None:
    out = run_ok(berthd, "run", "--rm", "--init", "busybox", "sh", "-c",
                 "cat /proc/1/cmdline | tr '\\0' ' '")
    assert "sleep" not in out and "sh" not in out.split()[0]
    out = run_ok(berthd, "run", "--rm", "--group-add", "1234", "busybox", "id", "-G")
    assert "1234" in out.split()
    out = run_ok(berthd, "run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "busybox",
                 "cat", "/proc/sys/net/ipv4/ip_forward")
    assert out == "1\n"


def test_seccomp_and_privileged(berthd: Berthd) -> None:
    out = run_ok(berthd, "run", "--rm", "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert out.split()[1] == "2"
    out = run_ok(berthd, "run", "--rm", "--security-opt", "seccomp=unconfined", "busybox",
                 "grep", "Seccomp:", "/proc/self/status")
    assert out.split()[1] == "0"
    with tempfile.NamedTemporaryFile("w", suffix=".json") as profile:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"],
                                 "action": "SCMP_ACT_ERRNO"}]}, profile)
        profile.flush()
        result = docker(berthd, "run", "--rm", "--security-opt", f"seccomp={profile.name}",
                        "busybox", "mkdir", "/x")
        assert result.returncode != 0
    out = run_ok(berthd, "run", "--rm", "--privileged", "busybox", "sh", "-c",
                 "grep -E 'CapEff|Seccomp:' /proc/self/status")
    fields = dict(line.split(":") for line in out.splitlines())
    assert fields["Seccomp"].strip() == "0"
    assert int(fields["CapEff"].strip(), 16) >= 0x1FFFFFFFFF


def test_resources_and_oom(berthd: Berthd) -> None:
    out = run_ok(berthd, "run", "--rm", "--cpus", "0.5", "--pids-limit", "20", "--memory",
                 "32m", "busybox", "sh", "-c",
                 "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max "
                 "/sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
                 "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max")
    assert "50000" in out and "20" in out.split() and str(32 * 1024 * 1024) in out.split()
    result = docker(berthd, "run", "--name", "oom", "--memory", "8m", "--memory-swap", "8m",
                    "busybox", "sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a)")
    assert result.returncode == 137
    info = json.loads(run_ok(berthd, "inspect", "oom"))[0]
    assert info["State"]["OOMKilled"] is True and info["State"]["ExitCode"] == 137
    run_ok(berthd, "rm", "oom")


def test_stop_signal_and_timeout(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "--stop-signal", "SIGUSR1", "--stop-timeout", "1",
                 "busybox", "sh", "-c",
                 "trap 'echo got usr1; exit 10' USR1; while true; do sleep 0.1; done").strip()
    time.sleep(0.5)
    run_ok(berthd, "stop", cid)
    info = json.loads(run_ok(berthd, "inspect", cid))[0]
    assert info["State"]["ExitCode"] == 10 and info["Config"]["StopSignal"] == "SIGUSR1"
    assert "got usr1" in run_ok(berthd, "logs", cid)
    cid2 = run_ok(berthd, "run", "-d", "--stop-timeout", "1", "busybox", "sh", "-c",
                  "trap '' TERM; while true; do sleep 0.1; done").strip()
    time.sleep(0.3)
    started = time.monotonic()
    run_ok(berthd, "stop", cid2)
    assert time.monotonic() - started < 5
    assert json.loads(run_ok(berthd, "inspect", cid2))[0]["State"]["ExitCode"] == 137
    run_ok(berthd, "rm", cid, cid2)


def test_log_drivers(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "--log-driver", "none", "busybox", "echo", "hidden")
    cid = cid.strip()
    run_ok(berthd, "wait", cid)
    result = docker(berthd, "logs", cid)
    assert b"hidden" not in result.stdout
    cid = run_ok(berthd, "run", "-d", "--log-opt", "max-size=10k", "--log-opt", "max-file=2",
                 "busybox", "sh", "-c",
                 "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done").strip()
    run_ok(berthd, "wait", cid)
    log_path = json.loads(run_ok(berthd, "inspect", cid))[0]["LogPath"]
    directory = os.path.dirname(log_path)
    files = [f for f in os.listdir(directory) if f.startswith(os.path.basename(log_path))]
    assert 1 <= len(files) <= 2
    assert sum(os.path.getsize(os.path.join(directory, f)) for f in files) <= 2 * 10240 + 4096
    assert run_ok(berthd, "logs", "--tail", "1", cid) == "line1999\n"
    kept = run_ok(berthd, "logs", cid).splitlines()
    assert kept[-1] == "line1999" and len(kept) > 10240 // 80
    numbers = [int(line[4:]) for line in kept]
    assert numbers == list(range(numbers[0], 2000))
    assert run_ok(berthd, "logs", "--tail", "600", cid).splitlines() == kept[-600:]
    run_ok(berthd, "rm", cid)
    assert run_ok(berthd, "run", "--rm", "--log-driver", "local", "busybox", "echo",
                  "kept") == "kept\n"
    result = docker(berthd, "run", "--rm", "--log-opt", "max-size=lots", "busybox", "true")
    assert result.returncode != 0 and b"max-size" in result.stderr
    result = docker(berthd, "run", "--rm", "--log-driver", "syslogx", "busybox", "true")
    assert result.returncode != 0 and b"syslogx" in result.stderr
    run_ok(berthd, "container", "prune", "-f")
