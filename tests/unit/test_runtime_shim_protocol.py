"""The shim's wire protocol and json-file log encoding: pure, no root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth import errors
from berth.shim import protocol
from berth.shim.jsonlog import MAX_LINE, JsonFileLog, encode_entry


def test_encode_decode_roundtrip() -> None:
    line = protocol.encode({"op": "spawn", "id": "x", "stdin": True})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.decode(line) == {"op": "spawn", "id": "x", "stdin": True}
    with pytest.raises(errors.InvalidArgument):
        protocol.decode(b"[1]")


@pytest.mark.parametrize("exc", [
    errors.NotFound("no such container"),
    errors.Conflict("already started"),
    errors.InvalidArgument("bad"),
    errors.RuntimeFailure('exec: "x": executable file not found in $PATH', 127),
])
def test_errors_travel_by_kind(exc: errors.BerthError) -> None:
    wire = json.loads(protocol.encode(protocol.error_response(exc)))
    assert wire["ok"] is False and wire["kind"] == type(exc).__name__
    with pytest.raises(type(exc)) as info:
        protocol.raise_for_error(wire)
    assert str(info.value) == str(exc)
    if isinstance(exc, errors.RuntimeFailure):
        assert wire["exit_code"] == 127 and info.value.exit_code == 127


def test_unknown_errors_become_runtime_failures() -> None:
    wire = protocol.error_response(KeyError("x"))
    assert wire["kind"] == "RuntimeFailure" and wire["exit_code"] == 125
    with pytest.raises(errors.BerthError):
        protocol.raise_for_error({"ok": False, "error": "?", "kind": "NoSuchKind"})
    assert protocol.raise_for_error({"ok": True, "x": 1}) == {"ok": True, "x": 1}


@given(st.sampled_from([1, 2]), st.binary(max_size=300))
def test_frames(stream: int, payload: bytes) -> None:
    f = protocol.frame(stream, payload)
    assert f[:4] == bytes([stream, 0, 0, 0])
    assert protocol.parse_frame_header(f[:8]) == (stream, len(payload))
    assert f[8:] == payload


@given(st.binary(max_size=200))
def test_log_entries_are_json_and_keep_text(raw: bytes) -> None:
    entry = encode_entry(raw, "stdout", "2024-01-01T00:00:00.000000000Z")
    assert entry.endswith(b"\n") and entry.count(b"\n") == 1
    doc = json.loads(entry)
    assert list(doc) == ["log", "stream", "time"]
    assert doc["log"] == raw.decode("utf-8", errors="replace")


def test_log_escapes_like_docker() -> None:
    entry = encode_entry(b'<a href="x">&\x01\t\n', "stderr", "T")
    assert entry == (b'{"log":"\\u003ca href=\\"x\\"\\u003e\\u0026\\u0001\\t\\n",'
                     b'"stream":"stderr","time":"T"}\n')


def test_log_splits_lines_and_long_lines(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    log = JsonFileLog(path)
    log.write(1, b"a\nb")
    log.write(2, b"err\n")
    log.write(1, b"c\n")
    log.write(1, b"x" * (MAX_LINE + 10) + b"\n")
    log.write(1, b"tail")
    log.close()
    with open(path) as f:
        entries = [json.loads(line) for line in f]
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", "a\n"), ("stderr", "err\n"), ("stdout", "bc\n"),
        ("stdout", "x" * MAX_LINE), ("stdout", "x" * 10 + "\n"), ("stdout", "tail")]
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"


def test_long_socket_paths_connect(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "s.sock")
    assert len(path) > 108
    listener = protocol.listen_unix(path)
    try:
        conn = protocol.connect_unix(path, timeout=5)
        peer, _ = listener.accept()
        conn.sendall(protocol.encode({"op": "ping"}))
        assert protocol.read_line(peer) == b'{"op":"ping"}'
        conn.close()
        peer.close()
    finally:
        listener.close()
