"""Run another process in a running container (``runc exec``).

The caller (the shim, ``berth-runtime exec``) forks E1, which joins the container's cgroups
(while the host's /sys/fs/cgroup is still in view), then its namespaces in runc's order:
every one but the user namespace first (we may be privileged only outside it), then the
user namespace, then any that needed it. A PID namespace only applies to children, so E1
forks E2, reports E2's pid and exits. E2 is in the container: it takes the terminal (a pty
from the container's devpts, as init does), the user, capabilities, no_new_privs and
seccomp, resolves the command, says ready and execs. The sync socket is close-on-exec, so
end of stream after ``ready`` means the exec happened; a failed exec sends an error first.

E1 also builds the process's plan from the bundle (``exec_config``), so a long-lived caller
never parses it. Messages (``sync``): E1 → caller ``pid`` or ``error`` (with ``kind`` for a
bad plan: ``InvalidArgument``, ``NotFound``); E2 → caller ``console`` (with the master),
``ready``, ``error``.

E2 is reparented to the nearest child subreaper when E1 exits: the caller must be one
(``linux.set_child_subreaper``) to reap it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Callable
from typing import Any

from berth import linux
from berth.errors import Conflict, InvalidArgument, NotFound, RuntimeFailure
from berth.runtime import cgroups, sync
from berth.runtime import config as _config
from berth.runtime import container as _container
from berth.runtime import init as _init

EXEC_TIMEOUT = 30.0
# Namespace files in /proc/PID/ns, in the order they are joined (user handled apart).
_NS_ORDER: tuple[tuple[str, int], ...] = (
    ("ipc", linux.CLONE_NEWIPC),
    ("uts", linux.CLONE_NEWUTS),
    ("net", linux.CLONE_NEWNET),
    ("pid", linux.CLONE_NEWPID),
    ("cgroup", linux.CLONE_NEWCGROUP),
    ("mnt", linux.CLONE_NEWNS),
)

Stdio = tuple[int | None, int | None, int | None]
# Errors in the process's plan, which E1 builds: they reach the caller as themselves.
_PLAN_ERRORS: dict[str, type[InvalidArgument] | type[NotFound]] = {
    "InvalidArgument": InvalidArgument, "NotFound": NotFound}


def exec_config(state_dir: str, process: dict[str, Any], st: dict[str, Any] | None = None
                ) -> tuple[_config.InitConfig, dict[str, Any]]:
    """The process's plan, with what it leaves out (capabilities, no_new_privs, seccomp,
    rlimits) taken from the container's own process, as Docker's exec does."""
    if st is None:
        st = _container._load_state(state_dir)
    if not isinstance(process, dict):
        raise InvalidArgument("exec: process must be an object")
    spec = _container.load_spec(st["bundle"])
    merged = dict(spec.get("process") or {})
    merged.pop("terminal", None)
    merged.pop("consoleSize", None)
    merged.pop("user", None)
    merged["env"] = []
    merged["cwd"] = "/"
    merged.update(process)
    spec = {**spec, "process": merged, "annotations": {}}
    spec.pop("hooks", None)
    cfg = _config.from_spec(spec, st["bundle"], st["id"])
    name = (merged.get("user") or {}).get("username")
    cfg.user_name = str(name) if name else None
    return cfg, st


def _ns_targets(pid: int) -> list[tuple[str, int, str]]:
    """(name, flag, path) of each namespace of ``pid`` that differs from ours."""
    out = []
    for name, flag in (*_NS_ORDER, ("user", linux.CLONE_NEWUSER)):
        path = f"/proc/{pid}/ns/{name}"
        try:
            if os.readlink(path) == os.readlink(f"/proc/self/ns/{name}"):
                continue
        except OSError:
            continue
        out.append((name, flag, path))
    return out


def _join(targets: list[tuple[str, int, str]]) -> None:
    fds = [(name, flag, os.open(path, os.O_RDONLY | os.O_CLOEXEC))
           for name, flag, path in targets]
    try:
        later = []
        for name, flag, fd in fds:
            if name == "user":
                continue
            try:
                linux.setns(fd, flag)
            except PermissionError:
                later.append((name, flag, fd))
        for name, flag, fd in fds:
            if name == "user":
                linux.setns(fd, flag)
                break
        for _name, flag, fd in later:
            linux.setns(fd, flag)
    finally:
        for _, _, fd in fds:
            os.close(fd)


def _e2(cfg: _config.InitConfig, sock: socket.socket) -> None:
    step = "exec: setting up"
    try:
        if cfg.terminal:
            step = "exec: setting up the terminal"
            _init.setup_console(cfg.console_size, sock)
        if cfg.user_name:
            step = f"exec: resolving user {cfg.user_name}"
            _init._resolve_user(cfg)
        if cfg.oom_score_adj is not None:
            with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(cfg.oom_score_adj))
        if cfg.uid != 0:
            _init.fix_stdio_owner(cfg.uid, cfg.gid)
        step = "exec: loading seccomp"
        _init.load_seccomp(cfg, early=True)
        step = f"exec: setting user {cfg.uid}:{cfg.gid} and capabilities"
        _init._set_user_and_caps(cfg)
        step = f"exec: changing to cwd {cfg.cwd}"
        os.chdir(cfg.cwd)
        step = "exec: resolving the command"
        path = _init._find_executable(cfg)
        if cfg.no_new_privileges:
            step = "exec: setting no_new_privs"
            linux.set_no_new_privs()
        step = "exec: loading seccomp"
        _init.load_seccomp(cfg)
        env = dict(e.split("=", 1) for e in cfg.env)
        sync.send(sock, sync.MSG_READY)
    except BaseException as e:  # noqa: BLE001 - everything must become a message
        _init._fail(sock, step, e)
        os._exit(1)
    try:
        os.execve(path, cfg.args, env)
    except OSError as e:
        code = 127 if e.errno == errno.ENOENT else 126
        with contextlib.suppress(OSError):
            sync.send(sock, sync.MSG_ERROR, stage="exec", exit_code=code,
                      message=f'exec: "{cfg.args[0]}": {e.strerror}')
        os._exit(code)
    os._exit(125)


def _e1(state_dir: str, process: dict[str, Any], st: dict[str, Any], sock: socket.socket,
        stdio: Stdio) -> None:
    step = "exec: reading the container's configuration"
    code = 1
    try:
        # The plan is built here, not in the caller: parsing the bundle and the spec writes
        # heap that would stay private to a long-lived caller (the shim) for good.
        try:
            cfg, _ = exec_config(state_dir, process, st)
        except (InvalidArgument, NotFound) as e:
            sync.send(sock, sync.MSG_ERROR, stage=step, message=e.message, exit_code=125,
                      kind=type(e).__name__)
            os._exit(1)
        step = "exec: setting up"
        _init._reset_process_state()
        step = "exec: taking stdio"
        _init._take_stdio(stdio)
        step = "exec: joining cgroups"
        cg = (st.get("cgroup") or {}).get("dirs") or {}
        for d in sorted(set(cg.values())):
            cgroups.join_self(d)
        step = "exec: joining namespaces"
        _join(_ns_targets(int(st["pid"])))
        os.umask(cfg.umask)
        step = "exec: forking"
        pid = os.fork()
        if pid == 0:
            _e2(cfg, sock)
        sync.send(sock, sync.MSG_PID, pid=pid)
        code = 0
    except BaseException as e:  # noqa: BLE001 - everything must become a message
        _init._fail(sock, step, e)
    os._exit(code)


def exec_process(state_dir: str, process: dict[str, Any], *, stdio: Stdio = (None, None, None),
                 console: Callable[[int], None] | None = None,
                 pid_file: str | None = None) -> int:
    """Start ``process`` (an OCI process object) in the running container; returns its
    host pid once it has exec'd. Raises ``Conflict`` if the container is not running,
    ``RuntimeFailure`` (127/126) if the command is missing or not executable."""
    if not isinstance(process, dict):
        raise InvalidArgument("exec: process must be an object")
    st = _container._load_state(state_dir)
    status = _container._status(st, state_dir)
    if status not in ("running", "created"):
        raise Conflict(f"cannot exec in a container that is {status}")
    if process.get("terminal") and console is None:
        raise InvalidArgument("process.terminal is set: a console socket is required")
    parent, child = sync.socketpair()
    e1 = pid = 0
    try:
        e1 = os.fork()
        if e1 == 0:
            parent.close()
            _e1(state_dir, process, st, child, stdio)
        child.close()
        parent.settimeout(EXEC_TIMEOUT)
        ready = False
        while True:
            try:
                msg = sync.recv(parent)
            except TimeoutError:
                raise RuntimeFailure("exec: the process did not start in time") from None
            if msg is None:
                if ready:
                    break  # close-on-exec: the exec happened
                raise RuntimeFailure("exec: the process exited before it was ready")
            kind = msg["type"]
            if kind == sync.MSG_PID:
                pid = int(msg["pid"])
                _container._reap(e1)
                e1 = 0
            elif kind == sync.MSG_CONSOLE and "fd" in msg:
                if console is None:
                    os.close(msg["fd"])
                else:
                    console(msg["fd"])
            elif kind == sync.MSG_READY:
                ready = True
            elif kind == sync.MSG_ERROR:
                if msg.get("kind") in _PLAN_ERRORS:
                    raise _PLAN_ERRORS[msg["kind"]](str(msg.get("message")))
                raise RuntimeFailure(str(msg.get("message")), int(msg.get("exit_code") or 125))
        if pid_file:
            _container._write_file(pid_file, str(pid).encode())
        return pid
    except BaseException:
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        raise
    finally:
        if e1:
            _container._reap(e1)
        parent.close()


def load_process(path: str) -> dict[str, Any]:
    """A ``--process`` file (an OCI process object)."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"--process {path}: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"--process {path}: not a JSON object")
    return doc
