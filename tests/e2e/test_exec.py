"""exec through the docker CLI and docker-py; stats, pause, update, healthchecks, which
ride on the same monitor operations."""

from __future__ import annotations

import json
import subprocess
import time

import docker as docker_py
import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import DOCKER, docker, run_ok

pytestmark = pytest.mark.root


def _sleeper(berthd: Berthd, *flags: str) -> str:
    return run_ok(berthd, "run", "-d", *flags, "busybox", "sleep", "300").strip()


def test_exec_output_exit_code_env_user(berthd: Berthd) -> None:
    cid = _sleeper(berthd, "-e", "FROM_RUN=1")
    assert run_ok(berthd, "exec", cid, "echo", "hi") == "hi\n"
    result = docker(berthd, "exec", cid, "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (result.returncode, result.stdout, result.stderr) == (5, b"out\n", b"err\n")
    out = run_ok(berthd, "exec", "-e", "X=y", "-w", "/tmp", "-u", "nobody", cid, "sh", "-c",
                 "echo $X $FROM_RUN $(pwd) $(id -u)")
    assert out == "y 1 /tmp 65534\n"
    assert run_ok(berthd, "exec", "-i", cid, "cat", input=b"piped\n") == "piped\n"
    result = docker(berthd, "exec", cid, "no-such-command")
    assert result.returncode == 127
    run_ok(berthd, "exec", "-d", cid, "sh", "-c", "sleep 0.2; touch /detached")
    time.sleep(1)
    run_ok(berthd, "exec", cid, "test", "-f", "/detached")
    run_ok(berthd, "rm", "-f", cid)


def test_exec_tty_through_a_pty(berthd: Berthd) -> None:
    cid = _sleeper(berthd)
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        import os

        os.execve(DOCKER, [DOCKER, "exec", "-it", cid, "sh", "-c",
                           "stty size; tty; echo done"], berthd.env())
    out = b""
    import os

    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert b"/dev/pts/" in out and b"done" in out
    run_ok(berthd, "rm", "-f", cid)


def test_docker_py_exec(berthd: Berthd) -> None:
    client = docker_py.DockerClient(base_url=berthd.host)
    try:
        container = client.containers.run("busybox", ["sleep", "300"], detach=True)
        code, output = container.exec_run(["sh", "-c", "echo a; exit 2"])
        assert (code, output) == (2, b"a\n")
        code, (out, err) = container.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert (code, out, err) == (0, b"o\n", b"e\n")
        exec_id = client.api.exec_create(container.id, ["sleep", "0.3"])["Id"]
        client.api.exec_start(exec_id, detach=True)
        info = client.api.exec_inspect(exec_id)
        assert info["Running"] and info["Pid"] > 0
        time.sleep(1)
        info = client.api.exec_inspect(exec_id)
        assert not info["Running"] and info["ExitCode"] == 0
        container.remove(force=True)
    finally:
        client.close()


def test_stats_pause_update(berthd: Berthd) -> None:
    cid = _sleeper(berthd, "--memory", "64m", "--name", "st")
    out = run_ok(berthd, "stats", "--no-stream", "--format",
                 "{{.Name}} {{.MemUsage}} {{.PIDs}}", cid)
    name, usage, *_, pids = out.split()
    assert name == "st" and pids == "1"
    assert "64MiB" in out
    stats = berthd.json("GET", f"/v1.44/containers/{cid}/stats",
                        query={"stream": "false", "one-shot": "true"})
    assert stats["memory_stats"]["limit"] == 64 * 1024 * 1024
    assert stats["id"] == cid and stats["name"] == "/st"
    run_ok(berthd, "update", "--memory", "128m", "--memory-swap", "256m", cid)
    stats = berthd.json("GET", f"/v1.44/containers/{cid}/stats",
                        query={"stream": "false", "one-shot": "true"})
    assert stats["memory_stats"]["limit"] == 128 * 1024 * 1024
    assert json.loads(run_ok(berthd, "inspect", cid))[0]["HostConfig"]["Memory"] == \
        128 * 1024 * 1024
    run_ok(berthd, "pause", cid)
    assert run_ok(berthd, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}",
                  cid).split() == ["paused", "true"]
    assert "Paused" in run_ok(berthd, "ps")
    result = docker(berthd, "exec", cid, "true")
    assert result.returncode != 0 and b"paused" in result.stderr
    run_ok(berthd, "unpause", cid)
    run_ok(berthd, "exec", cid, "true")
    run_ok(berthd, "rm", "-f", cid)
    trapper = run_ok(berthd, "run", "-d", "busybox", "sh", "-c",
                     "trap 'exit 5' TERM; while :; do sleep 0.1; done").strip()
    time.sleep(0.3)
    run_ok(berthd, "pause", trapper)
    run_ok(berthd, "stop", "-t", "5", trapper)  # thawed, so the trap runs
    assert run_ok(berthd, "inspect", "-f", "{{.State.ExitCode}} {{.State.Paused}}",
                  trapper).split() == ["5", "false"]
    run_ok(berthd, "rm", trapper)


def test_stats_stream(berthd: Berthd) -> None:
    cid = _sleeper(berthd)
    proc = subprocess.Popen([DOCKER, "stats", "--format", "{{.ID}}", cid], env=berthd.env(),
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen = b""
        deadline = time.monotonic() + 10
        while seen.count(cid[:12].encode()) < 2 and time.monotonic() < deadline:
            seen += proc.stdout.read1(4096)
        assert seen.count(cid[:12].encode()) >= 2
    finally:
        proc.kill()
        proc.wait()
    run_ok(berthd, "rm", "-f", cid)


def test_healthcheck(berthd: Berthd) -> None:
    since = str(int(time.time()) - 1)
    run_ok(berthd, "run", "-d", "--name", "hc", "--health-cmd", "test -f /ok",
           "--health-interval", "200ms", "--health-retries", "2", "busybox", "sleep", "300")

    def health() -> dict:  # type: ignore[type-arg]
        return json.loads(run_ok(berthd, "inspect", "hc"))[0]["State"]["Health"]

    deadline = time.monotonic() + 15
    while health()["Status"] != "unhealthy":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert health()["FailingStreak"] >= 2
    run_ok(berthd, "exec", "hc", "touch", "/ok")
    while health()["Status"] != "healthy":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert health()["FailingStreak"] == 0
    assert "(healthy)" in run_ok(berthd, "ps")
    assert run_ok(berthd, "ps", "-q", "--filter", "health=healthy").strip()
    out = run_ok(berthd, "events", "--since", since, "--until", str(int(time.time()) + 1),
                 "--filter", "event=health_status", "--format", "{{.Action}}")
    assert "health_status: unhealthy" in out and "health_status: healthy" in out
    run_ok(berthd, "rm", "-f", "hc")
