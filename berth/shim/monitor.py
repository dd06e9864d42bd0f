"""The shim: a container's monitor, in a monitor process forked by the launcher.

A ``Monitor`` process serves up to the launcher's ``--containers-per-monitor`` containers (16
unless told; 1 for a process each), one ``Shim`` for each. A shim creates its container
through ``berth.runtime`` holding the container's stdio as pipes, then, in the monitor's
single-threaded ``selectors`` loop: copies output to the json-file log and to attached
clients, feeds stdin, records the exit status atomically in ``exit.json`` (the monitor is the
child subreaper of every init and exec it serves), and answers requests on
``STATE_DIR/shim.sock`` (the messages are in ``protocol``). The monitor lives in a session of
its own, so it outlives the daemon and the launcher; a restarted daemon simply connects
again. A shim that fails (a bug, a log that cannot be written) is torn down with its
container; the monitor and its other containers go on.

Files in the state directory (each replaced by atomic rename):

* ``shim.json`` — ``{"id", "shim_pid", "init_pid", "status", "started_at"}``, rewritten at
  each status change (``shim_pid``: the monitor process, which its containers share);
* ``exit.json`` — ``{"exit_code", "signal", "finished_at", "oom_killed"}``, written once
  the container has exited and its output is drained.

The monitors' own diagnostics go to ``EXEC_ROOT/monitor.log``.

No client can block the container for long: sockets are non-blocking; while a client is
more than ``PAUSE_ABOVE`` bytes behind, the output it is sent is not read (the container
waits on a full pipe, as under dockerd, and nothing is lost to the client); a client that
takes nothing for ``STALL_TIMEOUT`` is dropped, and the log gets everything.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import time
import traceback
from typing import Any, NoReturn

from berth import linux, runtime
from berth.errors import (
    AlreadyExists,
    BerthError,
    Conflict,
    InvalidArgument,
    NotFound,
    RuntimeFailure,
)
from berth.runtime import exec as runtime_exec
from berth.runtime import sync
from berth.shim import jsonlog, protocol
from berth.shim.jsonlog import JsonFileLog, rfc3339_nano

CLIENT_BUFFER_LIMIT = 4 << 20  # bytes of unsent output before a client is dropped outright
PAUSE_ABOVE = 1 << 20  # a client this far behind: stop reading the output it is sent
RESUME_BELOW = 256 << 10  # ... until it is no further behind than this
STALL_TIMEOUT = 10.0  # a client behind that long without taking a byte is dropped
FINISHED_EXECS_KEPT = 64  # exit codes kept for exec_wait/exec_state (healthchecks add up)
STDIN_BUFFER_LIMIT = 1 << 20  # stop reading stdin from clients beyond this
DRAIN_TIMEOUT = 2.0  # after init exits, how long descendants may hold the pipes open
SHUTDOWN_FLUSH_TIMEOUT = 5.0
READ_SIZE = 65536
# The container's output pipes: a chatty container is read in fewer, larger gulps (the
# kernel allocates the pages only while they hold unread output).
OUTPUT_PIPE_SIZE = 1 << 20

Stdio = tuple[int | None, int | None, int | None]


class _Conn:
    """A client connection: a request being read, a response being sent, a waiter, or an
    attach stream."""

    __slots__ = ("sock", "rbuf", "wbuf", "mode", "want_stdin", "streams", "stdin_once",
                 "reading", "exec", "progress_at")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.mode = "request"  # request | closing | wait | attach
        self.want_stdin = False
        self.streams: frozenset[int] = frozenset()
        self.stdin_once = False
        self.reading = True
        self.exec: _Exec | None = None
        self.progress_at = 0.0  # when it last took bytes (monotonic)


class _Exec:
    """A process started by ``exec``: its stdio, its stream connection, its waiters."""

    def __init__(self, exec_id: str, tty: bool) -> None:
        self.id = exec_id
        self.tty = tty
        self.pid = 0
        self.master = -1
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_close_pending = False
        self.outputs: dict[int, int] = {}
        self.conn: _Conn | None = None
        self.exit_code: int | None = None
        self.exited_at_mono: float | None = None
        self.drain_deadline = 0.0  # once exited: when to stop waiting for end of output
        self.output_paused = False
        self.done = False
        self.waiters: list[_Conn] = []


class _OwnedSelector:
    """The monitor's selector as one shim sees it: each registration is tagged with the
    shim, so the monitor's loop hands the event to its owner."""

    __slots__ = ("_sel", "_owner")

    def __init__(self, sel: selectors.BaseSelector, owner: Shim) -> None:
        self._sel = sel
        self._owner = owner

    def register(self, fd: Any, events: int, data: tuple[str, Any]) -> None:
        self._sel.register(fd, events, (self._owner, data))

    def modify(self, fd: Any, events: int, data: tuple[str, Any]) -> None:
        self._sel.modify(fd, events, (self._owner, data))

    def unregister(self, fd: Any) -> None:
        self._sel.unregister(fd)

    def get_map(self) -> Any:
        return self._sel.get_map()


class Shim:
    """One container's monitor: its stdio, log, clients, execs and exit, inside a
    ``Monitor`` process that may serve other containers too."""

    def __init__(self, request: dict[str, Any], monitor: Monitor) -> None:
        self.monitor = monitor
        self.id = str(request["id"])
        self.bundle = str(request["bundle"])
        self.state_dir = str(request["state_dir"])
        self.log_path = request.get("log_path")
        self.log_driver = str(request.get("log_driver") or "json-file")
        self.log_opts = dict(request.get("log_opts") or {})
        self.execs: dict[str, _Exec] = {}  # running, or exited with output not drained
        self.finished_execs: dict[str, _Exec] = {}  # the latest FINISHED_EXECS_KEPT, oldest first
        self.exec_pids: dict[int, _Exec] = {}
        self.paused = False
        self.use_stdin = bool(request.get("stdin"))
        self.tty = bool(request.get("tty"))
        self.pty_master = -1
        self.rootfs_mounts = request.get("rootfs_mounts") or None
        self.sel = _OwnedSelector(monitor.sel, self)
        self.conns: dict[int, _Conn] = {}
        self.init_pid = 0
        self.status = "created"
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.oom_killed = False
        self.exited_at_mono: float | None = None
        self.drain_deadline = 0.0  # once exited: when to stop waiting for end of output
        self.output_paused = False  # an attached client is far behind: output not read
        self.finalized = False
        self.shutdown_requested = False
        self.shutdown_deadline: float | None = None
        self.outputs: dict[int, int] = {}  # fd -> stream number (1, 2)
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_close_pending = False
        self.log: JsonFileLog | None = None
        self.listener: socket.socket | None = None
        self.spawn_conn: socket.socket | None = None  # answered once the container exists
        self.creator: socket.socket | None = None  # the creator child's end, while it works
        self.creating_fds: list[int] = []  # our ends of the stdio pipes, until it answers

    # ---- setup ----------------------------------------------------------------------

    def create(self, spawn_conn: socket.socket) -> None:
        """Start creating the container in a short-lived child; ``on_created`` finishes.

        Creating parses the bundle, builds the plan, compiles or loads seccomp, forks and
        talks to init: megabytes of heap written that would stay private to this
        long-lived process, and tens of milliseconds the monitor's other containers must
        not wait for. The child takes both with it when it exits. Init ends up ours
        either way: we are a child subreaper, so it is reparented to us when its creator
        exits. With a tty, init makes a pty in the container's devpts and the creator
        sends us the master (the spec must set ``process.terminal``).
        """
        self.spawn_conn = spawn_conn
        self.open_log()
        stdio: Stdio | None = None
        theirs_fds: list[int] = []
        if not self.tty:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            self.creating_fds += [out_r, err_r]
            theirs_fds += [out_w, err_w]
            for fd in (out_r, err_r):
                with contextlib.suppress(OSError):  # past the system's limit: the default
                    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, OUTPUT_PIPE_SIZE)
            in_r = None
            if self.use_stdin:
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                self.creating_fds.append(in_w)
                theirs_fds.append(in_r)
            stdio = (in_r, out_w, err_w)
        ours, theirs = sync.socketpair()
        try:
            if os.fork() == 0:
                ours.close()
                _creator_main(self, stdio, theirs)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            for fd in theirs_fds:
                os.close(fd)
        self.creator = ours
        self.sel.register(ours, selectors.EVENT_READ, ("creator", None))

    def on_created(self) -> None:
        """The creator answered: take init, wire its stdio, answer the spawn."""
        sock, self.creator = self.creator, None
        assert sock is not None
        self.sel.unregister(sock)
        try:
            msg = sync.recv(sock)
        finally:
            sock.close()
        if msg is None:
            raise RuntimeFailure("the container's creator exited without an answer")
        master = msg.get("fd")
        if msg["type"] != _CREATED:
            if master is not None:
                os.close(master)
            protocol.raise_for_error(msg)
        self.init_pid = int(msg["init_pid"])
        self.monitor.children[self.init_pid] = self
        if self.tty:
            if master is None:
                raise InvalidArgument("tty: the bundle must set process.terminal")
            os.set_blocking(master, False)
            self.pty_master = master
            self.outputs[master] = 1
            self.sel.register(master, selectors.EVENT_READ, ("output", 1))
            if self.use_stdin:
                self.stdin_fd = os.dup(master)  # a second fd: the selector wants one per role
        else:
            fds, self.creating_fds = self.creating_fds, []
            for fd, stream in ((fds[0], 1), (fds[1], 2)):
                os.set_blocking(fd, False)
                self.outputs[fd] = stream
                self.sel.register(fd, selectors.EVENT_READ, ("output", stream))
            if self.use_stdin:
                os.set_blocking(fds[2], False)
                self.stdin_fd = fds[2]
        self.write_state()
        conn, self.spawn_conn = self.spawn_conn, None
        if conn is not None:
            _answer(conn, protocol.ok(shim_pid=os.getpid(), init_pid=self.init_pid))

    def open_log(self) -> None:
        if not self.log_path or self.log_driver == "none":
            return
        max_size = jsonlog.parse_size(self.log_opts["max-size"]) \
            if self.log_opts.get("max-size") not in (None, "", "-1") else 0
        max_files = int(self.log_opts.get("max-file") or 1)
        self.log = JsonFileLog(self.log_path, max_size, max_files)

    def listen(self) -> None:
        self.listener = protocol.listen_unix(os.path.join(self.state_dir, protocol.SHIM_SOCKET))
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, ("listener", None))

    def write_state(self) -> None:
        _write_json(os.path.join(self.state_dir, protocol.SHIM_STATE), {
            "id": self.id,
            "shim_pid": os.getpid(),
            "init_pid": self.init_pid,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        })

    # ---- the loop -------------------------------------------------------------------

    def timeout(self, now: float) -> float | None:
        """How long the monitor may sleep for this shim's sake (None: until an event)."""
        timeout = None
        if self.exited_at_mono is not None and not self.finalized and not self.output_paused:
            timeout = max(0.0, self.drain_deadline - now)
        for ex in self.execs.values():
            if ex.exited_at_mono is not None and not ex.done and not ex.output_paused:
                left = max(0.0, ex.drain_deadline - now)
                timeout = left if timeout is None else min(timeout, left)
        if self.output_paused or any(ex.output_paused for ex in self.execs.values()):
            timeout = STALL_TIMEOUT / 4 if timeout is None else min(timeout, STALL_TIMEOUT / 4)
        if self.shutdown_deadline is not None:
            left = max(0.0, self.shutdown_deadline - now)
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    def on_event(self, fd: int, events: int, kind: str, arg: Any) -> None:
        if kind == "output":
            self.on_output(fd, arg)
        elif kind == "listener":
            self.on_accept()
        elif kind == "stdin":
            self.flush_stdin()
        elif kind == "exec_out":
            self.on_exec_output(fd, *arg)
        elif kind == "exec_in":
            self.flush_exec_stdin(arg)
        elif kind == "creator":
            self.on_created()
        elif kind == "conn":
            conn = self.conns.get(fd)
            if conn is None:
                return
            if events & selectors.EVENT_READ:
                self.on_conn_read(conn)
            if events & selectors.EVENT_WRITE and fd in self.conns:
                self.on_conn_write(conn)

    def tick(self) -> bool:
        """After a round of events: finish what is due. True once this shim is done."""
        if self.output_paused or any(ex.output_paused for ex in self.execs.values()):
            self.drop_stalled()
        for ex in list(self.execs.values()):
            if (ex.exited_at_mono is not None and not ex.done
                    and (not ex.outputs or (not ex.output_paused
                                            and time.monotonic() >= ex.drain_deadline))):
                self.finish_exec(ex)
        if (self.exited_at_mono is not None and not self.finalized
                and (not self.outputs or (not self.output_paused
                                          and time.monotonic() >= self.drain_deadline))):
            self.finalize()
        if self.shutdown_requested and self.finalized:
            if self.shutdown_deadline is None:
                self.shutdown_deadline = time.monotonic() + SHUTDOWN_FLUSH_TIMEOUT
            busy = any(c.wbuf for c in self.conns.values())
            if not busy or time.monotonic() >= self.shutdown_deadline:
                return True
        return False

    def on_child_exit(self, pid: int, status: int) -> None:
        ex = self.exec_pids.pop(pid, None)
        if ex is not None:
            code = os.waitstatus_to_exitcode(status)
            ex.exit_code = 128 - code if code < 0 else code
            ex.exited_at_mono = time.monotonic()
            ex.drain_deadline = ex.exited_at_mono + DRAIN_TIMEOUT
            return
        if pid == self.init_pid and self.exited_at_mono is None:
            code = os.waitstatus_to_exitcode(status)
            if code < 0:
                self.signal = -code
                self.exit_code = 128 - code
            else:
                self.exit_code = code
            self.finished_at = rfc3339_nano()
            self.exited_at_mono = time.monotonic()
            self.drain_deadline = self.exited_at_mono + DRAIN_TIMEOUT
            self.status = "stopped"
            try:
                self.oom_killed = runtime.oom_killed(self.state_dir)
            except (BerthError, OSError) as e:
                print(f"shim {self.id}: reading OOM events: {e}", file=sys.stderr)

    def finalize(self) -> None:
        """Init has exited and output is drained (or the drain timed out): publish."""
        for fd in list(self.outputs):
            self.close_output(fd)
        self.close_stdin_now()
        # The container is gone: its cgroups (and runtime state) go too, now rather than at
        # shutdown, so a shim that is never asked to shut down leaves none behind.
        try:
            runtime.delete(self.state_dir, force=True)
        except BerthError as e:
            print(f"shim {self.id}: deleting the stopped container: {e}", file=sys.stderr)
        _write_json(os.path.join(self.state_dir, protocol.EXIT_FILE), self.exit_info())
        self.write_state()
        self.finalized = True
        for conn in list(self.conns.values()):
            if conn.mode == "wait":
                self.respond(conn, protocol.ok(**self.exit_info()))
            elif conn.mode == "attach":
                conn.mode = "closing"
                self.update(conn)

    def exit_info(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "signal": self.signal,
                "finished_at": self.finished_at, "oom_killed": self.oom_killed}

    # ---- container output and input ---------------------------------------------------

    def on_output(self, fd: int, stream: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:  # EIO: every slave fd of the pty is closed
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.close_output(fd)
            return
        if self.log is not None:
            self.log.write(stream, data)
        framed = None
        for conn in list(self.conns.values()):
            if conn.mode == "attach" and stream in conn.streams:
                if framed is None:
                    # A tty has one stream and Docker sends it raw, without frames.
                    framed = data if self.tty else protocol.frame(stream, data)
                self.send(conn, framed)

    def close_output(self, fd: int) -> None:
        stream = self.outputs.pop(fd, None)
        if stream is None:
            return
        if fd in self.sel.get_map():
            self.sel.unregister(fd)
        os.close(fd)
        if self.log is not None:
            self.log.end_stream(stream)

    def flush_stdin(self) -> None:
        if self.stdin_fd < 0:
            self.stdin_buf.clear()
            return
        while self.stdin_buf:
            try:
                n = os.write(self.stdin_fd, self.stdin_buf)
            except BlockingIOError:
                break
            except OSError:  # EPIPE: the container closed its stdin
                self.stdin_buf.clear()
                self.close_stdin_now()
                return
            del self.stdin_buf[:n]
        if not self.stdin_buf and self.stdin_close_pending:
            self.close_stdin_now()
        self.update_stdin()

    def update_stdin(self) -> None:
        want = self.stdin_fd >= 0 and bool(self.stdin_buf)
        registered = self.stdin_fd >= 0 and self.stdin_fd in self.sel.get_map()
        if want and not registered:
            self.sel.register(self.stdin_fd, selectors.EVENT_WRITE, ("stdin", None))
        elif not want and registered:
            self.sel.unregister(self.stdin_fd)
        for conn in list(self.conns.values()):
            if conn.mode == "attach" and conn.want_stdin:
                self.update(conn)

    def close_stdin(self) -> None:
        """Close stdin once what clients sent is written."""
        self.stdin_close_pending = True
        self.flush_stdin()

    def close_stdin_now(self) -> None:
        if self.stdin_fd >= 0:
            if self.stdin_fd in self.sel.get_map():
                self.sel.unregister(self.stdin_fd)
            os.close(self.stdin_fd)
            self.stdin_fd = -1
            self.stdin_buf.clear()
            for conn in list(self.conns.values()):
                if conn.mode == "attach":
                    self.update(conn)

    # ---- client connections ---------------------------------------------------------

    def on_accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            conn = _Conn(sock)
            self.conns[sock.fileno()] = conn
            self.sel.register(sock, selectors.EVENT_READ, ("conn", None))

    def update(self, conn: _Conn) -> None:
        """Register the events ``conn`` needs now; close it when it has nothing left."""
        if conn.mode == "closing" and not conn.wbuf:
            self.drop(conn)
            return
        events = 0
        if conn.wbuf:
            events |= selectors.EVENT_WRITE
        if conn.reading:
            if conn.mode == "attach" and conn.want_stdin:
                if self.stdin_fd >= 0 and len(self.stdin_buf) < STDIN_BUFFER_LIMIT:
                    events |= selectors.EVENT_READ
            elif conn.mode == "exec":
                ex = conn.exec
                if ex is not None and ex.stdin_fd >= 0 and len(ex.stdin_buf) < STDIN_BUFFER_LIMIT:
                    events |= selectors.EVENT_READ
            elif conn.mode in ("request", "wait", "attach"):
                events |= selectors.EVENT_READ
        fd = conn.sock.fileno()
        key = self.sel.get_map().get(fd)
        if events == 0:
            if key is not None:
                self.sel.unregister(fd)
        elif key is None:
            self.sel.register(fd, events, ("conn", None))
        elif key.events != events:
            self.sel.modify(fd, events, ("conn", None))

    def drop(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        self.conns.pop(fd, None)
        if fd in self.sel.get_map():
            self.sel.unregister(fd)
        attached_stdin = conn.mode == "attach" and conn.want_stdin
        if attached_stdin and conn.reading:
            self.take_queued_input(conn)
        conn.sock.close()
        conn.wbuf.clear()
        self.update_flow(conn)
        if attached_stdin and conn.stdin_once and not self.tty:
            # An attach that ends by a broken connection (output sent after the client hung
            # up) ends like one that read EOF: StdinOnce closes the container's stdin.
            conn.want_stdin = False
            self.close_stdin()

    def take_queued_input(self, conn: _Conn) -> None:
        """What a client sent before it hung up is still queued on its socket when a send to
        it fails first: the container gets it (``echo; exit`` then close must run the exit)."""
        taken = 0
        while self.stdin_fd >= 0 and taken < STDIN_BUFFER_LIMIT:
            try:
                data = conn.sock.recv(READ_SIZE, socket.MSG_DONTWAIT)
            except OSError:  # nothing more queued, or the connection is gone
                break
            if not data:
                break
            taken += len(data)
            self.stdin_buf += data
        if taken:
            self.flush_stdin()

    def send(self, conn: _Conn, data: bytes) -> None:
        if conn.wbuf:
            conn.wbuf += data
        else:
            try:
                n = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self.drop(conn)
                return
            if n < len(data):
                conn.progress_at = time.monotonic()  # caught up until now
                conn.wbuf += data[n:]
        if len(conn.wbuf) > CLIENT_BUFFER_LIMIT:
            print(f"shim {self.id}: dropping a client {len(conn.wbuf)} bytes behind",
                  file=sys.stderr)
            self.drop(conn)
            return
        if conn.wbuf:
            self.update_flow(conn)
        self.update(conn)

    # ---- flow control: a slow client slows the container, a stuck one is dropped -------

    def update_flow(self, conn: _Conn) -> None:
        """Stop reading output a client is far behind on, and read again once it caught up.

        The container then blocks writing to a full pipe, as under dockerd, instead of its
        output being lost to the client. The log waits with it.
        """
        if conn.mode == "attach" or (conn.mode == "closing" and self.output_paused):
            behind = max((len(c.wbuf) for c in self.conns.values() if c.mode == "attach"),
                         default=0)
            if not self.output_paused and behind > PAUSE_ABOVE:
                self.set_output_reading(False)
            elif self.output_paused and behind <= RESUME_BELOW:
                self.set_output_reading(True)
        ex = conn.exec
        if ex is not None:
            behind = len(conn.wbuf) if conn.sock.fileno() in self.conns else 0
            if not ex.output_paused and behind > PAUSE_ABOVE:
                self.set_exec_output_reading(ex, False)
            elif ex.output_paused and behind <= RESUME_BELOW:
                self.set_exec_output_reading(ex, True)

    def set_output_reading(self, on: bool) -> None:
        self.output_paused = not on
        for fd, stream in self.outputs.items():
            if on:
                self.sel.register(fd, selectors.EVENT_READ, ("output", stream))
            else:
                self.sel.unregister(fd)
        if on and self.exited_at_mono is not None:
            self.drain_deadline = max(self.drain_deadline, time.monotonic() + DRAIN_TIMEOUT)

    def set_exec_output_reading(self, ex: _Exec, on: bool) -> None:
        ex.output_paused = not on
        for fd, stream in ex.outputs.items():
            if on:
                self.sel.register(fd, selectors.EVENT_READ, ("exec_out", (ex, stream)))
            else:
                self.sel.unregister(fd)
        if on and ex.exited_at_mono is not None:
            ex.drain_deadline = max(ex.drain_deadline, time.monotonic() + DRAIN_TIMEOUT)

    def drop_stalled(self) -> None:
        now = time.monotonic()
        for conn in list(self.conns.values()):
            if len(conn.wbuf) > RESUME_BELOW and now - conn.progress_at > STALL_TIMEOUT:
                print(f"shim {self.id}: dropping a client stuck {len(conn.wbuf)} bytes behind",
                      file=sys.stderr)
                self.drop(conn)

    def respond(self, conn: _Conn, resp: dict[str, Any]) -> None:
        conn.mode = "closing"
        conn.reading = False
        self.send(conn, protocol.encode(resp))

    def on_conn_write(self, conn: _Conn) -> None:
        try:
            n = conn.sock.send(conn.wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(conn)
            return
        del conn.wbuf[:n]
        conn.progress_at = time.monotonic()
        if len(conn.wbuf) <= RESUME_BELOW:
            self.update_flow(conn)
        self.update(conn)

    def on_conn_read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(conn)
            return
        if conn.mode == "attach":
            self.on_attach_input(conn, data)
            return
        if conn.mode == "exec":
            self.on_exec_input(conn, data)
            return
        if not data:
            if conn.mode == "request" and conn.rbuf:
                self.respond(conn, protocol.error_response(
                    InvalidArgument("request not terminated by a newline")))
            else:
                self.drop(conn)
            return
        if conn.mode != "request":
            return  # a waiter said something: ignore
        conn.rbuf += data
        nl = conn.rbuf.find(b"\n")
        if nl < 0:
            if len(conn.rbuf) > protocol.MAX_LINE:
                self.respond(conn, protocol.error_response(InvalidArgument("request too long")))
            return
        line = bytes(conn.rbuf[:nl])
        rest = bytes(conn.rbuf[nl + 1:])
        conn.rbuf.clear()
        try:
            req = protocol.decode(line)
            self.dispatch(conn, req, rest)
        except BerthError as e:
            self.respond(conn, protocol.error_response(e))
        except ValueError as e:
            self.respond(conn, protocol.error_response(InvalidArgument(f"bad request: {e}")))
        except Exception as e:  # noqa: BLE001 - a bug must not kill the container's monitor
            traceback.print_exc()
            self.respond(conn, protocol.error_response(e))

    def on_attach_input(self, conn: _Conn, data: bytes) -> None:
        if not data:
            conn.reading = False
            if conn.want_stdin and conn.stdin_once and not self.tty:
                self.close_stdin()
            self.update(conn)
            return
        if conn.want_stdin and self.stdin_fd >= 0:
            self.stdin_buf += data
            self.flush_stdin()

    # ---- requests -------------------------------------------------------------------

    def dispatch(self, conn: _Conn, req: dict[str, Any], rest: bytes) -> None:
        op = req.get("op")
        if op == "state":
            status = "paused" if self.paused and self.status == "running" else self.status
            self.respond(conn, protocol.ok(
                status=status, init_pid=self.init_pid, shim_pid=os.getpid(),
                exit_code=self.exit_code, signal=self.signal, started_at=self.started_at,
                finished_at=self.finished_at))
        elif op == "start":
            self.op_start()
            self.respond(conn, protocol.ok())
        elif op == "kill":
            sig = int(req.get("signal") or signal.SIGTERM)
            if self.status == "stopped":
                raise Conflict(f"container {self.id} is not running")
            runtime.kill(self.state_dir, sig, all=bool(req.get("all")))
            if self.paused and sig == signal.SIGKILL:
                # Frozen tasks cannot die: thaw them so the kill takes effect.
                runtime.resume(self.state_dir)
                self.paused = False
            self.respond(conn, protocol.ok())
        elif op == "wait":
            if self.finalized:
                self.respond(conn, protocol.ok(**self.exit_info()))
            else:
                conn.mode = "wait"
                self.update(conn)
        elif op == "attach":
            self.op_attach(conn, req, rest)
        elif op == "close_stdin":
            self.close_stdin()
            self.respond(conn, protocol.ok())
        elif op == "resize":
            self.op_resize(req)
            self.respond(conn, protocol.ok())
        elif op == "shutdown":
            self.shutdown_requested = True
            self.respond(conn, protocol.ok())
        elif op == "stats":
            if self.exited_at_mono is not None:
                raise Conflict(f"container {self.id} is not running")
            self.respond(conn, protocol.ok(stats=runtime.stats(self.state_dir)))
        elif op == "pids":
            pids = [] if self.status == "stopped" else runtime.container_pids(self.state_dir)
            self.respond(conn, protocol.ok(pids=pids))
        elif op == "pause":
            self.require_running()
            runtime.pause(self.state_dir)
            self.paused = True
            self.respond(conn, protocol.ok())
        elif op == "resume":
            self.require_running()
            runtime.resume(self.state_dir)
            self.paused = False
            self.respond(conn, protocol.ok())
        elif op == "update":
            resources = req.get("resources")
            if not isinstance(resources, dict):
                raise InvalidArgument("update: resources must be an object")
            self.require_running()
            runtime.update(self.state_dir, resources)
            self.respond(conn, protocol.ok())
        elif op == "exec":
            self.op_exec(conn, req, rest)
        elif op == "exec_wait":
            ex = self.get_exec(req)
            if ex.done:
                self.respond(conn, protocol.ok(exit_code=ex.exit_code))
            else:
                conn.mode = "wait"
                ex.waiters.append(conn)
                self.update(conn)
        elif op == "exec_state":
            ex = self.get_exec(req)
            self.respond(conn, protocol.ok(running=ex.exit_code is None, pid=ex.pid,
                                           exit_code=ex.exit_code))
        elif op == "exec_resize":
            ex = self.get_exec(req)
            if ex.master < 0:
                raise Conflict(f"exec {ex.id} has no tty")
            self.set_size(ex.master, req)
            self.respond(conn, protocol.ok())
        else:
            raise InvalidArgument(f"unknown op {op!r}")

    def op_start(self) -> None:
        if self.status != "created":
            raise Conflict(f"container {self.id} is {self.status}, not created")
        runtime.start(self.state_dir)
        self.status = "running"
        self.started_at = rfc3339_nano()
        self.write_state()
        self.monitor.reap()  # it may already be gone (e.g. `true`)

    def op_resize(self, req: dict[str, Any]) -> None:
        if self.pty_master < 0:
            raise Conflict(f"container {self.id} has no tty")
        self.set_size(self.pty_master, req)

    @staticmethod
    def set_size(fd: int, req: dict[str, Any]) -> None:
        height, width = int(req.get("height") or 0), int(req.get("width") or 0)
        if not (0 < height < 65536 and 0 < width < 65536):
            raise InvalidArgument("resize: height and width must be 1..65535")
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def require_running(self) -> None:
        if self.status != "running":
            raise Conflict(f"container {self.id} is not running")

    # ---- exec -----------------------------------------------------------------------

    def get_exec(self, req: dict[str, Any]) -> _Exec:
        exec_id = str(req.get("exec_id") or "")
        ex = self.execs.get(exec_id) or self.finished_execs.get(exec_id)
        if ex is None:
            raise NotFound(f"no such exec instance: {req.get('exec_id')}")
        return ex

    def op_exec(self, conn: _Conn, req: dict[str, Any], rest: bytes) -> None:
        exec_id = req.get("exec_id")
        process = req.get("process")
        if not isinstance(exec_id, str) or not exec_id:
            raise InvalidArgument("exec: exec_id is required")
        if not isinstance(process, dict):
            raise InvalidArgument("exec: process must be an object")
        if exec_id in self.execs or exec_id in self.finished_execs:
            raise AlreadyExists(f"exec {exec_id} exists already")
        if self.status != "running":
            raise Conflict(f"container {self.id} is not running")
        if self.paused:
            raise Conflict(f"container {self.id} is paused, unpause the container before exec")
        detach = bool(req.get("detach"))
        want_stdin = bool(req.get("stdin")) and not detach
        tty = bool(process.get("terminal"))
        ex = _Exec(exec_id, tty)
        fds: list[int] = []
        masters: list[int] = []
        try:
            if tty:
                ex.pid = runtime_exec.exec_process(self.state_dir, process,
                                                   console=masters.append)
                master = masters[0]
                if detach:
                    os.close(master)
                else:
                    os.set_blocking(master, False)
                    ex.master = master
                    ex.outputs[master] = 1
                    if want_stdin:
                        ex.stdin_fd = os.dup(master)
            else:
                stdio: list[int | None] = [None, None, None]
                if not detach:
                    out_r, out_w = os.pipe2(os.O_CLOEXEC)
                    err_r, err_w = os.pipe2(os.O_CLOEXEC)
                    fds += [out_r, out_w, err_r, err_w]
                    stdio[1], stdio[2] = out_w, err_w
                    if want_stdin:
                        in_r, in_w = os.pipe2(os.O_CLOEXEC)
                        fds += [in_r, in_w]
                        stdio[0] = in_r
                ex.pid = runtime_exec.exec_process(
                    self.state_dir, process, stdio=(stdio[0], stdio[1], stdio[2]))
                if not detach:
                    for fd in (out_w, err_w, *((in_r,) if want_stdin else ())):
                        os.close(fd)
                        fds.remove(fd)
                    ex.outputs = {out_r: 1, err_r: 2}
                    fds.remove(out_r)
                    fds.remove(err_r)
                    if want_stdin:
                        ex.stdin_fd = in_w
                        fds.remove(in_w)
        except BaseException:
            for fd in fds + masters:
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise
        for fd in fds:
            os.close(fd)
        self.execs[exec_id] = ex
        self.exec_pids[ex.pid] = ex
        self.monitor.children[ex.pid] = self
        for fd, stream in ex.outputs.items():
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("exec_out", (ex, stream)))
        if ex.stdin_fd >= 0:
            os.set_blocking(ex.stdin_fd, False)
        self.send(conn, protocol.encode(protocol.ok(pid=ex.pid)))
        self.monitor.reap()
        if detach or conn.sock.fileno() not in self.conns:
            conn.mode = "closing"
            conn.reading = False
            self.update(conn)
            return
        conn.mode = "exec"
        conn.exec = ex
        ex.conn = conn
        if rest:
            self.on_exec_input(conn, rest)
        self.update(conn)

    def on_exec_output(self, fd: int, ex: _Exec, stream: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.close_exec_output(ex, fd)
            return
        conn = ex.conn
        if conn is not None and conn.sock.fileno() in self.conns:
            self.send(conn, data if ex.tty else protocol.frame(stream, data))

    def close_exec_output(self, ex: _Exec, fd: int) -> None:
        if ex.outputs.pop(fd, None) is None:
            return
        if fd in self.sel.get_map():
            self.sel.unregister(fd)
        if fd == ex.master:
            ex.master = -1
        os.close(fd)

    def on_exec_input(self, conn: _Conn, data: bytes) -> None:
        ex = conn.exec
        if ex is None:
            return
        if not data:
            conn.reading = False
            # As dockerd: a terminal's input is not closed when the client's ends (it may
            # have detached); a pipe's is.
            ex.stdin_close_pending = not ex.tty
            self.flush_exec_stdin(ex)
            self.update(conn)
            return
        if ex.stdin_fd >= 0:
            ex.stdin_buf += data
            self.flush_exec_stdin(ex)

    def flush_exec_stdin(self, ex: _Exec) -> None:
        while ex.stdin_buf and ex.stdin_fd >= 0:
            try:
                n = os.write(ex.stdin_fd, ex.stdin_buf)
            except BlockingIOError:
                break
            except OSError:
                ex.stdin_buf.clear()
                self.close_exec_stdin(ex)
                break
            del ex.stdin_buf[:n]
        if ex.stdin_fd >= 0 and not ex.stdin_buf and ex.stdin_close_pending:
            self.close_exec_stdin(ex)
        if ex.stdin_fd >= 0:
            want = bool(ex.stdin_buf)
            registered = ex.stdin_fd in self.sel.get_map()
            if want and not registered:
                self.sel.register(ex.stdin_fd, selectors.EVENT_WRITE, ("exec_in", ex))
            elif not want and registered:
                self.sel.unregister(ex.stdin_fd)
        if ex.conn is not None and ex.conn.sock.fileno() in self.conns:
            self.update(ex.conn)

    def close_exec_stdin(self, ex: _Exec) -> None:
        if ex.stdin_fd < 0:
            return
        if ex.stdin_fd in self.sel.get_map():
            self.sel.unregister(ex.stdin_fd)
        if ex.tty and ex.master >= 0:
            # A pty has no half-close: send end-of-file as the terminal's EOF character.
            with contextlib.suppress(OSError):
                os.write(ex.stdin_fd, b"\x04")
        os.close(ex.stdin_fd)
        ex.stdin_fd = -1

    def finish_exec(self, ex: _Exec) -> None:
        """The process exited and its output is drained: close its stream, tell waiters."""
        for fd in list(ex.outputs):
            self.close_exec_output(ex, fd)
        ex.stdin_buf.clear()
        self.close_exec_stdin(ex)
        ex.done = True
        conn, ex.conn = ex.conn, None
        if conn is not None and conn.sock.fileno() in self.conns:
            conn.mode = "closing"
            conn.reading = False
            conn.exec = None
            self.update(conn)
        for waiter in ex.waiters:
            if waiter.sock.fileno() in self.conns:
                self.respond(waiter, protocol.ok(exit_code=ex.exit_code))
        ex.waiters.clear()
        self.execs.pop(ex.id, None)
        self.finished_execs[ex.id] = ex
        while len(self.finished_execs) > FINISHED_EXECS_KEPT:
            del self.finished_execs[next(iter(self.finished_execs))]

    def op_attach(self, conn: _Conn, req: dict[str, Any], rest: bytes) -> None:
        streams = set()
        if req.get("stdout", True):
            streams.add(1)
        if req.get("stderr", True):
            streams.add(2)
        # Docker ignores stdin for a container created without it, rather than failing.
        want_stdin = bool(req.get("stdin")) and self.use_stdin
        conn.streams = frozenset(streams)
        conn.want_stdin = want_stdin
        conn.stdin_once = bool(req.get("stdin_once"))
        self.send(conn, protocol.encode(protocol.ok()))
        if conn.sock.fileno() not in self.conns:
            return
        if self.finalized:
            conn.mode = "closing"
            conn.reading = False
            if want_stdin and conn.stdin_once and not self.tty:
                self.close_stdin()
            self.update(conn)
            return
        conn.mode = "attach"
        if rest:
            self.on_attach_input(conn, rest)
        self.update(conn)

    # ---- exit -----------------------------------------------------------------------

    def cleanup(self, error: BaseException | None = None) -> None:
        """Let go of everything this shim holds in the monitor process and remove the
        container: after shutdown, or when its creation or the shim itself failed (then
        a spawn still waiting gets ``error``). Each step must happen even when the one before
        fails: the container is not left behind."""
        log, self.log = self.log, None  # a failing log must not stop the rest
        if self.creator is not None:
            self.sel.unregister(self.creator)
            self.creator.close()
            self.creator = None
        for fd in self.creating_fds:
            os.close(fd)
        self.creating_fds = []
        for c in list(self.conns.values()):
            c.wbuf.clear()
            self.drop(c)
        for ex in list(self.execs.values()):
            for fd in list(ex.outputs):
                self.close_exec_output(ex, fd)
            self.close_exec_stdin(ex)
        for fd in list(self.outputs):
            self.close_output(fd)
        self.close_stdin_now()
        if self.listener is not None:
            self.sel.unregister(self.listener)
            self.listener.close()
            self.listener = None
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.state_dir, protocol.SHIM_SOCKET))
        if log is not None:
            try:
                log.close()
            except OSError as e:
                print(f"shim {self.id}: closing the log: {e}", file=sys.stderr)
        with contextlib.suppress(BerthError, OSError):
            runtime.delete(self.state_dir, force=True)
        # Last: the client may look at the state directory as soon as it hears.
        conn, self.spawn_conn = self.spawn_conn, None
        if conn is not None:
            _answer(conn, protocol.error_response(
                error or RuntimeFailure("the container's monitor failed")))


_CREATED = "created"


def _creator_main(shim: Shim, stdio: Stdio | None, sock: socket.socket) -> NoReturn:
    """The creator child: create, report init's pid (and the pty master), exit.

    It first closes every descriptor of the monitor's other containers: init waits for
    ``start`` holding what it inherited, and a client socket or stdin pipe of another
    container held there would not see its end of file until then.
    """
    code = 0
    try:
        # The monitor's wake-up pipe goes too: a signal must not write into whatever file
        # gets its number next.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _close_all_but({0, 1, 2, sock.fileno(), *(fd for fd in stdio or () if fd is not None)})
        got: list[int] = []
        init_pid = runtime.create(
            shim.id, shim.bundle, shim.state_dir, stdio=stdio or (None, None, None),
            rootfs_mounts=shim.rootfs_mounts, console=got.append if stdio is None else None)
        if got:
            sync.send_fd(sock, _CREATED, got[0], init_pid=init_pid)
        else:
            sync.send(sock, _CREATED, init_pid=init_pid)
    except BaseException as e:  # noqa: BLE001 - everything must reach the shim
        code = 1
        if not isinstance(e, BerthError):
            traceback.print_exc()
        with contextlib.suppress(OSError):
            resp = protocol.error_response(e)
            sock.send(json.dumps({"type": "error", **resp}).encode())
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


class Monitor:
    """The monitor process: one selector loop for the shims of up to the launcher's
    ``--containers-per-monitor`` containers.

    It is the child subreaper of their inits and execs (``children`` says whose each pid
    is), takes spawns from the launcher over ``control`` (a SEQPACKET socketpair: the
    request, with the client's connection as SCM_RIGHTS; it answers ``took`` with how
    many containers it now serves, and ``count`` when one leaves) and exits once it serves
    none. A shim that fails is torn down alone; its neighbours go on.
    """

    def __init__(self, control: socket.socket) -> None:
        self.sel = selectors.DefaultSelector()
        self.control: socket.socket | None = control
        self.shims: dict[str, Shim] = {}  # by state directory
        self.children: dict[int, Shim] = {}
        self.wake_r = -1

    def setup(self) -> None:
        for sig in signal.valid_signals():
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                continue
            with contextlib.suppress(OSError, ValueError):
                if signal.getsignal(sig) != signal.SIG_DFL:
                    signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake_r = r
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda _sig, _frame: None)
        self.sel.register(r, selectors.EVENT_READ, (None, ("wake", None)))
        assert self.control is not None
        self.control.setblocking(False)
        self.sel.register(self.control, selectors.EVENT_READ, (None, ("control", None)))

    def serve(self) -> None:
        self.reap()
        while self.shims or self.control is not None:
            now = time.monotonic()
            timeout = None
            for shim in self.shims.values():
                left = shim.timeout(now)
                if left is not None:
                    timeout = left if timeout is None else min(timeout, left)
            for key, events in self.sel.select(timeout):
                if self.sel.get_map().get(key.fd) is not key:
                    continue  # closed by a handler before it (its number may be reused)
                owner, (kind, arg) = key.data
                if owner is None:
                    if kind == "wake":
                        self.on_wake()
                    else:
                        try:
                            self.on_control()
                        except Exception:  # noqa: BLE001 - a bad spawn must not end the rest
                            traceback.print_exc()
                elif owner.state_dir in self.shims:
                    self.guarded(owner, owner.on_event, key.fd, events, kind, arg)
            for shim in list(self.shims.values()):
                if self.guarded(shim, shim.tick):
                    self.remove(shim)
                    shim.cleanup()
            if not self.shims and self.control is not None and not self.pending_control():
                return

    def guarded(self, shim: Shim, fn: Any, *args: Any) -> Any:
        """Run one shim's handler; a failure tears that shim down, not the monitor."""
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - one container's failure stays its own
            if not isinstance(e, BerthError):
                traceback.print_exc()
            print(f"shim {shim.id}: failed: {e}", file=sys.stderr)
            self.remove(shim)
            try:
                shim.cleanup(e)
            except Exception:  # noqa: BLE001 - as above
                traceback.print_exc()
            return None

    def remove(self, shim: Shim) -> None:
        if self.shims.pop(shim.state_dir, None) is None:
            return
        for pid in [p for p, owner in self.children.items() if owner is shim]:
            del self.children[pid]
        if self.control is not None:
            with contextlib.suppress(OSError):
                sync.send(self.control, "count", count=len(self.shims))

    def pending_control(self) -> bool:
        """Whether the launcher sent something not yet read (a spawn racing our exit)."""
        assert self.control is not None
        try:
            return bool(self.control.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except BlockingIOError:
            return False
        except OSError:
            return False

    def on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 4096):
                pass
        self.reap()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            shim = self.children.pop(pid, None)
            if shim is not None and shim.state_dir in self.shims:
                self.guarded(shim, shim.on_child_exit, pid, status)

    def on_control(self) -> None:
        assert self.control is not None
        try:
            raw, fds = sync.recv_with_fds(self.control, CONTROL_MAX)
        except BlockingIOError:
            return
        except OSError:
            raw, fds = b"", []
        if not raw:
            # The launcher is gone: serve what we have, take nothing new.
            for fd in fds:
                os.close(fd)
            self.sel.unregister(self.control)
            self.control.close()
            self.control = None
            return
        conn = socket.socket(fileno=fds[0]) if fds else None
        for fd in fds[1:]:
            os.close(fd)
        try:
            msg = json.loads(raw)
            request = msg["request"]
        except (ValueError, KeyError, TypeError) as e:
            print(f"monitor: bad control message: {e}", file=sys.stderr)
            if conn is not None:
                conn.close()
            return
        with contextlib.suppress(OSError):
            sync.send(self.control, "took", seq=msg.get("seq"), count=len(self.shims) + 1)
        if conn is not None:
            self.spawn(request, conn)

    def spawn(self, request: dict[str, Any], conn: socket.socket) -> None:
        shim = None
        try:
            shim = Shim(request, self)
            os.makedirs(shim.state_dir, 0o711, exist_ok=True)
            _claim_state_dir(shim.state_dir)
            self.shims[shim.state_dir] = shim
            shim.listen()
            shim.create(conn)
        except BaseException as e:  # noqa: BLE001 - the client hears why
            if not isinstance(e, BerthError):
                traceback.print_exc()
            if shim is not None and self.shims.get(shim.state_dir) is shim:
                self.remove(shim)
                shim.cleanup(e)
            else:
                _answer(conn, protocol.error_response(e))


CONTROL_MAX = 1 << 20  # a spawn request with its rootfs mounts fits easily


def serve(control: socket.socket, log_path: str) -> NoReturn:
    """A monitor's life, in the process the launcher forked: never returns."""
    code = 0
    try:
        os.setsid()
        linux.set_child_subreaper()
        _redirect_stdio(log_path)
        monitor = Monitor(control)
        monitor.setup()
        monitor.serve()
    except BaseException:  # noqa: BLE001 - report, then exit
        code = 1
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _answer(conn: socket.socket, resp: dict[str, Any]) -> None:
    """Answer a spawn on the client's connection, and let it go."""
    with contextlib.suppress(OSError):
        conn.setblocking(True)
        conn.settimeout(SPAWN_ANSWER_TIMEOUT)
        conn.sendall(protocol.encode(resp))
    conn.close()


SPAWN_ANSWER_TIMEOUT = 5.0


def _close_all_but(keep: set[int]) -> None:
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _write_json(path: str, obj: dict[str, Any]) -> None:
    """Replace ``path`` by rename. The state dir is on a tmpfs and only a crash of this
    process must leave it whole, so no fsync; plain fds, so no tempfile or io objects
    (each costs the long-lived shim pages of its own)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        data = memoryview(json.dumps(obj, separators=(",", ":")).encode())
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _claim_state_dir(state_dir: str) -> None:
    """Refuse a state directory in use; clear what a previous, finished run left."""
    if os.path.exists(os.path.join(state_dir, "state.json")):
        raise AlreadyExists(f"a container exists already in {state_dir}")
    sock_path = os.path.join(state_dir, protocol.SHIM_SOCKET)
    if os.path.exists(sock_path):
        with contextlib.suppress(OSError):
            protocol.connect_unix(sock_path, timeout=1).close()
            raise AlreadyExists(f"a shim is serving {state_dir} already")
    for name in (protocol.EXIT_FILE, protocol.SHIM_STATE, protocol.SHIM_SOCKET):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(state_dir, name))


def _redirect_stdio(log_path: str) -> None:
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    os.dup2(null, 0)
    os.close(null)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
