"""``GET /containers/{id}/attach/ws``: the websocket form of attach, driven by a real client
(websocket-client) over the daemon's unix socket."""

from __future__ import annotations

import base64
import os
import socket
import time

import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import run_ok

websocket = pytest.importorskip("websocket")

pytestmark = pytest.mark.root


def connect(berthd: Berthd, cid: str, query: str) -> websocket.WebSocket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(berthd.socket)
    return websocket.create_connection(
        f"ws://localhost/v1.44/containers/{cid}/attach/ws?{query}", socket=sock, timeout=20)


def receive_until(ws: websocket.WebSocket, *wanted: bytes) -> bytes:
    got = b""
    deadline = time.monotonic() + 20
    while not all(w in got for w in wanted):
        assert time.monotonic() < deadline, got
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY, opcode
        got += data
    return got


def close_frame(ws: websocket.WebSocket) -> websocket.ABNF:
    """Skip what comes until the server's close frame, and return it."""
    deadline = time.monotonic() + 20
    while True:
        assert time.monotonic() < deadline
        frame = ws.recv_data_frame(control_frame=True)[1]
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            return frame


def test_handshake_is_checked(berthd: Berthd) -> None:
    cid = run_ok(berthd, "create", "busybox", "true").strip()
    path = f"/v1.44/containers/{cid}/attach/ws"
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    key = base64.b64encode(os.urandom(16)).decode()
    status, _, _ = berthd.request("GET", path, headers={**upgrade, "Sec-WebSocket-Version": "13"})
    assert status == 400
    status, _, _ = berthd.request("GET", path, headers={
        **upgrade, "Sec-WebSocket-Key": "not base64!", "Sec-WebSocket-Version": "13"})
    assert status == 400
    status, _, headers = berthd.request("GET", path, headers={
        **upgrade, "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "8"})
    assert status == 400 and headers["sec-websocket-version"] == "13"
    status, body, _ = berthd.request("GET", "/v1.44/containers/nosuch/attach/ws", headers={
        **upgrade, "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"})
    assert status == 404, body
    status, body, _ = berthd.request("GET", "/v1.44/containers/nosuch/attach/ws")
    assert status == 404, body
    run_ok(berthd, "rm", cid)


def test_stdin_in_output_out(berthd: Berthd) -> None:
    # StdinOnce, as `docker run -i` sets it: the attach that ends closes the container's stdin.
    cid = berthd.json("POST", "/v1.44/containers/create", {
        "Image": "busybox", "OpenStdin": True, "StdinOnce": True, "AttachStdin": True,
        "Cmd": ["sh", "-c", 'while read l; do echo "out $l"; echo "err $l" >&2; done; echo bye']
    })["Id"]
    run_ok(berthd, "start", cid)
    ws = connect(berthd, cid, "stdin=1&stdout=1&stderr=1&stream=1")
    try:
        ws.send_binary(b"one\n")
        # Output comes raw, not multiplexed: no 8-byte headers in the payloads.
        got = receive_until(ws, b"out one\n", b"err one\n")
        assert b"\x01\x00\x00\x00" not in got
        ws.send("two\n")  # a text frame is stdin too
        receive_until(ws, b"out two\n")
        ws.ping(b"are you there")
        frame = ws.recv_data_frame(control_frame=True)[1]
        while frame.opcode != websocket.ABNF.OPCODE_PONG:
            frame = ws.recv_data_frame(control_frame=True)[1]
        assert frame.data == b"are you there"
        # A message in fragments, a ping between them.
        ws.send_frame(websocket.ABNF.create_frame(b"thr", websocket.ABNF.OPCODE_BINARY, fin=0))
        ws.ping(b"mid")
        ws.send_frame(websocket.ABNF.create_frame(b"ee\n", websocket.ABNF.OPCODE_CONT, fin=1))
        receive_until(ws, b"out three\n")
    finally:
        ws.close()
    # The close ended the container's stdin: the loop reads EOF and the script says bye.
    deadline = time.monotonic() + 20
    while "bye" not in run_ok(berthd, "logs", cid):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert run_ok(berthd, "wait", cid).strip() == "0"
    run_ok(berthd, "rm", cid)


def test_logs_replay_then_close(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "busybox", "sh", "-c",
                 "echo first; echo second >&2").strip()
    run_ok(berthd, "wait", cid)
    ws = connect(berthd, cid, "logs=1&stdout=1")
    try:
        got = receive_until(ws, b"first\n")
        assert b"second" not in got
        # Nothing more: stream was not asked for, so the server closes normally.
        frame = ws.recv_data_frame(control_frame=True)[1]
        assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1000
    finally:
        ws.close()
    run_ok(berthd, "rm", cid)


def test_tty_output_and_unmasked_frames_refused(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "-t", "-i", "busybox", "sh").strip()
    ws = connect(berthd, cid, "stdin=1&stdout=1&stream=1")
    try:
        ws.send_binary(b"echo $((6*7))\n")
        receive_until(ws, b"42")
        # A client frame without a mask breaks the protocol: the server closes with 1002.
        ws.sock.sendall(b"\x82\x03abc")
        assert int.from_bytes(close_frame(ws).data[:2], "big") == 1002
    finally:
        ws.close()
    run_ok(berthd, "rm", "-f", cid)


def test_detach_keys_end_the_session_not_the_container(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "-t", "-i", "busybox", "sh").strip()
    ws = connect(berthd, cid, "stdin=1&stdout=1&stream=1&detachKeys=ctrl-a")
    try:
        ws.send_binary(b"echo $((6*7))\n")
        receive_until(ws, b"42")
        ws.send_binary(b"\x01")
        close_frame(ws)  # the server ends the session with a close frame
    finally:
        ws.close()
    assert run_ok(berthd, "inspect", "-f", "{{.State.Running}}", cid).strip() == "true"
    again = connect(berthd, cid, "stdin=1&stdout=1&stream=1")
    try:
        again.send_binary(b"echo $((7*8))\n")
        receive_until(again, b"56")
    finally:
        again.close()
    run_ok(berthd, "rm", "-f", cid)
