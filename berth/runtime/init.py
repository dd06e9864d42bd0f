"""The container's init: what runs between ``fork`` and ``execve``.

Usually one process does it all: the creator ``clone``s it with the new namespaces, so it is
born PID 1 of its PID namespace (``linux.clone``; cheaper than runc's unshare-then-fork).
When that is not possible — a PID namespace to *join* (``setns`` on a PID namespace only
applies to children), or a creator with threads, which must not raw-clone — it takes two
stages as in runc: stage 1 (C1) joins/unshares the namespaces and forks stage 2 (C2).

In a new user namespace, init first waits for the creator to write its id maps. It is
moved into its cgroups by the creator while it works (or moves itself first, when it must
then unshare a cgroup namespace). The container's first process (``stage2``) builds the
filesystem (``rootfs``), lets the creator run the createRuntime hooks and runs the
createContainer ones, pivots, makes the terminal (``console``), sets hostname, ``lo``,
sysctls, rlimits, the user, capabilities and no_new_privs, loads seccomp (``seccomp``: before
capabilities are dropped unless no_new_privs is set, as in runc), resolves the command,
reports ready and waits on ``exec.fifo``. After ``start`` it runs the startContainer hooks
and execs, or, with ``io.berth.init``, stays PID 1 as a reaper of the command (``_reaper``).

Nothing can be imported once the rootfs is pivoted: everything used after ``pivot_root``
is imported before the fork.

Failures become one ``error`` message (see ``sync``) and ``os._exit``: nothing here may
return into the creator's code, flush its buffers or run its handlers.
"""

from __future__ import annotations

import _signal as signal  # signal.py builds enums: enum costs milliseconds to import
import errno
import os
import resource
import stat

from berth import linux
from berth.errors import RuntimeFailure
from berth.runtime import cgroups, console, hooks, rootfs, seccomp, sync, user
from berth.runtime.config import InitConfig, Mount
from berth.util import suppress
from berth.util.jsonlite import dumps

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    import socket

INIT_ANNOTATION = "io.berth.init"
# Signals PID 1 passes on to the command (Docker's --init forwards all it can catch).
_NOT_FORWARDED = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGTTIN,
                  signal.SIGTTOU, signal.SIGTSTP}


def _reaper(path: str, args: list[str], env: dict[str, str], wfd: int) -> None:
    """``io.berth.init``: stay PID 1, run the command as a child, forward signals to it,
    reap every orphan, and exit with the command's status (128+N if killed by N), as
    Docker's ``--init`` does. Never returns."""
    forwarded = {s for s in signal.valid_signals() if s not in _NOT_FORWARDED}
    signal.pthread_sigmask(signal.SIG_BLOCK, forwarded | {signal.SIGCHLD})
    child = os.fork()
    if child == 0:
        try:
            os.setpgid(0, 0)
            if os.isatty(0):
                signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                with suppress(OSError):
                    os.tcsetpgrp(0, os.getpid())
                signal.signal(signal.SIGTTOU, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            os.execve(path, args, env)
        except OSError as e:
            code = 127 if e.errno == errno.ENOENT else 126
            msg = f'exec: "{args[0]}": {e.strerror}'
            with suppress(OSError):
                os.write(wfd, dumps({"message": msg, "exit_code": code}).encode())
                os.write(2, (msg + "\n").encode())
            os._exit(code)
        os._exit(125)
    os.close(wfd)  # start sees end of file once the child has exec'd
    while True:
        info = signal.sigwaitinfo(forwarded | {signal.SIGCHLD})
        if info.si_signo != signal.SIGCHLD:
            with suppress(ProcessLookupError):
                os.kill(child, info.si_signo)
            continue
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(0)
            if pid == 0:
                break
            if pid == child:
                code = os.waitstatus_to_exitcode(status)
                os._exit(128 - code if code < 0 else code)


_RESETTABLE = tuple(s for s in signal.valid_signals()
                    if s not in (signal.SIGKILL, signal.SIGSTOP))


class _Steps:
    """Remembers the step in progress so a failure names it."""

    name = "starting"


def _reset_process_state() -> None:
    """Undo what the creator's Python set up: handlers, wakeup fd, blocked signals, fds."""
    signal.set_wakeup_fd(-1)
    getsignal, default = signal.getsignal, signal.SIG_DFL
    for sig in _RESETTABLE:
        # getsignal costs no system call; only touch what differs from the default.
        try:
            if getsignal(sig) != default:
                signal.signal(sig, default)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _take_stdio(stdio: tuple[int | None, int | None, int | None]) -> None:
    """Make the given fds the child's 0, 1, 2 (None: /dev/null); close-on-exec the rest."""
    tmp: list[int] = []
    null = -1
    for fd in stdio:
        if fd is not None:
            tmp.append(os.dup(fd))
            continue
        if null < 0:
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        tmp.append(null)
    for i, fd in enumerate(tmp):
        os.dup2(fd, i, inheritable=True)
    for fd in set(tmp):
        if fd > 2:
            os.close(fd)
    if linux.set_cloexec_from(3):
        return
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2:
            with suppress(OSError):
                os.set_inheritable(fd, False)


def _fail(sock: socket.socket, step: str, exc: BaseException) -> None:
    if isinstance(exc, RuntimeFailure):
        message, code = exc.message, exc.exit_code
    elif isinstance(exc, OSError | ValueError):
        message, code = f"{step}: {exc}", 125
    else:
        message = f"{step}: {type(exc).__name__}: {exc}"
        try:  # after pivot_root no module can be imported: the traceback is a bonus
            import traceback

            message += "\n" + traceback.format_exc()
        except ImportError:
            pass
        code = 125
    with suppress(OSError):
        sync.send(sock, sync.MSG_ERROR, stage=step, message=message, exit_code=code)


def single_stage(cfg: InitConfig) -> bool:
    """Whether one ``clone`` can make the container's init (see the module docstring)."""
    if any(ns.kind == "pid" and ns.path for ns in cfg.namespaces):
        return False
    if cfg.creates_namespace("user"):
        return True  # the creator maps ids for the clone; stage 1 is not supported then
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def clone_flags(cfg: InitConfig) -> int:
    """The CLONE_NEW* flags of the namespaces the container gets of its own.

    A new cgroup namespace waits until init has joined its cgroups (``join_cgroups``), so
    that its root is the container's cgroup and not the creator's.
    """
    flags = 0
    for ns in cfg.namespaces:
        if ns.path is None:
            flags |= ns.flag
    if cfg.cgroup_procs:
        flags &= ~linux.CLONE_NEWCGROUP
    return flags


def _write_file(path: str, text: str) -> None:
    """One write to a /proc or cgroup file (three system calls; ``open()`` makes seven)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def join_cgroups(cfg: InitConfig) -> None:
    """Enter the container's cgroups (the creator made them), then its cgroup namespace.

    Under a new user namespace we may not write the host's cgroup files: the creator moves
    us then (``create``).
    """
    for path in [] if cfg.creator_joins_cgroups else cfg.cgroup_procs:
        try:
            cgroups.join_self(os.path.dirname(path))
        except OSError as e:
            raise OSError(e.errno, f"joining cgroup: {e.strerror}", path) from None
    if cfg.cgroup_procs and cfg.creates_namespace("cgroup"):
        linux.unshare(linux.CLONE_NEWCGROUP)


def _join_namespaces(cfg: InitConfig) -> None:
    # Open every path first: joining a mount namespace changes what later paths mean.
    join_fds = [(ns, os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC))
                for ns in cfg.namespaces if ns.path]
    for ns, fd in join_fds:
        try:
            linux.setns(fd, ns.flag)
        except OSError as e:
            raise OSError(e.errno, f"joining {ns.kind} namespace {ns.path}: {e.strerror}"
                          ) from None
        finally:
            os.close(fd)


def cloned_main(cfg: InitConfig, rootfs_mounts: list[Mount], sock: socket.socket,
                fifo_fd: int, stdio: tuple[int | None, int | None, int | None]) -> None:
    """The single-stage init, in the process ``clone`` just made. Never returns."""
    step = "setting up the init process"
    try:
        _reset_process_state()
        if cfg.creates_namespace("user"):
            step = "waiting for the user namespace's id maps"
            msg = sync.recv(sock)
            if msg is None or msg.get("type") != sync.MSG_CONTINUE:
                raise RuntimeFailure("the creator went away before mapping ids")
            # Become the user namespace's root: our host ids mean nothing in it.
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        step = "taking stdio"
        _take_stdio(stdio)
        step = "joining cgroups"
        join_cgroups(cfg)
        step = "joining namespaces"
        _join_namespaces(cfg)
    except BaseException as e:  # noqa: BLE001 - everything must become a message
        _fail(sock, step, e)
        os._exit(1)
    stage2(cfg, rootfs_mounts, sock, fifo_fd)


def stage1(cfg: InitConfig, rootfs_mounts: list[Mount], sock: socket.socket, fifo_fd: int,
           stdio: tuple[int | None, int | None, int | None]) -> None:
    """C1: namespaces, then fork C2 and report its pid. Never returns."""
    step = "stage 1: setting up"
    code = 1
    try:
        _reset_process_state()
        step = "stage 1: taking stdio"
        _take_stdio(stdio)
        step = "stage 1: joining cgroups"
        join_cgroups(cfg)
        step = "stage 1: joining namespaces"
        _join_namespaces(cfg)
        flags = clone_flags(cfg)
        step = "stage 1: creating namespaces"
        if flags:
            linux.unshare(flags)
        step = "stage 1: forking init"
        pid = os.fork()
        if pid == 0:
            stage2(cfg, rootfs_mounts, sock, fifo_fd)
        sync.send(sock, sync.MSG_PID, pid=pid)
        code = 0
    except BaseException as e:  # noqa: BLE001 - everything must become a message
        _fail(sock, step, e)
    os._exit(code)


def _find_executable(cfg: InitConfig) -> str:
    """Resolve args[0] as execvp would, inside the container; 127 if absent, 126 if not
    executable (Docker's ``docker run`` exit codes)."""
    name = cfg.args[0]
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as e:
            raise RuntimeFailure(f'exec: "{name}": stat {name}: {e.strerror.lower()}',
                                 127 if e.errno in (errno.ENOENT, errno.ENOTDIR) else 126
                                 ) from None
        if stat.S_ISDIR(st.st_mode):
            raise RuntimeFailure(f'exec: "{name}": is a directory', 126)
        if not os.access(name, os.X_OK):
            raise RuntimeFailure(f'exec: "{name}": permission denied', 126)
        return name
    for d in cfg.path_env.split(":"):
        candidate = os.path.join(d or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeFailure(f'exec: "{name}": executable file not found in $PATH', 127)


def _set_user_and_caps(cfg: InitConfig) -> None:
    caps = cfg.capabilities
    if caps is not None:
        for cap in range(linux.CAP_LAST_CAP + 1):
            if not caps.bounding & (1 << cap):
                linux.capbset_drop(cap)
    if caps is not None:
        linux.set_keepcaps(True)
    os.setgroups(cfg.additional_gids)
    os.setresgid(cfg.gid, cfg.gid, cfg.gid)
    os.setresuid(cfg.uid, cfg.uid, cfg.uid)
    if caps is not None:
        linux.set_keepcaps(False)
        linux.capset(caps.effective, caps.permitted, caps.inheritable)
        linux.ambient_clear_all()
        # The kernel only lets permitted and inheritable capabilities be ambient; runc skips
        # the others with a warning (``runc spec`` lists ambient ones it cannot raise).
        raisable = caps.ambient & caps.permitted & caps.inheritable
        for cap in range(linux.CAP_LAST_CAP + 1):
            if raisable & (1 << cap):
                linux.ambient_raise(cap)


def _wait_for_hooks(sock: socket.socket) -> dict[str, object]:
    """Ask the creator to run its hooks; returns the state our own hooks get."""
    sync.send(sock, sync.MSG_HOOKS)
    msg = sync.recv(sock)
    if msg is None or msg.get("type") != sync.MSG_CONTINUE:
        raise RuntimeFailure("the creator went away while running hooks")
    return dict(msg.get("state") or {})


def load_seccomp(cfg: InitConfig, *, early: bool = False) -> None:
    """Install the process's seccomp filter. With no_new_privs it is the last step before
    exec (``early=False``); without, the kernel wants CAP_SYS_ADMIN, so it comes just
    before capabilities are dropped (``early=True``), as in runc."""
    if cfg.seccomp is not None and early != cfg.no_new_privileges:
        seccomp.load(cfg.seccomp)


def _resolve_user(cfg: InitConfig) -> None:
    """Docker's ``--user NAME[:GROUP]`` from the container's own passwd and group files."""
    resolved = user.resolve(cfg.user_name or "")
    cfg.uid, cfg.gid = resolved.uid, resolved.gid
    cfg.additional_gids = sorted(set(cfg.additional_gids) | set(resolved.additional_gids))
    if not any(e.startswith("HOME=") for e in cfg.env):
        cfg.env.append(f"HOME={resolved.home}")


def setup_console(size: tuple[int, int] | None, sock: socket.socket) -> None:
    """With ``process.terminal``: a pty from the container's devpts becomes our stdio and
    controlling terminal, /dev/console, and its master goes to the creator."""
    master, slave, name = console.open_pty()
    try:
        if size and size[0] > 0 and size[1] > 0:
            console.set_size(slave, *size)
        console.mount_console(name)
        sync.send_fd(sock, sync.MSG_CONSOLE, master, name=name)
    finally:
        os.close(master)
    console.make_controlling(slave)


def fix_stdio_owner(uid: int, gid: int) -> None:
    """Give a non-root user its stdio (a pty slave, pipes), so it may reopen them through
    /proc/self/fd as runc allows; /dev/null is left alone."""
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            continue
        with suppress(OSError):
            os.fchown(fd, uid, gid)


def stage2(cfg: InitConfig, rootfs_mounts: list[Mount], sock: socket.socket,
           fifo_fd: int) -> None:
    """C2: PID 1 of the container. Builds it, reports ready, waits for start, execs."""
    step = "stage 2: setting up"
    try:
        os.umask(0)
        step = "preparing rootfs"
        rootfs.prepare_root(cfg, rootfs_mounts)
        for m in cfg.mounts:
            step = f"mounting {m.source or m.type} on {m.destination}"
            rootfs.mount_entry(cfg.rootfs, m,
                               [os.path.dirname(p) for p in cfg.cgroup_procs])
        if rootfs.needs_dev_setup(cfg):
            step = "creating devices in /dev"
            rootfs.setup_dev(cfg)
        step = f"creating cwd {cfg.cwd}"
        rootfs._create_target(rootfs.secure_join(cfg.rootfs, cfg.cwd), False)
        hook_state: dict[str, object] = {}
        if any(cfg.hooks.get(k) for k in ("prestart", "createRuntime", "createContainer",
                                           "startContainer")):
            step = "waiting for the createRuntime hooks"
            hook_state = _wait_for_hooks(sock)
            if cfg.hooks.get("createContainer"):
                step = "running the createContainer hooks"
                hooks.run(cfg.hooks["createContainer"], hook_state, "createContainer")
            if cfg.hooks.get("startContainer"):
                import subprocess  # noqa: F401 - hooks need it after pivot_root
        step = "pivot_root"
        rootfs.pivot(cfg.rootfs)
        if cfg.terminal:
            step = "setting up the console"
            setup_console(cfg.console_size, sock)
        if cfg.hostname:
            step = "setting hostname"
            linux.sethostname(cfg.hostname)
        if cfg.creates_namespace("network"):
            step = "bringing lo up"
            linux.link_up("lo")
        for key, value in cfg.sysctl.items():
            step = f"setting sysctl {key}"
            _write_file("/proc/sys/" + key.replace(".", "/"), value)
        for path in cfg.readonly_paths:
            step = f"making {path} read-only"
            rootfs.readonly_path(path)
        for path in cfg.masked_paths:
            step = f"masking {path}"
            rootfs.mask_path(path)
        if cfg.readonly_root:
            step = "making the root filesystem read-only"
            rootfs.readonly_root()
        if cfg.oom_score_adj is not None:
            step = "setting oom_score_adj"
            _write_file("/proc/self/oom_score_adj", str(cfg.oom_score_adj))
        for res, soft, hard in cfg.rlimits:
            step = f"setting rlimit {res}"
            resource.setrlimit(res, (soft, hard))
        if cfg.user_name:
            step = f"resolving user {cfg.user_name}"
            _resolve_user(cfg)
        if cfg.uid != 0:
            fix_stdio_owner(cfg.uid, cfg.gid)
        step = "loading seccomp"
        load_seccomp(cfg, early=True)
        step = f"setting user {cfg.uid}:{cfg.gid} and capabilities"
        _set_user_and_caps(cfg)
        os.umask(cfg.umask)
        step = f"changing to cwd {cfg.cwd}"
        os.chdir(cfg.cwd)
        step = "resolving the command"
        path = _find_executable(cfg)
        if cfg.no_new_privileges:
            step = "setting no_new_privs"
            linux.set_no_new_privs()
        step = "loading seccomp"
        load_seccomp(cfg)
        env = dict(e.split("=", 1) for e in cfg.env)
        step = "reporting ready"
        sync.send(sock, sync.MSG_READY)
        sock.close()
    except BaseException as e:  # noqa: BLE001 - everything must become a message
        _fail(sock, step, e)
        os._exit(1)
    # Past this point the creator is gone; errors go to the exec fifo and stderr.
    try:
        wfd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.close(fifo_fd)
        os.write(wfd, sync.EXEC_RELEASE)
    except BaseException:  # noqa: BLE001
        os._exit(125)
    if cfg.hooks.get("startContainer"):
        try:
            hooks.run(cfg.hooks["startContainer"], hook_state, "startContainer")
        except RuntimeFailure as e:
            with suppress(OSError):
                os.write(wfd, dumps({"message": e.message, "exit_code": 1}).encode())
            os._exit(1)
    if cfg.annotations.get(INIT_ANNOTATION) == "true":
        _reaper(path, cfg.args, env, wfd)
    try:
        os.execve(path, cfg.args, env)
    except OSError as e:
        code = 127 if e.errno == errno.ENOENT else 126
        msg = f'exec: "{cfg.args[0]}": {e.strerror}'
        with suppress(OSError):
            os.write(wfd, dumps({"message": msg, "exit_code": code}).encode())
            os.write(2, (msg + "\n").encode())
        os._exit(code)
    os._exit(125)
