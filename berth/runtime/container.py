"""The runtime's operations: create, start, state, kill, delete — what runc's commands do.

A container's runtime state is a directory (``state_dir``):

* ``state.json`` — id, bundle, init pid and its start time (so a recycled pid is never
  mistaken for the container), creation time, annotations;
* ``exec.fifo`` — present from ``create`` until ``start``: init blocks opening it for
  writing, ``start`` opens it for reading (see ``sync`` for the bytes exchanged).

* ``cgroup`` in ``state.json`` — where the container's cgroups are (``cgroups.Cgroup``), so
  ``delete``, ``pause``, ``stats`` and ``update`` work from any process; ``hooks`` — the
  poststart and poststop hooks, run by ``start`` and ``delete``.

Status is derived, never stored: ``stopped`` if the init process is gone (or a zombie),
``created`` while the fifo exists, ``paused`` while the freezer holds it, else ``running``.

Reaping: usually init is cloned by the creator and is its child. When init takes two stages
(see ``init``), its parent exits as soon as init is forked, so init is reparented to the
nearest *child subreaper* above the creator, or to PID 1. A creator that wants init's exit
status in every case (the shim, ``berth-runtime run``) calls
``berth.linux.set_child_subreaper()`` first.
"""

from __future__ import annotations

import _signal as signal  # signal.py builds enums: enum costs milliseconds to import
import os
import select
import time

from berth import linux
from berth.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    RuntimeFailure,
    Unavailable,
)
from berth.runtime import cgroups as _cgroups
from berth.runtime import config as _config
from berth.runtime import console as _console
from berth.runtime import hooks as _hooks
from berth.runtime import init as _init
from berth.runtime import sync
from berth.util import suppress
from berth.util.jsonlite import dumps as _dumps
from berth.util.jsonlite import loads as _loads

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from typing import Any

OCI_VERSION = "1.1.0"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
CREATE_TIMEOUT = 60.0
START_TIMEOUT = 10.0

Stdio = tuple[int | None, int | None, int | None]


# berth.util's file helpers import tempfile, datetime and typing: together more than the
# rest of ``berth-runtime run``'s imports. The runtime's state lives on a tmpfs and only
# has to survive a crash of the process writing it, so these small versions do.
def _write_file(path: str, data: bytes) -> None:
    """Replace ``path`` atomically (a temporary file renamed over it)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _read_json(path: str) -> Any:
    with open(path, "rb") as f:
        return _loads(f.read())


def _now_rfc3339_nano() -> str:
    """``2024-01-02T03:04:05.123456789Z``, as Docker and runc write times."""
    secs, frac = divmod(time.time_ns(), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def _proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def load_spec(bundle: str) -> dict[str, Any]:
    path = os.path.join(bundle, "config.json")
    try:
        spec = _read_json(path)
    except FileNotFoundError:
        raise NotFound(f"no config.json in bundle {bundle}") from None
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"{path}: {e}") from None
    return spec


def create(container_id: str, bundle_dir: str, state_dir: str, *,
           stdio: Stdio = (None, None, None), rootfs_mounts: list[dict[str, Any]] | None = None,
           pid_file: str | None = None,
           console: Callable[[int], None] | None = None) -> int:
    """Create the container: init set up and blocked before exec. Returns init's pid.

    ``stdio`` fds become the container's 0, 1, 2 (None: /dev/null); the caller keeps its
    copies. ``rootfs_mounts`` (OCI mounts, e.g. an overlay from a snapshotter) are mounted on
    ``root.path`` inside the container's mount namespace, so they vanish with it. Raises
    ``RuntimeFailure`` (exit_code 127/126 for a missing/unusable command) after killing and
    cleaning up what was started.

    With ``process.terminal`` the container's stdio is a pty init makes in its own devpts
    (``stdio`` is then unused); ``console`` is called with the master, which it owns from
    then on (``console_socket_sender`` makes one for runc's ``--console-socket``).
    """
    bundle = os.path.abspath(bundle_dir)
    cfg = _config.from_spec(load_spec(bundle), bundle, container_id)
    rmounts = [_config.parse_mount(m, bundle, where=f"rootfs_mounts[{i}]")
               for i, m in enumerate(rootfs_mounts or ())]
    if not cfg.creates_namespace("mount"):
        raise InvalidArgument("linux.namespaces: a new mount namespace is required")
    if cfg.terminal and console is None:
        raise InvalidArgument("process.terminal is set: a console socket is required")

    made_dir = not os.path.isdir(state_dir)
    os.makedirs(state_dir, 0o711, exist_ok=True)
    state_path = os.path.join(state_dir, STATE_FILE)
    fifo_path = os.path.join(state_dir, EXEC_FIFO)
    if os.path.exists(state_path):
        raise AlreadyExists(f"container {container_id} exists already in {state_dir}")
    made: list[str] = []
    parent_sock: socket.socket | None = None
    fifo_fd = -1
    c1 = init_pid = 0
    cg: _cgroups.Cgroup | None = None
    try:
        single_stage = _init.single_stage(cfg)
        if cfg.cgroups_path:
            cg = _cgroups.Cgroup.for_path(cfg.cgroups_path)
            cg.create()
            cfg.cgroup_procs = cg.procs_files()
            # Init moves itself (``cgroups.join_self``: the one move that skips the kernel's
            # grace-period wait) into cgroups whose limits and device rules are written
            # already, so nothing it does meets a half-written rule set. Under a new user
            # namespace it may not write the host's cgroup files: we write the limits while
            # it starts building its rootfs, then move it (it only execs after our "ready"
            # has been answered by ``start``).
            cfg.creator_joins_cgroups = single_stage and cfg.creates_namespace("user")
            if not cfg.creator_joins_cgroups:
                _apply_limits(cg, cfg.resources)
        if any(m.type in ("cgroup", "cgroup2") for m in cfg.mounts):
            _cgroups.mounted_hierarchies()  # read here, once, rather than by every init
        os.mkfifo(fifo_path, 0o622)
        made.append(fifo_path)
        os.chmod(fifo_path, 0o622)
        fifo_fd = os.open(fifo_path, os.O_PATH | os.O_CLOEXEC)
        parent_sock, child_sock = sync.socketpair()
        if single_stage:
            init_pid = linux.clone(_init.clone_flags(cfg))
            if init_pid == 0:
                parent_sock.close()
                _init.cloned_main(cfg, rmounts, child_sock, fifo_fd, stdio)
            if cfg.creates_namespace("user"):
                _map_user_namespace(cfg, init_pid)
                sync.send(parent_sock, sync.MSG_CONTINUE)
            if cfg.creator_joins_cgroups and cg is not None:
                _apply_limits(cg, cfg.resources)
                try:
                    cg.join(init_pid)
                except OSError as e:
                    raise RuntimeFailure(f"cgroups: {e}") from None
        else:
            c1 = os.fork()
            if c1 == 0:
                parent_sock.close()
                _init.stage1(cfg, rmounts, child_sock, fifo_fd, stdio)
        child_sock.close()
        os.close(fifo_fd)
        fifo_fd = -1
        parent_sock.settimeout(CREATE_TIMEOUT)
        while True:
            try:
                msg = sync.recv(parent_sock)
            except TimeoutError:
                raise RuntimeFailure("container init did not report ready in time") from None
            if msg is None:
                raise RuntimeFailure("container init exited before it was ready")
            if msg["type"] == sync.MSG_PID:
                init_pid = int(msg["pid"])
            elif msg["type"] == sync.MSG_CONSOLE:
                fd = msg.get("fd")
                if fd is None:
                    raise RuntimeFailure("container init sent a console without its fd")
                if console is None:
                    os.close(fd)
                else:
                    console(fd)
            elif msg["type"] == sync.MSG_HOOKS:
                hook_state = {"ociVersion": OCI_VERSION, "id": container_id,
                              "status": "creating", "pid": init_pid, "bundle": bundle,
                              "annotations": cfg.annotations}
                for kind in ("prestart", "createRuntime"):
                    if cfg.hooks.get(kind):
                        _hooks.run(cfg.hooks[kind], hook_state, kind)
                sync.send(parent_sock, sync.MSG_CONTINUE,
                          state={**hook_state, "status": "created"})
            elif msg["type"] == sync.MSG_READY:
                break
            elif msg["type"] == sync.MSG_ERROR:
                raise RuntimeFailure(f"container init: {msg.get('message')}",
                                     int(msg.get("exit_code") or 125))
        if c1:
            _reap(c1)
            c1 = 0
        start_time = _proc_start_time(init_pid)
        if start_time is None:
            raise RuntimeFailure("container init exited right after it was ready")
        state = {
            "ociVersion": OCI_VERSION,
            "id": container_id,
            "pid": init_pid,
            "pid_start": start_time,
            "bundle": bundle,
            "rootfs": cfg.rootfs,
            "created": _now_rfc3339_nano(),
            "annotations": cfg.annotations,
            "owner": "",
            "cgroup": cg.to_json() if cg else None,
            "hooks": {k: v for k, v in cfg.hooks.items() if k in ("poststart", "poststop")},
        }
        _write_file(state_path, _dumps(state).encode())
        made.append(state_path)
        if pid_file:
            _write_file(pid_file, str(init_pid).encode())
        return init_pid
    except BaseException:
        if init_pid:
            with suppress(OSError):
                os.kill(init_pid, signal.SIGKILL)
        if c1:
            _reap(c1)
        if init_pid:
            # Ours to reap if we cloned it, or as a subreaper once stage 1 is gone.
            with suppress(ChildProcessError):
                os.waitpid(init_pid, 0)
        if cg is not None:
            _kill_cgroup(cg)
            with suppress(OSError):
                cg.destroy()
        for path in made:
            with suppress(FileNotFoundError):
                os.unlink(path)
        if made_dir:
            with suppress(OSError):
                os.rmdir(state_dir)
        raise
    finally:
        if parent_sock is not None:
            parent_sock.close()
        if fifo_fd >= 0:
            os.close(fifo_fd)


def _apply_limits(cg: _cgroups.Cgroup, resources: dict[str, Any] | None) -> None:
    """Write ``linux.resources`` into a cgroup no task of the container is in yet."""
    try:
        cg.apply(resources)
    except OSError as e:
        raise RuntimeFailure(f"cgroups: {e}") from None


def _map_user_namespace(cfg: _config.InitConfig, pid: int) -> None:
    """Write the id maps of init's new user namespace (from there it may not write the
    host's cgroup files either: the creator moves it into its cgroups)."""
    for name, maps in (("uid_map", cfg.uid_mappings), ("gid_map", cfg.gid_mappings)):
        text = "".join(f"{c} {h} {n}\n" for c, h, n in maps)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        except OSError as e:
            raise RuntimeFailure(f"writing {name} ({text.strip()!r}): {e.strerror}") from None


def console_socket_sender(path: str) -> Callable[[int], None]:
    """A ``console`` for ``create`` that passes the master on to ``path`` and closes it."""

    def send(master: int) -> None:
        try:
            _console.send_to_socket(path, master)
        except OSError as e:
            raise RuntimeFailure(f"console socket {path}: {e.strerror or e}") from None
        finally:
            os.close(master)

    return send


def _reap(pid: int) -> None:
    with suppress(ChildProcessError):
        while True:
            try:
                os.waitpid(pid, 0)
                return
            except InterruptedError:
                continue


def _load_state(state_dir: str) -> dict[str, Any]:
    try:
        return _read_json(os.path.join(state_dir, STATE_FILE))
    except FileNotFoundError:
        raise NotFound(f"container does not exist: no state in {state_dir}") from None


def _cgroup(st: dict[str, Any]) -> _cgroups.Cgroup | None:
    return _cgroups.Cgroup.from_json(st.get("cgroup"))


def _kill_cgroup(cg: _cgroups.Cgroup) -> None:
    """SIGKILL every process in the cgroup, thawing it so they can die."""
    for pid in cg.pids():
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if cg.is_frozen():
        with suppress(OSError, Unavailable):
            cg.thaw()


def _status(st: dict[str, Any], state_dir: str) -> str:
    if _proc_start_time(st["pid"]) != st.get("pid_start"):
        return "stopped"
    if os.path.exists(os.path.join(state_dir, EXEC_FIFO)):
        return "created"
    cg = _cgroup(st)
    if cg is not None and cg.is_frozen():
        return "paused"
    return "running"


def state(state_dir: str) -> dict[str, Any]:
    """The OCI state of the container (``status``: created, running, paused (as runc
    says) or stopped)."""
    st = _load_state(state_dir)
    status = _status(st, state_dir)
    return {
        "ociVersion": st.get("ociVersion", OCI_VERSION),
        "id": st["id"],
        "status": status,
        "pid": 0 if status == "stopped" else st["pid"],
        "bundle": st["bundle"],
        "rootfs": st.get("rootfs", ""),
        "created": st.get("created", ""),
        "owner": st.get("owner", ""),
        "annotations": st.get("annotations") or {},
    }


def start(state_dir: str, timeout: float = START_TIMEOUT) -> None:
    """Release a created container's init; returns once its ``execve`` succeeded.

    Raises ``Conflict`` if it is not in the created state, ``RuntimeFailure`` (with 126/127)
    if the exec itself failed.
    """
    st = _load_state(state_dir)
    status = _status(st, state_dir)
    if status != "created":
        raise Conflict(f"cannot start a container that is {status}")
    fifo_path = os.path.join(state_dir, EXEC_FIFO)
    try:
        fd = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Conflict("cannot start a container that is running") from None
    data = b""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        deadline = time.monotonic() + timeout
        while True:
            if poller.poll(100):
                chunk = os.read(fd, 65536)
                if chunk:
                    data += chunk
                    continue
                if data:
                    break  # end of file after the release byte: exec happened
            elif not data and _proc_start_time(st["pid"]) != st.get("pid_start"):
                raise Conflict("cannot start a container that is stopped")
            if time.monotonic() > deadline:
                raise Unavailable("container init did not take the start signal in time")
    finally:
        os.close(fd)
    with suppress(FileNotFoundError):
        os.unlink(fifo_path)
    if not data.startswith(sync.EXEC_RELEASE):
        raise RuntimeFailure(f"unexpected data from container init: {data[:100]!r}")
    rest = data[len(sync.EXEC_RELEASE):]
    if rest:
        try:
            err = _loads(rest)
            raise RuntimeFailure(err["message"], int(err.get("exit_code", 126)))
        except (ValueError, KeyError, TypeError):
            raise RuntimeFailure(f"exec failed: {rest[:200]!r}") from None
    poststart = (st.get("hooks") or {}).get("poststart")
    if poststart:
        try:
            _hooks.run(poststart, {**state(state_dir), "status": "running"}, "poststart")
        except RuntimeFailure:
            kill(state_dir, signal.SIGKILL, all=True)
            raise


def _same_pid_ns(pid: int, ns: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == ns
    except OSError:
        return False


def container_pids(state_dir: str) -> list[int]:
    """Every process of the container (all members of its PID namespace), init first.

    Without a PID namespace of its own that is just init, until cgroups give a full list.
    """
    st = _load_state(state_dir)
    pid = st["pid"]
    cg = _cgroup(st)
    if cg is not None:
        found = [p for p in cg.pids() if p != pid]
        alive = _proc_start_time(pid) == st.get("pid_start")
        return [pid, *found] if alive else found
    if _proc_start_time(pid) != st.get("pid_start"):
        return []
    try:
        ns = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    if ns == os.readlink("/proc/self/ns/pid"):
        return [pid]
    others = [int(n) for n in os.listdir("/proc")
              if n.isdigit() and int(n) != pid and _same_pid_ns(int(n), ns)]
    return [pid, *others]


def kill(state_dir: str, sig: int = signal.SIGTERM, *, all: bool = False) -> None:  # noqa: A002
    """Send ``sig`` to init (``all``: to every process of the container)."""
    st = _load_state(state_dir)
    if _status(st, state_dir) == "stopped":
        raise Conflict("container is not running")
    pids = container_pids(state_dir) if all else [st["pid"]]
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


def delete(state_dir: str, *, force: bool = False, timeout: float = 10.0) -> None:
    """Remove the container's runtime state; a created container is killed first, a running
    one only with ``force`` (else ``Conflict``)."""
    st = _load_state(state_dir)
    status = _status(st, state_dir)
    if status == "running" and not force:
        raise Conflict("cannot delete a running container (stop it first, or force)")
    cg = _cgroup(st)
    if status != "stopped":
        for pid in container_pids(state_dir):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if cg is not None:
            _kill_cgroup(cg)
        deadline = time.monotonic() + timeout
        while _proc_start_time(st["pid"]) == st.get("pid_start"):
            if time.monotonic() > deadline:
                raise Unavailable(f"container init {st['pid']} did not die after SIGKILL")
            time.sleep(0.002)
    if cg is not None:
        # Without a PID namespace of its own, processes may outlive init: kill them too.
        _kill_cgroup(cg)
        try:
            cg.destroy(timeout)
        except OSError as e:
            raise Unavailable(f"container {st['id']}: {e}") from None
    poststop = (st.get("hooks") or {}).get("poststop")
    for name in (EXEC_FIFO, STATE_FILE):
        with suppress(FileNotFoundError):
            os.unlink(os.path.join(state_dir, name))
    with suppress(OSError):
        os.rmdir(state_dir)
    if poststop:
        hook_state = {"ociVersion": st.get("ociVersion", OCI_VERSION), "id": st["id"],
                      "status": "stopped", "pid": 0, "bundle": st["bundle"],
                      "annotations": st.get("annotations") or {}}
        try:
            _hooks.run(poststop, hook_state, "poststop")
        except RuntimeFailure as e:  # too late to fail: say so, as runc does
            import sys

            print(f"warning: {e}", file=sys.stderr)


def _running_cgroup(state_dir: str) -> _cgroups.Cgroup:
    st = _load_state(state_dir)
    if _status(st, state_dir) == "stopped":
        raise Conflict("container is not running")
    cg = _cgroup(st)
    if cg is None:
        raise Conflict("container has no cgroup (its spec sets no linux.cgroupsPath)")
    return cg


def pause(state_dir: str) -> None:
    """Freeze every process of the container (the freezer cgroup)."""
    _running_cgroup(state_dir).freeze()


def resume(state_dir: str) -> None:
    _running_cgroup(state_dir).thaw()


def update(state_dir: str, resources: dict[str, Any]) -> None:
    """Apply OCI ``linux.resources`` to the running container."""
    cg = _running_cgroup(state_dir)
    try:
        cg.apply(resources, devices="devices" in resources)
    except OSError as e:
        raise InvalidArgument(f"update: {e}") from None


def stats(state_dir: str) -> dict[str, Any]:
    """Docker's stats sub-objects for the container (see ``cgroups.Cgroup.stats``)."""
    cg = _cgroup(_load_state(state_dir))
    if cg is None:
        raise Conflict("container has no cgroup (its spec sets no linux.cgroupsPath)")
    return cg.stats()


def oom_killed(state_dir: str) -> bool:
    """Whether the kernel's OOM killer took a process of the container (so far)."""
    try:
        cg = _cgroup(_load_state(state_dir))
    except NotFound:
        return False
    return cg is not None and cg.oom_kills() > 0


__all__ = ["container_pids", "create", "delete", "kill", "oom_killed", "pause", "resume",
           "start", "state", "stats", "update"]
