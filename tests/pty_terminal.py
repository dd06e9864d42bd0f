"""A command on a pseudo-terminal of its own, for tests that type into a CLI (``-it``,
detach keys, resizes) and read what it drew."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time


class PtyTerminal:
    def __init__(self, argv: list[str], env: dict[str, str], *, rows: int = 24, cols: int = 80,
                 cwd: str | None = None) -> None:
        self.master, slave = pty.openpty()
        self.proc: subprocess.Popen[bytes] | None = None
        self.set_size(rows, cols)
        self.proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave,
                                     close_fds=True, start_new_session=True, cwd=cwd)
        os.close(slave)
        self.seen = b""

    def set_size(self, rows: int, cols: int, *, signal_it: bool = True) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        if signal_it and self.proc is not None:
            os.kill(self.proc.pid, signal.SIGWINCH)

    def read_until(self, marker: bytes, timeout: float = 20) -> bytes:
        """Everything drawn so far, once it holds ``marker`` (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while marker not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:
                    break
        assert marker in self.seen, self.seen
        return self.seen

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Kill the command if it still runs; release the terminal."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
