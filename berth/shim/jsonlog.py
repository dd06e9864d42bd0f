"""Docker's json-file log format, written by the shim as output arrives.

One JSON object per line: ``{"log":"hi\\n","stream":"stdout","time":"…Z"}``, keys in that
order, strings escaped as Docker's encoder does (``<``, ``>``, ``&``, U+2028/9 and control
characters as ``\\u00XX``, invalid UTF-8 as U+FFFD). Lines longer than 16 KiB are cut into
partial messages without a newline, as Docker does; a partial last line is written at end of
stream.
"""

from __future__ import annotations

import os
import time

MAX_LINE = 16 * 1024
STREAM_NAMES = {1: "stdout", 2: "stderr"}

_ESCAPES: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x20)}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"',
                 ord("\\"): "\\\\", ord("<"): "\\u003c", ord(">"): "\\u003e",
                 ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"})


_clock_second = -1
_clock_prefix = ""


def rfc3339_nano() -> str:
    """Now, as Docker writes times (``2024-01-02T03:04:05.123456789Z``).

    Every log line gets one, so the date part is formatted once a second. No ``datetime``:
    importing it in a shim would cost a megabyte of private memory.
    """
    global _clock_second, _clock_prefix
    secs, frac = divmod(time.time_ns(), 1_000_000_000)
    if secs != _clock_second:
        _clock_prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(secs))
        _clock_second = secs
    return f"{_clock_prefix}{frac:09d}Z"


def encode_entry(line: bytes, stream: str, time: str) -> bytes:
    text = line.decode("utf-8", errors="replace").translate(_ESCAPES)
    return f'{{"log":"{text}","stream":"{stream}","time":"{time}"}}\n'.encode()


# Bytes a log line may hold and still be copied as it is: printable ASCII that JSON (with
# Docker's HTML-safe escaping) leaves alone, and the newline ending each line.
_PLAIN = bytes(c for c in range(0x20, 0x7F) if chr(c) not in '"\\<>&') + b"\n"
_ENTRY_HEAD = b'{"log":"'

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Docker's log ``max-size`` (``10m``, ``512k``, ``1g``; binary units, as go-units'
    RAMInBytes reads them)."""
    raw = str(text).strip().lower()
    for suffix in ("ib", "b"):
        if raw.endswith(suffix) and raw[:-len(suffix)][-1:].isalpha():
            raw = raw[:-len(suffix)]
            break
    unit = raw[-1:] if raw[-1:].isalpha() else ""
    number = raw[:-1] if unit else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"invalid size: {text!r}") from None
    if unit not in _UNITS or value < 0:
        raise ValueError(f"invalid size: {text!r}")
    return int(value * _UNITS[unit])


class JsonFileLog:
    """Appends each stream's lines to ``path``; every ``write`` reaches the file at once.

    With ``max_size``, a write that would take the file past it first rotates: ``path`` →
    ``path.1`` → … ``path.{max_files-1}``, the oldest dropped (one file: truncated), as
    Docker's json-file driver does.
    """

    def __init__(self, path: str, max_size: int = 0, max_files: int = 1) -> None:
        self._path = path
        self._max_size = max_size
        self._max_files = max(1, max_files)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._partial: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}

    def _rotate(self) -> None:
        # Never keep a closed descriptor's number: the monitor serves other containers,
        # whose files may get it next.
        os.close(self._fd)
        self._fd = -1
        if self._max_files > 1:
            for n in range(self._max_files - 1, 0, -1):
                src = self._path if n == 1 else f"{self._path}.{n - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self._path}.{n}")
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        else:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._fd = os.open(self._path, flags, 0o640)
        self._size = 0

    def _rotate_open(self) -> None:
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                           0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: int, data: bytes) -> None:
        buf = self._partial[stream]
        buf += data
        now = rfc3339_nano()
        name = STREAM_NAMES[stream]
        end = buf.rfind(b"\n") + 1
        if end:
            block = bytes(buf[:end])
            lines = block.split(b"\n")
            lines.pop()
            if not block.translate(None, _PLAIN) and max(map(len, lines)) < MAX_LINE:
                # Printable ASCII needing no escapes (the usual case): the entries are
                # built by one join rather than line by line.
                del buf[:end]
                tail = f'\\n","stream":"{name}","time":"{now}"}}\n'.encode()
                entries = _ENTRY_HEAD + (tail + _ENTRY_HEAD).join(lines) + tail
                if self._max_size and self._size + len(entries) > self._max_size:
                    for line in lines:  # rotation happens between entries
                        self._write(_ENTRY_HEAD + line + tail)
                else:
                    self._write(entries)
        out: list[bytes] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0 or nl - start >= MAX_LINE:
                if len(buf) - start >= MAX_LINE:
                    out.append(encode_entry(bytes(buf[start:start + MAX_LINE]), name, now))
                    start += MAX_LINE
                    continue
                break
            out.append(encode_entry(bytes(buf[start:nl + 1]), name, now))
            start = nl + 1
        del buf[:start]
        if self._max_size:
            for entry in out:  # rotation happens between entries, never inside one
                self._write(entry)
        elif out:
            self._write(b"".join(out))

    def end_stream(self, stream: int) -> None:
        """At end of stream, log what is left of a last line without a newline."""
        buf = self._partial[stream]
        if buf:
            self._write(encode_entry(bytes(buf), STREAM_NAMES[stream], rfc3339_nano()))
            buf.clear()

    def _write(self, data: bytes) -> None:
        if self._fd < 0:  # a rotation failed: try the file again
            self._rotate_open()
        elif self._max_size and self._size and self._size + len(data) > self._max_size:
            self._rotate()
        self._size += len(data)
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def close(self) -> None:
        try:
            for stream in (1, 2):
                self.end_stream(stream)
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
