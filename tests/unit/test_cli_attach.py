"""``run -it``, ``start -ai``, ``attach`` and ``exec``: TTY handling, detach keys, resize.

The pty tests run ``berth`` as a real process whose stdio is a pseudo-terminal, against the fake
daemon in this process: raw mode, the initial size, SIGWINCH → resize and the detach keys are
what a user at a terminal sees.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli_fakedaemon import FakeDaemon, Reply, error_reply, fake_daemon, json_reply
from test_cli_verbs import CID, berth

from berth.http.frames import STDOUT, encode_frame
from berth.util.detach import DEFAULT_DETACH_KEYS, EscapeFilter, detach_key_bytes
from tests.pty_terminal import PtyTerminal

__all__ = ["fake_daemon"]

REPO = Path(__file__).resolve().parents[2]


# -- detach keys ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "keys"), [
    ("ctrl-p,ctrl-q", b"\x10\x11"), ("ctrl-a", b"\x01"), ("ctrl-@,ctrl-[", b"\x00\x1b"),
    ("a,ctrl-z", b"a\x1a"), ("ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x1c\x1d\x1e\x1f"),
])
def test_detach_key_bytes(text: str, keys: bytes) -> None:
    assert detach_key_bytes(text) == keys


@pytest.mark.parametrize("text", ["ctrl-", "ctrl-1", "abc", "ctrl-pp"])
def test_detach_key_bytes_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="Unknown character"):
        detach_key_bytes(text)


def test_escape_filter_holds_a_prefix_and_releases_it() -> None:
    f = EscapeFilter(DEFAULT_DETACH_KEYS)
    assert f.feed(b"ab\x10") == (b"ab", False)  # ctrl-p held back
    assert f.feed(b"x") == (b"\x10x", False)  # not followed by ctrl-q: released
    assert f.feed(b"\x10\x10") == (b"\x10", False)  # the second ctrl-p may start it again
    assert f.feed(b"\x11") == (b"", True)
    assert EscapeFilter(b"\x10\x11").feed(b"ls\r\x10\x11rest") == (b"ls\r", True)
    assert EscapeFilter(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


# -- a container with a TTY in the fake ---------------------------------------------------------

class TtyContainer:
    """A ``sh``-like container with a TTY: echoes what it reads, exits on ``exit N\\r``."""

    def __init__(self, daemon: FakeDaemon, *, tty: bool = True, running: bool = False) -> None:
        self.started = threading.Event()
        self.stdin = b""
        self.status = 0
        self.exited = threading.Event()
        self.resizes: list[tuple[str, str]] = []
        self.kills: list[str] = []
        self.body: dict[str, Any] = {}
        self.tty = tty
        if running:
            self.started.set()
        daemon.route("POST", "/containers/create", self._create)
        daemon.route("GET", r"/containers/(\w+)/json", lambda r: json_reply({
            "Id": CID, "State": {"Running": self.started.is_set() and not self.exited.is_set()},
            "Config": {"Tty": self.tty, "OpenStdin": True}, "HostConfig": {}}))
        daemon.route("POST", r"/containers/(\w+)/attach", lambda r: Reply(hijack=self._attach))
        daemon.route("POST", r"/containers/(\w+)/start", self._start)
        daemon.route("POST", r"/containers/(\w+)/wait", self._wait)
        daemon.route("POST", r"/containers/(\w+)/resize", self._resize)
        daemon.route("POST", r"/containers/(\w+)/kill", self._kill)

    def _create(self, req: Any) -> Reply:
        self.body = req.json()
        return json_reply({"Id": CID, "Warnings": []}, 201)

    def _start(self, req: Any) -> Reply:
        self.started.set()
        return Reply(204)

    def _resize(self, req: Any) -> Reply:
        self.resizes.append((req.arg("h") or "", req.arg("w") or ""))
        return Reply(200)

    def _kill(self, req: Any) -> Reply:
        self.kills.append(req.arg("signal") or "")
        return Reply(204)

    def _wait(self, req: Any) -> Reply:
        def body() -> Iterator[bytes]:
            # Headers go first, as dockerd sends them: the docker CLI waits for them.
            yield b" "
            self.exited.wait(20)
            yield json.dumps({"StatusCode": self.status}).encode()

        return Reply(200, body(), {"Content-Type": "application/json"})

    def _attach(self, sock: socket.socket, buffered: bytes) -> None:
        self.started.wait(10)
        data = buffered
        sock.settimeout(0.2)
        deadline = time.monotonic() + 20
        sock.sendall(b"# " if self.tty else encode_frame(STDOUT, b"ready\n"))
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            self.stdin = data
            with_echo = chunk if self.tty else encode_frame(STDOUT, chunk)
            try:
                sock.sendall(with_echo)
            except OSError:
                break
            if b"exit " in data and data.endswith(b"\r"):
                self.status = int(data.rsplit(b"exit ", 1)[1].strip())
                self.exited.set()
                break
        sock.close()


class Terminal(PtyTerminal):
    """``berth`` running on a pty: type into it, read what it drew, resize it."""

    def __init__(self, daemon: FakeDaemon, *args: str, rows: int = 24, cols: int = 80) -> None:
        super().__init__([sys.executable, "-m", "berth.cli.main", "-H", daemon.host, *args],
                         dict(os.environ, PYTHONPATH=str(REPO)), rows=rows, cols=cols,
                         cwd=str(REPO))

    def read_until(self, marker: bytes, timeout: float = 15) -> bytes:
        return super().read_until(marker, timeout)

    def wait(self, timeout: float = 20) -> int:
        try:
            return super().wait(timeout)
        finally:
            self.close()


def _wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert predicate()


def test_run_it_raw_mode_size_resize_and_exit_code(fake_daemon: FakeDaemon) -> None:
    c = TtyContainer(fake_daemon)
    term = Terminal(fake_daemon, "run", "-it", "--rm", "busybox", "sh", rows=33, cols=101)
    try:
        term.read_until(b"# ")
        # The size went with the create request and again once started.
        assert c.body["HostConfig"]["ConsoleSize"] == [33, 101]
        _wait_for(lambda: ("33", "101") in c.resizes)
        term.set_size(40, 120)
        _wait_for(lambda: ("40", "120") in c.resizes)
        # Raw mode: no local echo or line editing, so a key arrives at once, alone.
        term.write(b"a")
        _wait_for(lambda: c.stdin.endswith(b"a"))
        term.write(b"\x03")  # ctrl-c is a byte for the container, not a signal for berth
        _wait_for(lambda: c.stdin.endswith(b"\x03"))
        assert c.kills == []
        term.write(b"exit 7\r")
        assert term.wait() == 7
    finally:
        term.close()
    body = c.body
    assert (body["Tty"], body["OpenStdin"], body["AttachStdin"], body["StdinOnce"]) == (
        True, True, True, True)


def test_run_it_detach_keys_leave_it_running(fake_daemon: FakeDaemon) -> None:
    c = TtyContainer(fake_daemon)
    term = Terminal(fake_daemon, "run", "-it", "busybox", "sh")
    try:
        term.read_until(b"# ")
        term.write(b"ls\r")
        _wait_for(lambda: c.stdin.endswith(b"ls\r"))
        term.write(b"\x10")
        term.write(b"\x11")
        assert term.wait() == 0
    finally:
        term.close()
    assert b"\x10" not in c.stdin and not c.exited.is_set()
    attach = fake_daemon.last("POST", r"/containers/\w+/attach")
    assert attach.arg("detachKeys") is None  # the default is not spelled out


def test_run_it_custom_detach_keys(fake_daemon: FakeDaemon) -> None:
    c = TtyContainer(fake_daemon)
    term = Terminal(fake_daemon, "run", "-it", "--detach-keys", "ctrl-x,x", "busybox", "sh")
    try:
        term.read_until(b"# ")
        term.write(b"\x10\x11")  # the default keys are just keys now
        _wait_for(lambda: c.stdin.endswith(b"\x10\x11"))
        term.write(b"\x18x")
        assert term.wait() == 0
    finally:
        term.close()
    assert fake_daemon.last("POST", r"/containers/\w+/attach").arg("detachKeys") == "ctrl-x,x"


def test_attach_to_running_tty_container_and_detach(fake_daemon: FakeDaemon) -> None:
    c = TtyContainer(fake_daemon, running=True)
    term = Terminal(fake_daemon, "attach", "web", rows=10, cols=20)
    try:
        term.read_until(b"# ")
        term.write(b"\x10\x11")
        term.read_until(b"read escape sequence")
        code = term.wait()
    finally:
        term.close()
    assert code == 1
    # The same requests as docker 28 sends (checked against this fake through a pty).
    calls = fake_daemon.calls()
    # The wait goes out without waiting for its answer: it and the first inspect may reach
    # the daemon in either order.
    assert sorted(calls[:2]) == ["GET /containers/web/json", "POST /containers/web/wait"]
    assert calls[2:4] == ["POST /containers/web/attach", "GET /containers/web/json"]
    assert "POST /containers/web/resize" in calls
    assert c.resizes[:2] == [("11", "21"), ("10", "20")]  # a nudge, so the prompt redraws


def test_start_ai_tty_exit_code(fake_daemon: FakeDaemon) -> None:
    TtyContainer(fake_daemon)
    term = Terminal(fake_daemon, "start", "-ai", "web")
    try:
        term.read_until(b"# ")
        term.write(b"exit 4\r")
        assert term.wait() == 4
    finally:
        term.close()
    attach = fake_daemon.last("POST", r"/containers/\w+/attach")
    assert (attach.arg("stdin"), attach.arg("stdout"), attach.arg("stream")) == ("1", "1", "1")


def test_exec_it_resizes_the_exec(fake_daemon: FakeDaemon) -> None:
    started = threading.Event()
    resizes: list[tuple[str | None, str | None]] = []

    def start(req: Any) -> Reply:
        def stream(sock: socket.socket, buffered: bytes) -> None:
            started.set()
            sock.sendall(b"$ ")
            data = buffered
            while b"\r" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            sock.sendall(b"bye\r\n")
            sock.close()
        return Reply(hijack=stream)

    def resize(req: Any) -> Reply:
        resizes.append((req.arg("h"), req.arg("w")))
        return Reply(201)

    fake_daemon.route("GET", r"/containers/(\w+)/json", json_reply({"Id": CID, "State": {}}))
    fake_daemon.route("POST", r"/containers/(\w+)/exec", json_reply({"Id": "e1"}, 201))
    fake_daemon.route("POST", "/exec/e1/start", start)
    fake_daemon.route("POST", "/exec/e1/resize", resize)
    fake_daemon.route("GET", "/exec/e1/json", json_reply({"ExitCode": 9}))
    term = Terminal(fake_daemon, "exec", "-it", "web", "sh", rows=12, cols=34)
    try:
        term.read_until(b"$ ")
        _wait_for(lambda: ("12", "34") in resizes)
        term.write(b"q\r")
        term.read_until(b"bye")
        assert term.wait() == 9
    finally:
        term.close()
    body = fake_daemon.last("POST", r"/containers/web/exec").json()
    assert body["ConsoleSize"] == [12, 34]
    assert fake_daemon.last("POST", "/exec/e1/start").json() == {
        "Detach": False, "Tty": True, "ConsoleSize": [12, 34]}


# -- without a terminal ------------------------------------------------------------------------

def test_attach_refuses_stopped_paused_restarting(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", r"/containers/(\w+)/wait", json_reply({"StatusCode": 0}))
    for state, message in (
            ({"Running": False}, "You cannot attach to a stopped container, start it first"),
            ({"Running": True, "Paused": True},
             "You cannot attach to a paused container, unpause it first"),
            ({"Running": True, "Restarting": True},
             "You cannot attach to a restarting container, wait until it is running")):
        fake_daemon.route("GET", r"/containers/(\w+)/json", json_reply(
            {"Id": CID, "State": state, "Config": {}}))
        r = berth(fake_daemon, "attach", "web")
        assert (r.code, r.err) == (1, message + "\n")


def test_attach_non_tty_streams_and_exit_code(fake_daemon: FakeDaemon) -> None:
    c = TtyContainer(fake_daemon, tty=False, running=True)
    c.status = 3
    r = berth(fake_daemon, "attach", "web", stdin=b"exit 3\r")
    assert r.code == 3
    assert r.out.startswith("ready\n")
    attach = fake_daemon.last("POST", r"/containers/\w+/attach")
    assert (attach.arg("stdin"), attach.arg("stdout"), attach.arg("stderr")) == ("1", "1", "1")


def test_attach_no_stdin(fake_daemon: FakeDaemon) -> None:
    def attach(sock: socket.socket, buffered: bytes) -> None:
        sock.sendall(encode_frame(STDOUT, b"bye\n"))
        sock.close()

    fake_daemon.route("POST", r"/containers/(\w+)/wait", json_reply({"StatusCode": 0}))
    fake_daemon.route("GET", r"/containers/(\w+)/json", json_reply(
        {"Id": CID, "State": {"Running": True}, "Config": {"OpenStdin": True}}))
    fake_daemon.route("POST", r"/containers/(\w+)/attach", Reply(hijack=attach))
    r = berth(fake_daemon, "attach", "--no-stdin", "--detach-keys", "ctrl-a", "web")
    assert (r.code, r.out) == (0, "bye\n")
    req = fake_daemon.last("POST", r"/containers/\w+/attach")
    assert (req.arg("stdin"), req.arg("detachKeys")) == ("0", "ctrl-a")


def test_attach_tty_needs_a_terminal(fake_daemon: FakeDaemon) -> None:
    TtyContainer(fake_daemon, running=True)
    r = berth(fake_daemon, "attach", "web")
    assert (r.code, r.err) == (1, "the input device is not a TTY\n")


def test_exec_missing_container_is_clear(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/json", error_reply(404, "No such container: x"))
    r = berth(fake_daemon, "exec", "x", "true")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: x\n")
    assert fake_daemon.calls() == ["GET /containers/x/json"]


def test_exec_body_as_docker_builds_it(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("F=1\n")
    fake_daemon.route("GET", r"/containers/(\w+)/json", json_reply({"Id": CID}))
    fake_daemon.route("POST", r"/containers/(\w+)/exec", json_reply({"Id": "e3"}, 201))
    fake_daemon.route("POST", "/exec/e3/start", Reply(200))
    r = berth(fake_daemon, "exec", "-d", "-t", "-u", "1:2", "--privileged", "--env-file",
              str(env_file), "-e", "A=1", "--detach-keys", "ctrl-x", "web", "sh", "-c", "x")
    assert r.code == 0
    # Captured from docker 28 against the same fake (stdout not a terminal: size 0x0).
    assert fake_daemon.last("POST", "/containers/web/exec").body == (
        b'{"User":"1:2","Privileged":true,"Tty":true,"ConsoleSize":[0,0],"AttachStdin":false,'
        b'"AttachStderr":false,"AttachStdout":false,"Detach":true,"DetachKeys":"ctrl-x",'
        b'"Env":["F=1","A=1"],"WorkingDir":"","Cmd":["sh","-c","x"]}')
    assert fake_daemon.last("POST", "/exec/e3/start").json() == {
        "Detach": True, "Tty": True, "ConsoleSize": [0, 0]}


@contextlib.contextmanager
def _berth_piped(daemon: FakeDaemon, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``berth`` as a child with pipes for its streams, killed and closed at the end."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "berth.cli.main", "-H", daemon.host, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=REPO)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_run_sig_proxy_forwards_signals(fake_daemon: FakeDaemon) -> None:
    c = TtyContainer(fake_daemon, tty=False)
    with _berth_piped(fake_daemon, "run", "-i", "busybox", "sh") as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.read(6) == b"ready\n"
        proc.send_signal(signal.SIGUSR1)
        _wait_for(lambda: c.kills == [str(int(signal.SIGUSR1))])
        proc.stdin.write(b"exit 0\r")
        proc.stdin.flush()
        assert proc.wait(timeout=20) == 0


def test_run_sig_proxy_false_forwards_nothing(fake_daemon: FakeDaemon) -> None:
    c = TtyContainer(fake_daemon, tty=False)
    with _berth_piped(fake_daemon, "run", "--sig-proxy=false", "-i", "busybox", "sh") as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.read(6) == b"ready\n"
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=20) != 0  # the default action: berth itself is hung up
        assert c.kills == []
