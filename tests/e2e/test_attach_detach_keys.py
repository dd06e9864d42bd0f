"""``detachKeys``: the daemon watches a TTY attach's or exec's input for them, as dockerd
does, so API clients (not only the docker CLI, which watches its own terminal) can detach; the
container (or the exec'd process) keeps running with its stdin open."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import run_ok

pytestmark = pytest.mark.root


def hijack(berthd: Berthd, cid: str, query: str) -> socket.socket:
    return upgrade(berthd, f"/v1.44/containers/{cid}/attach?{query}")


def upgrade(berthd: Berthd, path: str, body: bytes = b"") -> socket.socket:
    """POST ``path`` asking for the connection, as the docker CLI does; the 101 is read."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(berthd.socket)
    typed = (f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
             if body else "")
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{typed}"
                 "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode() + body)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    got = b""
    while marker not in got:
        chunk = sock.recv(65536)
        assert chunk, got
        got += chunk
    return got


def read_to_end(sock: socket.socket) -> bytes:
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    return got


def test_detach_keys_end_a_tty_attach_and_keep_the_container(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "-it", "busybox", "sh").strip()
    sock = hijack(berthd, cid, "stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x,x")
    sock.sendall(b"echo one-$((1+1))\n")
    read_until(sock, b"one-2")
    sock.sendall(b"echo two-$((2+2))\x18x")  # the keys after text: the text goes through
    read_to_end(sock)  # the daemon ended the attach
    sock.close()
    time.sleep(0.2)
    assert run_ok(berthd, "inspect", "-f", "{{.State.Running}}", cid).strip() == "true"
    again = hijack(berthd, cid, "stream=1&stdin=1&stdout=1&stderr=1")
    again.sendall(b"\n")  # ends the line typed before the detach
    read_until(again, b"two-4")
    again.sendall(b"exit 3\n")
    read_to_end(again)
    again.close()
    assert run_ok(berthd, "wait", cid).strip() == "3"
    run_ok(berthd, "rm", cid)


def test_default_keys_and_a_bad_value(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "-it", "busybox", "sh").strip()
    status, body, _ = berthd.request("POST", f"/v1.44/containers/{cid}/attach",
                                     query={"stream": 1, "stdin": 1, "detachKeys": "ctrl-"})
    assert status == 400 and b"Invalid detach keys (ctrl-) provided" in body, body
    sock = hijack(berthd, cid, "stream=1&stdin=1&stdout=1")
    sock.sendall(b"\x10\x11")  # ctrl-p ctrl-q
    read_to_end(sock)
    sock.close()
    time.sleep(0.2)
    assert run_ok(berthd, "inspect", "-f", "{{.State.Running}}", cid).strip() == "true"
    run_ok(berthd, "rm", "-f", cid)


def test_without_a_tty_the_keys_are_input(berthd: Berthd) -> None:
    cid = berthd.json("POST", "/v1.44/containers/create", {
        "Image": "busybox", "OpenStdin": True, "StdinOnce": True, "AttachStdin": True,
        "Cmd": ["od", "-An", "-c"]})["Id"]
    run_ok(berthd, "start", cid)
    sock = hijack(berthd, cid, "stream=1&stdin=1&stdout=1")
    sock.sendall(b"a\x10\x11b")
    sock.shutdown(socket.SHUT_WR)
    out = read_to_end(sock)
    sock.close()
    assert b"020" in out and b"021" in out, out  # od shows ctrl-p and ctrl-q as octal
    assert run_ok(berthd, "wait", cid).strip() == "0"
    run_ok(berthd, "rm", cid)


def exec_create(berthd: Berthd, cid: str, **config: object) -> str:
    status, body, _ = berthd.request("POST", f"/v1.44/containers/{cid}/exec", body={
        "AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Tty": True,
        **config})
    assert status == 201, body
    return str(json.loads(body)["Id"])


def exec_hijack(berthd: Berthd, exec_id: str) -> socket.socket:
    return upgrade(berthd, f"/v1.44/exec/{exec_id}/start", b'{"Detach": false, "Tty": true}')


def exec_state(berthd: Berthd, exec_id: str) -> dict[str, object]:
    status, body, _ = berthd.request("GET", f"/v1.44/exec/{exec_id}/json")
    assert status == 200, body
    return dict(json.loads(body))


def test_detach_keys_end_a_tty_exec_and_it_runs_on(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "busybox", "sleep", "600").strip()
    exec_id = exec_create(berthd, cid, Cmd=["sh"], DetachKeys="ctrl-x,x")
    sock = exec_hijack(berthd, exec_id)
    sock.sendall(b"echo one-$((1+1))\n")
    read_until(sock, b"one-2")
    sock.sendall(b"touch /detached\n\x18x")
    read_to_end(sock)  # the daemon ended the stream
    sock.close()
    time.sleep(0.3)
    state = exec_state(berthd, exec_id)
    assert state["Running"] is True and state["ExitCode"] is None, state
    # The shell runs on with its terminal open, and ran what was typed before the keys.
    assert run_ok(berthd, "exec", cid, "ls", "/detached") != ""
    os.kill(int(state["Pid"]), signal.SIGKILL)  # the host's pid, as dockerd reports it
    deadline = time.monotonic() + 10
    while exec_state(berthd, exec_id)["Running"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert exec_state(berthd, exec_id)["ExitCode"] == 137
    run_ok(berthd, "rm", "-f", cid)


def test_exec_default_keys_and_a_bad_value(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "busybox", "sleep", "600").strip()
    status, body, _ = berthd.request("POST", f"/v1.44/containers/{cid}/exec", body={
        "Cmd": ["sh"], "Tty": True, "AttachStdin": True, "DetachKeys": "ctrl-"})
    assert status == 400 and b"Invalid escape keys (ctrl-) provided" in body, body
    exec_id = exec_create(berthd, cid, Cmd=["sh"])
    sock = exec_hijack(berthd, exec_id)
    sock.sendall(b"\x10\x11")  # ctrl-p ctrl-q
    read_to_end(sock)
    sock.close()
    time.sleep(0.2)
    assert exec_state(berthd, exec_id)["Running"] is True
    run_ok(berthd, "rm", "-f", cid)
