"""The daemon's shim client reaches sockets whose paths overflow ``sun_path``."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from berth.container.shim_client import ShimClient, ShimGone
from berth.shim import protocol


def _serve_once(sock: socket.socket) -> None:
    conn, _ = sock.accept()
    with conn:
        request = json.loads(protocol.read_line(conn))
        conn.sendall(protocol.encode({"ok": True, "echo": request["op"]}))


def test_long_socket_path(tmp_path: Path) -> None:
    deep = os.path.join(str(tmp_path), "x" * 60, "containers", "a" * 64)
    os.makedirs(deep)
    path = os.path.join(deep, "shim.sock")
    assert len(path) > 108
    listener = protocol.listen_unix(path)
    thread = threading.Thread(target=_serve_once, args=(listener,))
    thread.start()
    try:
        reply = asyncio.run(ShimClient(deep).request("state"))
    finally:
        thread.join(5)
        listener.close()
    assert reply == {"ok": True, "echo": "state"}


def test_missing_socket_is_shim_gone(tmp_path: Path) -> None:
    deep = os.path.join(str(tmp_path), "y" * 70, "b" * 64)
    with pytest.raises(ShimGone):
        asyncio.run(ShimClient(deep).state())
