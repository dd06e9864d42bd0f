"""The shim's operations for the daemon: stats, pids, pause/resume, update, exec (pipes and
tty, detached, waiters, missing command), and log rotation. Needs root."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.errors import Conflict, NotFound, RuntimeFailure
from berth.shim import client
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness

harness = support.harness
subreaper = support.subreaper
pytestmark = pytest.mark.root


class Shims:
    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.exec_root = str(harness.tmp / "exec")
        self.pid = client.start_launcher(self.exec_root)
        self.n = 0

    def spawn(self, args: list[str], *, resources: dict[str, Any] | None = None,
              tty: bool = False, stdin: bool = False,
              **extra: Any) -> tuple[client.ShimClient, str]:
        self.n += 1
        b = self.harness.bundle(args, terminal=tty)
        spec = json.loads((b / "config.json").read_text())
        spec["linux"]["cgroupsPath"] = self.harness.cgroup_path(f"s{self.n}")
        spec["linux"]["resources"].update(resources or {})
        (b / "config.json").write_text(json.dumps(spec))
        state_dir = os.path.join(self.exec_root, f"s{self.n}")
        log_path = str(self.harness.tmp / f"s{self.n}.log")
        client.spawn_via_launcher(self.exec_root, {
            "id": f"s{self.n}", "bundle": str(b), "state_dir": state_dir,
            "log_path": log_path, "stdin": stdin, "tty": tty, **extra})
        return client.ShimClient(state_dir, timeout=20), log_path


@pytest.fixture
def shims(harness: Harness) -> Iterator[Shims]:
    s = Shims(harness)
    yield s
    try:
        os.kill(s.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def read_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return bytes(data)


def stop(shim: client.ShimClient) -> None:
    shim.kill(signal.SIGKILL)
    shim.wait()
    shim.shutdown()


def test_stats_pids_pause_resume_update(shims: Shims) -> None:
    shim, _ = shims.spawn(["sh", "-c", "sleep 100 & while :; do sleep 0.05; done"],
                          resources={"memory": {"limit": 64 << 20}, "pids": {"limit": 40}})
    shim.start()
    deadline = time.monotonic() + 5
    while len(shim.pids()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    init = shim.state()["init_pid"]
    assert init in shim.pids()
    st = shim.stats()
    assert st["memory_stats"]["limit"] == 64 << 20
    assert st["pids_stats"]["limit"] == 40 and st["pids_stats"]["current"] >= 2
    assert st["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert {"cpu_stats", "memory_stats", "pids_stats", "blkio_stats"} <= set(st)
    shim.pause()
    assert shim.state()["status"] == "paused"
    with pytest.raises(Conflict):
        shim.exec("e", {"args": ["true"]})
    shim.resume()
    assert shim.state()["status"] == "running"
    shim.update({"memory": {"limit": 96 << 20}, "pids": {"limit": 50}})
    st = shim.stats()
    assert st["memory_stats"]["limit"] == 96 << 20 and st["pids_stats"]["limit"] == 50
    shim.pause()
    stop(shim)  # SIGKILL reaches a paused container: the shim thaws it


def test_oom_killed_reported_by_wait_and_exit_file(shims: Shims) -> None:
    shim, _ = shims.spawn(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                          resources={"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    shim.start()
    res = shim.wait()
    assert res["exit_code"] == 137 and res["oom_killed"] is True
    with open(os.path.join(shim.state_dir, "exit.json")) as f:
        assert json.load(f)["oom_killed"] is True
    # The cgroup went with the container, before any shutdown.
    cg = Path("/sys/fs/cgroup/memory") / shims.harness.cgroup_paths[-1]
    assert not cg.exists()
    with pytest.raises(Conflict):
        shim.stats()
    shim.shutdown()


def test_exec_with_pipes_env_user_and_exit_code(shims: Shims) -> None:
    shim, log = shims.spawn(["sleep", "100"])
    shim.start()
    pid, sock = shims_exec(shim, "e1", {
        "args": ["sh", "-c", "read x; echo out $x $FOO $(id -u):$(id -g) $(pwd); "
                 "echo err >&2; exit 7"],
        "env": ["PATH=/bin:/usr/bin", "FOO=bar"], "cwd": "/tmp",
        "user": {"uid": 1000, "gid": 1000}}, stdin=True)
    assert pid > 0
    assert sock is not None
    sock.sendall(b"typed\n")
    sock.shutdown(socket.SHUT_WR)
    frames = client.read_frames(sock)
    sock.close()
    out = b"".join(p for s, p in frames if s == 1)
    err = b"".join(p for s, p in frames if s == 2)
    assert out == b"out typed bar 1000:1000 /tmp\n" and err == b"err\n"
    assert shim.exec_wait("e1") == 7
    st = shim.exec_state("e1")
    assert st == {"ok": True, "running": False, "pid": pid, "exit_code": 7}
    with open(log) as f:
        assert "typed" not in f.read()  # exec output is the exec's, not the log's
    stop(shim)


def shims_exec(shim: client.ShimClient, exec_id: str, process: dict[str, Any], **kw: Any
               ) -> tuple[int, socket.socket | None]:
    return shim.exec(exec_id, process, **kw)


def test_exec_joins_namespaces_cgroup_and_caps(shims: Shims) -> None:
    shim, _ = shims.spawn(["sleep", "100"])
    shim.start()
    init = shim.state()["init_pid"]
    _, sock = shim.exec("e", {"args": ["sh", "-c", "echo $$; hostname; "
                                       "grep -E '^(CapEff|Seccomp):' /proc/self/status; "
                                       "cat /proc/1/cmdline | tr '\\0' ' '"],
                              "env": ["PATH=/bin"], "cwd": "/"})
    assert sock is not None
    out = b"".join(p for s, p in client.read_frames(sock) if s == 1).decode().splitlines()
    assert int(out[0]) > 1  # a new process in the container's PID namespace
    assert out[2] == "CapEff:\t00000000a80425fb"
    assert out[3] == "Seccomp:\t2"
    assert out[4].strip() == "sleep 100"
    pids = shim.pids()
    assert init in pids
    assert shim.exec_wait("e") == 0
    stop(shim)


def test_exec_tty_and_resize(shims: Shims) -> None:
    shim, _ = shims.spawn(["sleep", "100"])
    shim.start()
    _, sock = shim.exec("t", {"args": ["sh", "-c", "tty; read x; stty size; echo got $x"],
                              "env": ["PATH=/bin"], "terminal": True,
                              "consoleSize": {"height": 20, "width": 70}}, stdin=True)
    assert sock is not None
    data = bytearray()
    while b"/dev/pts/" not in data:
        chunk = sock.recv(4096)
        assert chunk, bytes(data)
        data += chunk
    shim.exec_resize("t", 30, 90)
    sock.sendall(b"hi\n")
    data += read_all(sock)
    text = data.decode().replace("\r\n", "\n")
    assert "/dev/pts/1" in text or "/dev/pts/0" in text
    assert "30 90" in text and "got hi" in text
    assert shim.exec_wait("t") == 0
    stop(shim)


def test_exec_detached_missing_command_and_errors(shims: Shims) -> None:
    shim, _ = shims.spawn(["sleep", "100"])
    with pytest.raises(Conflict):
        shim.exec("early", {"args": ["true"]})
    shim.start()
    pid, sock = shim.exec("d", {"args": ["sh", "-c", "exit 3"], "env": ["PATH=/bin"]},
                          detach=True)
    assert sock is None and pid > 0
    assert shim.exec_wait("d", timeout=10) == 3
    with pytest.raises(RuntimeFailure) as err:
        shim.exec("missing", {"args": ["no-such-command"], "env": ["PATH=/bin"]})
    assert err.value.exit_code == 127
    with pytest.raises(NotFound):
        shim.exec_state("nope")
    # Many waiters, all answered.
    _, sock = shim.exec("w", {"args": ["sleep", "0.3"], "env": ["PATH=/bin"]})
    assert sock is not None
    results = []
    import threading

    threads = [threading.Thread(target=lambda: results.append(shim.exec_wait("w")))
               for _ in range(3)]
    for t in threads:
        t.start()
    read_all(sock)
    for t in threads:
        t.join(10)
    assert results == [0, 0, 0]
    stop(shim)


def test_log_rotation_and_none_driver(shims: Shims, tmp_path: Path) -> None:
    script = "i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    shim, log = shims.spawn(["sh", "-c", script], log_driver="json-file",
                            log_opts={"max-size": "4k", "max-file": "3"})
    shim.start()
    assert shim.wait()["exit_code"] == 0
    shim.shutdown()
    assert os.path.exists(log) and os.path.exists(log + ".1") and os.path.exists(log + ".2")
    assert not os.path.exists(log + ".3")
    for path in (log, log + ".1", log + ".2"):
        assert os.path.getsize(path) <= 4096
    with open(log) as f:
        last = [json.loads(line)["log"] for line in f][-1]
    assert last.startswith("line-399-")
    shim, log = shims.spawn(["echo", "hi"], log_driver="none")
    shim.start()
    assert shim.wait()["exit_code"] == 0
    shim.shutdown()
    assert not os.path.exists(log)
