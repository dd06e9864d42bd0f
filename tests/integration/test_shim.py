"""The launcher and the shim end to end: spawn, start, attach, logs, wait, kill, and the
shim outliving the launcher. Needs root."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.errors import Conflict, RuntimeFailure, Unavailable
from berth.shim import client, protocol
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness

harness = support.harness
subreaper = support.subreaper
pytestmark = pytest.mark.root


class Launcher:
    def __init__(self, harness: Harness, containers_per_monitor: int | None = None) -> None:
        self.harness = harness
        self.exec_root = str(harness.tmp / "exec")
        self.pid = client.start_launcher(self.exec_root,
                                         containers_per_monitor=containers_per_monitor)
        self.n = 0

    def spawn(self, args: list[str], *, stdin: bool = False, log: bool = True,
              bundle: Path | None = None, log_path: str | None = None,
              log_opts: dict[str, str] | None = None, **process: Any
              ) -> tuple[client.ShimClient, dict[str, Any], str, str]:
        self.n += 1
        bundle = bundle or self.harness.bundle(args, **process)
        state_dir = os.path.join(self.exec_root, f"c{self.n}")
        log_path = log_path or str(self.harness.tmp / f"c{self.n}-json.log")
        resp = client.spawn_via_launcher(self.exec_root, {
            "id": f"c{self.n}", "bundle": str(bundle), "state_dir": state_dir,
            "log_path": log_path if log else None, "log_opts": log_opts or {},
            "stdin": stdin, "tty": False})
        return client.ShimClient(state_dir, timeout=20), resp, state_dir, log_path

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


@pytest.fixture
def launcher(harness: Harness) -> Iterator[Launcher]:
    lau = Launcher(harness)
    yield lau
    lau.stop()


def wait_gone(pid: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}/stat"):
        support.reap_children()
        assert time.monotonic() < deadline, f"process {pid} still there"
        time.sleep(0.01)


def log_entries(path: str) -> list[dict[str, str]]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_ping(launcher: Launcher) -> None:
    assert client.ping_launcher(launcher.exec_root) == launcher.pid
    with open(os.path.join(launcher.exec_root, protocol.LAUNCHER_PID)) as f:
        assert int(f.read()) == launcher.pid
    # The warm-up container ran and left nothing behind.
    assert not [n for n in os.listdir(launcher.exec_root) if n.startswith(".warmup-")]
    with open(os.path.join(launcher.exec_root, "launcher.log")) as f:
        assert "warm-up failed" not in f.read()


def test_run_logs_and_exit_status(launcher: Launcher) -> None:
    shim, resp, state_dir, log = launcher.spawn(
        ["sh", "-c", "echo out; echo err >&2; echo '<&>'; printf partial; exit 3"])
    assert resp["ok"] and resp["shim_pid"] > 0 and resp["init_pid"] > 0
    st = shim.state()
    assert st["status"] == "created" and st["init_pid"] == resp["init_pid"]
    shim.start()
    res = shim.wait()
    assert res["exit_code"] == 3 and res["signal"] is None and res["oom_killed"] is False
    entries = log_entries(log)
    assert [(e["log"], e["stream"]) for e in entries if e["stream"] == "stdout"] == [
        ("out\n", "stdout"), ("<&>\n", "stdout"), ("partial", "stdout")]
    assert [e["log"] for e in entries if e["stream"] == "stderr"] == ["err\n"]
    assert all(e["time"].endswith("Z") and "T" in e["time"] for e in entries)
    with open(log) as f:
        raw = f.read()
    assert '{"log":"\\u003c\\u0026\\u003e\\n","stream":"stdout","time":"' in raw
    exit_doc = json.loads(Path(state_dir, "exit.json").read_text())
    assert exit_doc["exit_code"] == 3 and exit_doc["finished_at"].endswith("Z")
    shim_doc = json.loads(Path(state_dir, "shim.json").read_text())
    assert shim_doc["status"] == "stopped" and shim_doc["init_pid"] == resp["init_pid"]
    assert shim.state()["status"] == "stopped"
    # Waiting after the exit answers at once.
    assert shim.wait()["exit_code"] == 3


def test_container_gets_default_signal_dispositions(launcher: Launcher) -> None:
    shim, _, _, log = launcher.spawn(["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"])
    shim.start()
    assert shim.wait()["exit_code"] == 0
    lines = [e["log"].split() for e in log_entries(log)]
    assert lines == [["SigBlk:", "0000000000000000"], ["SigIgn:", "0000000000000000"]]


def test_attach_stdin_with_half_close(launcher: Launcher) -> None:
    shim, _, _, log = launcher.spawn(["cat"], stdin=True)
    sock = shim.attach(stdin=True, stdout=True, stderr=True, stdin_once=True)
    shim.start()
    sock.sendall(b"hello\n")
    sock.sendall(b"x")
    sock.shutdown(socket.SHUT_WR)
    frames = client.read_frames(sock)
    sock.close()
    assert b"".join(p for s, p in frames if s == 1) == b"hello\nx"
    assert shim.wait()["exit_code"] == 0
    assert [e["log"] for e in log_entries(log)] == ["hello\n", "x"]


def test_attach_sees_only_selected_streams(launcher: Launcher) -> None:
    shim, _, _, _ = launcher.spawn(["sh", "-c", "echo a; echo b >&2"])
    sock = shim.attach(stdout=False, stderr=True)
    shim.start()
    assert client.read_frames(sock) == [(2, b"b\n")]
    sock.close()


def test_sigkill_gives_137(launcher: Launcher) -> None:
    shim, _, _, _ = launcher.spawn(["sleep", "100"])
    shim.start()
    assert shim.state()["status"] == "running"
    shim.kill(signal.SIGKILL)
    res = shim.wait(timeout=20)
    assert (res["exit_code"], res["signal"]) == (137, 9)
    with pytest.raises(Conflict):
        shim.kill(signal.SIGTERM)


def test_start_twice_is_a_conflict(launcher: Launcher) -> None:
    shim, _, _, _ = launcher.spawn(["sleep", "100"])
    shim.start()
    with pytest.raises(Conflict):
        shim.start()
    shim.kill(signal.SIGKILL, all=True)
    shim.wait()


def test_many_waiters(launcher: Launcher) -> None:
    shim, _, _, _ = launcher.spawn(["sh", "-c", "read x; exit 7"], stdin=True)
    shim.start()
    results: list[int] = []

    def waiter() -> None:
        results.append(client.ShimClient(shim.state_dir).wait()["exit_code"])

    threads = [threading.Thread(target=waiter) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    assert results == []
    shim.close_stdin()
    for t in threads:
        t.join(20)
    assert results == [7] * 8


def test_shim_survives_the_launcher(launcher: Launcher) -> None:
    shim, resp, _, log = launcher.spawn(["sh", "-c", "read x; echo got $x"], stdin=True)
    shim.start()
    os.kill(launcher.pid, signal.SIGKILL)
    wait_gone(launcher.pid)
    assert shim.state()["status"] == "running"
    sock = shim.attach(stdin=True, stdin_once=True)
    sock.sendall(b"still here\n")
    sock.shutdown(socket.SHUT_WR)
    assert client.read_frames(sock) == [(1, b"got still here\n")]
    sock.close()
    assert shim.wait()["exit_code"] == 0
    assert [e["log"] for e in log_entries(log)] == ["got still here\n"]


def test_missing_command_fails_spawn_cleanly(launcher: Launcher) -> None:
    with pytest.raises(RuntimeFailure) as info:
        launcher.spawn(["no-such-command"])
    assert info.value.exit_code == 127
    state_dir = os.path.join(launcher.exec_root, f"c{launcher.n}")
    assert not os.path.exists(os.path.join(state_dir, protocol.SHIM_SOCKET))
    assert not os.path.exists(os.path.join(state_dir, "state.json"))


def test_shutdown_removes_the_socket_and_exits(launcher: Launcher) -> None:
    shim, resp, state_dir, _ = launcher.spawn(["true"])
    shim.start()
    shim.wait()
    shim.shutdown()
    wait_gone(resp["shim_pid"])
    assert not os.path.exists(os.path.join(state_dir, protocol.SHIM_SOCKET))
    assert os.path.exists(os.path.join(state_dir, protocol.EXIT_FILE))


def test_a_client_that_never_reads_does_not_block(launcher: Launcher) -> None:
    line = "0123456789abcdef" * 4  # 64 bytes + newline
    shim, _, _, log = launcher.spawn(["sh", "-c", f"yes {line} | head -n 150000"])
    stuck = shim.attach()  # never read
    shim.start()
    res = shim.wait(timeout=60)
    assert res["exit_code"] == 0
    assert sum(1 for _ in open(log)) == 150000
    stuck.close()


def test_no_log_path_and_output_dropped_when_unattached(launcher: Launcher) -> None:
    shim, _, state_dir, log = launcher.spawn(["echo", "nobody listens"], log=False)
    shim.start()
    assert shim.wait()["exit_code"] == 0
    assert not os.path.exists(log)


def test_spawn_start_latency(launcher: Launcher) -> None:
    times = []
    bundle = launcher.harness.bundle(["true"])
    for _ in range(5):
        t0 = time.perf_counter()
        shim, _, _, _ = launcher.spawn([], log=False, bundle=bundle)
        shim.start()
        times.append(time.perf_counter() - t0)
        shim.wait()
        shim.shutdown()
    times.sort()
    print(f"spawn+start through the launcher: median {times[2] * 1000:.1f} ms")


def test_tty_container(launcher: Launcher) -> None:
    launcher.n += 1
    bundle = launcher.harness.bundle(["sh", "-c", "[ -t 0 ] && echo isatty; tty; stty size; "
                                                  "read x; echo got $x"], terminal=True)
    state_dir = os.path.join(launcher.exec_root, f"c{launcher.n}")
    log_path = str(launcher.harness.tmp / "tty.log")
    client.spawn_via_launcher(launcher.exec_root, {
        "id": "tty", "bundle": str(bundle), "state_dir": state_dir, "log_path": log_path,
        "stdin": True, "tty": True})
    shim = client.ShimClient(state_dir, timeout=20)
    shim.call({"op": "resize", "height": 40, "width": 100})
    sock = shim.attach(stdin=True, stdin_once=True)
    shim.start()
    data = bytearray()
    while b"40 100\r\n" not in data:  # raw: no frame headers on a tty
        chunk = sock.recv(65536)
        assert chunk, bytes(data)
        data += chunk
    assert data == b"isatty\r\n/dev/pts/0\r\n40 100\r\n"
    sock.sendall(b"typed\n")
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    lines = data.decode().replace("\r\n", "\n").splitlines()
    # The terminal echoes input.
    assert lines == ["isatty", "/dev/pts/0", "40 100", "typed", "got typed"]
    assert shim.wait()["exit_code"] == 0
    assert all(e["stream"] == "stdout" for e in log_entries(log_path))


def test_resize_without_tty_is_a_conflict(launcher: Launcher) -> None:
    shim, _, _, _ = launcher.spawn(["true"])
    with pytest.raises(Conflict):
        shim.call({"op": "resize", "height": 10, "width": 10})
    shim.start()
    shim.wait()


def test_spawning_into_a_busy_state_dir_is_refused(launcher: Launcher) -> None:
    from berth.errors import AlreadyExists

    shim, _, state_dir, _ = launcher.spawn(["sleep", "100"])
    bundle = launcher.harness.bundle(["true"])
    with pytest.raises(AlreadyExists):
        client.spawn_via_launcher(launcher.exec_root, {
            "id": "again", "bundle": str(bundle), "state_dir": state_dir, "stdin": False})
    assert shim.state()["status"] == "created"  # the first shim still owns its socket
    shim.kill(signal.SIGKILL)
    assert shim.wait()["exit_code"] == 137
    shim.shutdown()


def test_a_restart_in_the_same_state_dir_starts_clean(launcher: Launcher) -> None:
    shim, resp, state_dir, log = launcher.spawn(["sh", "-c", "exit 5"])
    shim.start()
    assert shim.wait()["exit_code"] == 5
    shim.shutdown()
    deadline = time.monotonic() + 5
    while os.path.exists(os.path.join(state_dir, protocol.SHIM_SOCKET)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    bundle = launcher.harness.bundle(["sleep", "100"])
    client.spawn_via_launcher(launcher.exec_root, {
        "id": "again", "bundle": str(bundle), "state_dir": state_dir, "log_path": log,
        "stdin": False})
    assert not os.path.exists(os.path.join(state_dir, protocol.EXIT_FILE))
    shim.start()
    shim.kill(signal.SIGKILL)
    assert shim.wait()["exit_code"] == 137


def test_launcher_exits_cleanly_on_sigterm(launcher: Launcher) -> None:
    shim, _, _, _ = launcher.spawn(["sleep", "100"])
    os.kill(launcher.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while os.path.exists(os.path.join(launcher.exec_root, protocol.LAUNCHER_SOCKET)):
        assert time.monotonic() < deadline
        support.reap_children()
        time.sleep(0.01)
    assert not os.path.exists(os.path.join(launcher.exec_root, protocol.LAUNCHER_PID))
    assert shim.state()["status"] == "created"  # shims live on
    shim.start()
    shim.kill(signal.SIGKILL)
    assert shim.wait()["exit_code"] == 137


def test_a_monitor_serves_up_to_its_limit_each_container_apart(harness: Harness) -> None:
    lau = Launcher(harness, containers_per_monitor=2)
    try:
        spawned = [lau.spawn(["sh", "-c", f"read x; echo {i}:$x; exit {i}"], stdin=True)
                   for i in range(3)]
        monitors = [resp["shim_pid"] for _, resp, _, _ in spawned]
        assert monitors[0] == monitors[1] != monitors[2]
        for shim, _, _, _ in spawned:
            shim.start()
        for i, (shim, _, _, log) in enumerate(spawned):
            sock = shim.attach(stdin=True, stdin_once=True)
            sock.sendall(f"hello {i}\n".encode())
            sock.shutdown(socket.SHUT_WR)
            assert client.read_frames(sock) == [(1, f"{i}:hello {i}\n".encode())]
            sock.close()
            assert shim.wait()["exit_code"] == i
            assert [e["log"] for e in log_entries(log)] == [f"{i}:hello {i}\n"]
        # A monitor leaves once it serves no container.
        spawned[0][0].shutdown()
        time.sleep(0.2)
        assert os.path.exists(f"/proc/{monitors[0]}/stat")
        spawned[1][0].shutdown()
        spawned[2][0].shutdown()
        wait_gone(monitors[0])
        wait_gone(monitors[2])
    finally:
        lau.stop()


def test_a_failing_container_leaves_its_monitor_neighbours_alone(harness: Harness) -> None:
    lau = Launcher(harness, containers_per_monitor=4)
    try:
        doomed_dir = harness.tmp / "doomed"
        doomed_dir.mkdir()
        doomed, d_resp, _, _ = lau.spawn(
            ["sh", "-c", "read x; yes 0123456789 | head -n 5000; sleep 100"], stdin=True,
            log_path=str(doomed_dir / "json.log"), log_opts={"max-size": "1k", "max-file": "2"})
        neighbour, n_resp, _, log = lau.spawn(["sh", "-c", "read x; echo still $x"],
                                              stdin=True)
        assert d_resp["shim_pid"] == n_resp["shim_pid"]
        doomed.start()
        neighbour.start()
        # Its log directory vanishes: the first rotation fails, and takes only that
        # container's monitor down (with the container).
        shutil.rmtree(doomed_dir)
        sock = doomed.attach(stdin=True, stdin_once=True)
        sock.sendall(b"go\n")
        sock.shutdown(socket.SHUT_WR)
        client.read_frames(sock)
        sock.close()
        wait_gone(d_resp["init_pid"])
        with pytest.raises(Unavailable):
            doomed.state()
        assert neighbour.state()["status"] == "running"
        sock = neighbour.attach(stdin=True, stdin_once=True)
        sock.sendall(b"here\n")
        sock.shutdown(socket.SHUT_WR)
        assert client.read_frames(sock) == [(1, b"still here\n")]
        sock.close()
        assert neighbour.wait()["exit_code"] == 0
        assert [e["log"] for e in log_entries(log)] == ["still here\n"]
        neighbour.shutdown()
        wait_gone(n_resp["shim_pid"])
    finally:
        lau.stop()


def test_a_spawn_finds_a_monitor_after_one_vanished(harness: Harness) -> None:
    lau = Launcher(harness, containers_per_monitor=4)
    try:
        _, first, _, _ = lau.spawn(["true"])
        os.kill(first["shim_pid"], signal.SIGKILL)
        os.kill(first["init_pid"], signal.SIGKILL)  # orphaned, never started
        wait_gone(first["shim_pid"])
        wait_gone(first["init_pid"])
        shim, resp, _, log = lau.spawn(["echo", "again"])
        assert resp["shim_pid"] != first["shim_pid"]
        shim.start()
        assert shim.wait()["exit_code"] == 0
        assert [e["log"] for e in log_entries(log)] == ["again\n"]
        shim.shutdown()
    finally:
        lau.stop()
