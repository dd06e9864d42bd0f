"""Attaching to a container or an exec: streams, raw terminal, size, detach keys, signals.

``run``, ``start -a``, ``attach`` and ``exec`` share this. The order of requests is docker's:
the attach is hijacked and the wait is sent *before* start, so no output is lost and an exit
(or, with ``--rm``, the removal) cannot slip by between start and wait.

With a TTY the terminal goes raw, our window size is sent at once and again on every SIGWINCH,
and the detach keys (``ctrl-p,ctrl-q`` unless ``--detach-keys`` says otherwise) are watched
for in what is typed: they are not forwarded, and end the attachment with the container left
running, as docker's CLI does.
"""

from __future__ import annotations

# The C modules: `socket` and `signal` build IntEnums at import (enum costs ms of the start).
import _signal as signal
import _socket as socket
import _thread
import os

from berth.cli.context import Context
from berth.cli.streams import StdinPump, copy_output, iter_socket
from berth.http.client import APIError, Client, Hijacked, PendingRequest
from berth.util.detach import DEFAULT_DETACH_KEYS, EscapeFilter, detach_key_bytes

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any


# Signals the docker CLI forwards to the container with --sig-proxy (it forwards all but
# SIGCHLD, SIGPIPE, SIGURG and SIGWINCH; these are the ones a terminal user can send).
_PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM",
            "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU")


class _Scoped:
    """A ``with`` block around a generator that yields once and cleans up in ``finally``:
    ``contextlib`` (with collections and functools) costs the CLI ~4 ms to import."""

    def __init__(self, gen: Iterator[None]) -> None:
        self._gen = gen

    def __enter__(self) -> None:
        next(self._gen)

    def __exit__(self, *exc: object) -> None:
        self._gen.close()  # the generator's finally runs; an exception goes on propagating


def _scoped(func: Callable[..., Iterator[None]]) -> Callable[..., _Scoped]:
    def scoped(*args: Any, **kwargs: Any) -> _Scoped:
        return _Scoped(func(*args, **kwargs))

    scoped.__name__, scoped.__doc__ = func.__name__, func.__doc__
    return scoped


class Cleanup:
    """Undo steps run last-first when the block ends (``contextlib.ExitStack``'s core)."""

    def __init__(self) -> None:
        self._undo: list[tuple[Callable[..., object], tuple[object, ...]]] = []

    def callback(self, func: Callable[..., object], *args: object) -> None:
        self._undo.append((func, args))

    def enter_context(self, manager: Any) -> None:
        manager.__enter__()
        self._undo.append((manager.__exit__, (None, None, None)))

    def __enter__(self) -> Cleanup:
        return self

    def __exit__(self, *exc: object) -> None:
        while self._undo:
            func, args = self._undo.pop()
            func(*args)


class Streams:
    """Which streams an attachment carries, and whether they go through a TTY.

    A plain class: ``dataclasses`` costs the CLI ~10 ms of start-up (it imports ``inspect``).
    """

    def __init__(self, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
        self.stdin, self.stdout, self.stderr, self.tty = stdin, stdout, stderr, tty

    @property
    def any(self) -> bool:
        return self.stdin or self.stdout or self.stderr


# -- detach keys ------------------------------------------------------------------------------


def escape_filter(ctx: Context, keys: str | None) -> EscapeFilter:
    """The filter for ``--detach-keys``; an invalid value warns and falls back, as docker does."""
    if keys:
        try:
            return EscapeFilter(detach_key_bytes(keys))
        except ValueError as e:
            ctx.err(f"WARNING: invalid detach escape keys, using default: {e}")
    return EscapeFilter(DEFAULT_DETACH_KEYS)


# -- requests ---------------------------------------------------------------------------------

def attach(client: Client, container_id: str, streams: Streams,
           detach_keys: str | None = None) -> Hijacked:
    return client.hijack("POST", f"/containers/{container_id}/attach", params={
        "stream": True, "stdin": streams.stdin, "stdout": streams.stdout,
        "stderr": streams.stderr, "detachKeys": detach_keys or None,
    })


def send_wait(client: Client, container_id: str, condition: str | None) -> PendingRequest:
    """``POST /containers/{id}/wait`` sent now, its answer read later."""
    return client.send("POST", f"/containers/{container_id}/wait",
                       params={"condition": condition} if condition else None)


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


# -- signals and terminal ---------------------------------------------------------------------

def _in_main_thread() -> bool:
    import threading  # loaded only by the verbs that attach a terminal or proxy signals

    return threading.current_thread() is threading.main_thread()


@_scoped
def signal_proxy(client: Client, container_id: str, enabled: bool) -> Iterator[None]:
    """Forward the signals this process receives to the container (``--sig-proxy``)."""
    if not enabled:  # (off the main thread signal.signal refuses, and nothing is proxied)
        yield
        return

    def forward(signum: int, _frame: object) -> None:
        def send() -> None:
            try:
                client.request("POST", f"/containers/{container_id}/kill",
                               params={"signal": str(signum)}).close()
            except Exception:
                pass
        # The C thread module: ``threading`` would cost ~1 ms of every run's start.
        _thread.start_new_thread(send, ())

    previous = {}
    for name in _PROXIED:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        try:
            previous[signum] = signal.signal(signum, forward)
        except (OSError, ValueError):
            pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            try:
                signal.signal(signum, handler)
            except (OSError, TypeError, ValueError):  # None: a handler set outside Python
                pass


@_scoped
def raw_terminal(ctx: Context, enabled: bool) -> Iterator[None]:
    """Put a terminal stdin in raw mode for ``-it`` so keys reach the container as typed."""
    if not enabled or not ctx.is_tty(ctx.stdin):
        yield
        return
    import termios
    import tty

    fd = ctx.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        try:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        except termios.error:
            pass


def terminal_size(ctx: Context) -> tuple[int, int] | None:
    """(rows, columns) of our output terminal, or None when it is not one."""
    if not ctx.is_tty(ctx.stdout):
        return None
    try:
        size = os.get_terminal_size(ctx.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    if not size.lines and not size.columns:
        return None
    return size.lines, size.columns


def _resize(client: Client, ctx: Context, path: str) -> bool:
    size = terminal_size(ctx)
    if size is None:
        return True
    try:
        client.request("POST", path, params={"h": size[0], "w": size[1]}).close()
    except Exception:  # noqa: BLE001 - a resize that fails is retried or given up quietly
        return False
    return True


@_scoped
def monitor_tty_size(client: Client, ctx: Context, path: str) -> Iterator[None]:
    """Send our size to ``path`` (``/containers/ID/resize``) now and on every SIGWINCH.

    The first resize may race a process that is still starting: retried ten times, the way
    docker's ``initTtySize`` does, with a message if it never succeeds.
    """
    if terminal_size(ctx) is None:
        yield
        return
    import threading
    import time

    if not _resize(client, ctx, path):
        def retry() -> None:
            for attempt in range(10):
                time.sleep((attempt + 1) * 0.01)
                if _resize(client, ctx, path):
                    return
            ctx.err("failed to resize tty, using default size")
        threading.Thread(target=retry, daemon=True).start()
    previous = None
    if _in_main_thread():
        def on_winch(_signum: int, _frame: object) -> None:
            threading.Thread(target=_resize, args=(client, ctx, path), daemon=True).start()
        try:
            previous = signal.signal(signal.SIGWINCH, on_winch)
        except (OSError, ValueError):
            pass
    try:
        yield
    finally:
        if previous is not None:
            try:
                signal.signal(signal.SIGWINCH, previous)
            except (OSError, ValueError):
                pass


# -- streaming --------------------------------------------------------------------------------

class Detached(Exception):
    """The user typed the detach keys: the container keeps running, we stop attaching."""


def stream(ctx: Context, hijacked: Hijacked, streams: Streams,
           detach_keys: str | None = None) -> None:
    """Copy stdin in (a thread) and output out (this thread) until the daemon closes output.

    Raises :class:`Detached` when the detach keys were typed (TTY input only, as docker).
    """
    pump = None
    if streams.stdin:
        escape = escape_filter(ctx, detach_keys) if streams.tty else None

        def detach() -> None:
            try:
                hijacked.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        pump = StdinPump(ctx.stdin, hijacked.sock, escape=escape, on_detach=detach)
        pump.start()
    elif not streams.stdout and not streams.stderr:
        return
    with raw_terminal(ctx, streams.tty and streams.stdin):
        try:
            system_error = copy_output(iter_socket(hijacked.sock, hijacked.buffered),
                                       ctx.stdout, ctx.stderr, streams.tty)
        except OSError:
            if pump is None or not pump.detached:
                raise
            system_error = None
    if pump is not None and pump.detached:
        raise Detached
    if system_error:
        ctx.err(system_error)

