"""The json-file log's whole-chunk path for plain lines gives exactly the entries the
line-by-line encoder gives, however output is cut into reads, with or without rotation."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from berth.shim import jsonlog
from berth.shim.jsonlog import MAX_LINE, JsonFileLog, encode_entry

# Plain text (the fast path), bytes that need escapes or are not ASCII (the slow one), and
# lines long enough to be cut.
_PIECES = st.sampled_from([b"a", b"text ", b"\n", b"\n", b"<", b'"', b"\\", b"\t",
                           "\u2028".encode(), b"\xff", b"x" * (MAX_LINE - 1),
                           b"y" * (MAX_LINE + 3)])
_CHUNKS = st.lists(st.tuples(st.sampled_from([1, 2]),
                             st.lists(_PIECES, max_size=8).map(b"".join)), max_size=8)


def _entries(path: str) -> list[bytes]:
    """Every entry, from the oldest rotated file (the highest number) to the live one."""
    base = os.path.basename(path)
    numbers = sorted((int(p[len(base) + 1:]) for p in os.listdir(os.path.dirname(path))
                      if p.startswith(base + ".")), reverse=True)
    out: list[bytes] = []
    for name in [f"{path}.{n}" for n in numbers] + [path]:
        if os.path.exists(name):
            with open(name, "rb") as f:
                out += f.read().splitlines(keepends=True)
    return out


@settings(max_examples=200, deadline=None)
@given(_CHUNKS, st.sampled_from([0, 100, 40000]))
def test_entries_match_the_line_encoder(tmp_path_factory: object, chunks: list[tuple[int, bytes]],
                                        max_size: int) -> None:
    path = str(tmp_path_factory.mktemp("log") / "c-json.log")  # type: ignore[attr-defined]
    log = JsonFileLog(path, max_size=max_size, max_files=1000)
    for stream, data in chunks:
        log.write(stream, data)
    log.close()
    entries = _entries(path)
    rebuilt = {1: b"", 2: b""}
    for raw in entries:
        doc = json.loads(raw)
        stream = 1 if doc["stream"] == "stdout" else 2
        text = doc["log"].encode("utf-8", errors="surrogatepass")
        # Each entry is exactly what the line encoder makes of the bytes it holds.
        assert raw == encode_entry(text, doc["stream"], doc["time"])
        assert len(text) <= MAX_LINE + 1 or b"\xef\xbf\xbd" in text
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", doc["time"])
        rebuilt[stream] += text
    for stream in (1, 2):
        sent = b"".join(data for s, data in chunks if s == stream)
        if sent.isascii():  # else a cut inside a character may leave U+FFFD, as in Docker
            assert rebuilt[stream] == sent
        assert rebuilt[stream].count(b"\n") == sent.count(b"\n")
    if max_size:
        sizes = [os.path.getsize(os.path.join(os.path.dirname(path), n))
                 for n in os.listdir(os.path.dirname(path))]
        longest = max((len(e) for e in entries), default=0)
        assert all(size <= max(max_size, longest) for size in sizes)


def test_timestamps_are_utc_and_advance() -> None:
    first = jsonlog.rfc3339_nano()
    second = jsonlog.rfc3339_nano()
    assert first <= second
    assert first.endswith("Z") and len(first) == len("2024-01-02T03:04:05.123456789Z")


def test_plain_chunk_is_one_write_per_chunk(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    log = JsonFileLog(path)
    log.write(1, b"one\ntwo\nthr")
    log.write(1, b"ee\n")
    log.close()
    with open(path) as f:
        assert [json.loads(line)["log"] for line in f] == ["one\n", "two\n", "three\n"]


def test_a_failed_rotation_keeps_no_closed_descriptor(tmp_path: Path) -> None:
    """The log lives in a monitor process shared with other containers: after a rotation
    that could not reopen the file, no descriptor number of it may be closed again."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    log = JsonFileLog(str(logdir / "c.log"), max_size=64, max_files=2)
    log.write(1, b"x" * 40 + b"\n")
    for name in os.listdir(logdir):
        os.unlink(logdir / name)
    logdir.rmdir()
    with pytest.raises(FileNotFoundError):
        log.write(1, b"y" * 40 + b"\n")
    other = os.open(os.devnull, os.O_RDONLY)  # may take the number the log had
    try:
        log.close()  # must not close `other`
        os.fstat(other)
    finally:
        os.close(other)
    logdir.mkdir()
    log = JsonFileLog(str(logdir / "c.log"), max_size=64, max_files=2)
    log.write(1, b"z\n")
    log.close()
