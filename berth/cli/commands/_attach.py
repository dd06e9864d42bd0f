"""Attach, wait and start in docker's order, for ``run`` and ``start -a``.

The order matters: the attach is hijacked and the wait is sent *before* start, so no output is
lost and an exit (or, with ``--rm``, the removal) cannot slip by between start and wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from berth.cli.context import Context
from berth.cli.streams import StdinPump, copy_output, iter_socket
from berth.http.client import APIError, Client, Hijacked, PendingRequest

# Signals the docker CLI forwards to the container with --sig-proxy (it forwards all but
# SIGCHLD, SIGPIPE and SIGURG; these are the ones a terminal user can send).
_PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


@dataclass
class Streams:
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @property
    def any(self) -> bool:
        return self.stdin or self.stdout or self.stderr


def attach(client: Client, container_id: str, streams: Streams) -> Hijacked:
    return client.hijack("POST", f"/containers/{container_id}/attach", params={
        "stream": True, "stdin": streams.stdin, "stdout": streams.stdout,
        "stderr": streams.stderr,
    })


def send_wait(client: Client, container_id: str, auto_remove: bool) -> PendingRequest:
    return client.send("POST", f"/containers/{container_id}/wait",
                       params={"condition": "removed" if auto_remove else "next-exit"})


def wait_status(ctx: Context, pending: PendingRequest, timeout: float | None = None) -> int:
    """The exit code the wait reports; 125 (and a message) when waiting itself failed."""
    try:
        with pending.wait_response(timeout=timeout) as response:
            result: Any = response.json() or {}
    except (APIError, OSError) as e:
        ctx.err(f"error waiting for container: {e}")
        return 125
    error = result.get("Error")
    if error and error.get("Message"):
        ctx.err(f"Error waiting for container: {error['Message']}")
        return 125
    return int(result.get("StatusCode", 0))


@contextlib.contextmanager
def signal_proxy(client: Client, container_id: str, enabled: bool) -> Iterator[None]:
    """Forward the signals this process receives to the container (``--sig-proxy``)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, _frame: object) -> None:
        def send() -> None:
            with contextlib.suppress(Exception):
                client.request("POST", f"/containers/{container_id}/kill",
                               params={"signal": str(signum)}).close()
        threading.Thread(target=send, daemon=True).start()

    previous = {}
    for name in _PROXIED:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        with contextlib.suppress(OSError, ValueError):
            previous[signum] = signal.signal(signum, forward)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            with contextlib.suppress(OSError, ValueError):
                signal.signal(signum, handler)


@contextlib.contextmanager
def raw_terminal(ctx: Context, enabled: bool) -> Iterator[None]:
    """Put a terminal stdin in raw mode for ``-it`` so keys reach the container as typed."""
    if not enabled or not ctx.is_tty(ctx.stdin):
        yield
        return
    import termios
    import tty

    fd = ctx.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def resize(client: Client, ctx: Context, container_id: str) -> None:
    """Tell the daemon our terminal's size, so the container's pty matches it."""
    try:
        size = os.get_terminal_size(ctx.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        return
    with contextlib.suppress(Exception):
        client.request("POST", f"/containers/{container_id}/resize",
                       params={"h": size.lines, "w": size.columns}).close()


def stream_until_done(ctx: Context, hijacked: Hijacked, streams: Streams) -> None:
    """Copy stdin in (a thread) and output out (this thread) until the daemon closes output."""
    if streams.stdin:
        StdinPump(ctx.stdin, hijacked.sock).start()
    elif not streams.stdout and not streams.stderr:
        return
    with raw_terminal(ctx, streams.tty and streams.stdin):
        system_error = copy_output(iter_socket(hijacked.sock, hijacked.buffered),
                                   ctx.stdout, ctx.stderr, streams.tty)
    if system_error:
        ctx.err(system_error)
