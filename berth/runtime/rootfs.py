"""Build the container's filesystem view inside its mount namespace (run by init stage 2).

Order, as runc does it: make the host's mounts private to us, mount the root filesystem, the
spec's mounts in order, the default device nodes, then ``pivot_root`` into it; masked and
read-only paths and the read-only root come after the pivot, when paths are the container's.
Paths inside the rootfs are resolved with ``secure_join`` (``berth.util.rootpath``) so a
symlink in an image can never point a mount outside of it.
"""

from __future__ import annotations

import errno
import os
import stat

from berth import linux
from berth.runtime import cgroups
from berth.runtime.config import InitConfig, Mount
from berth.util import suppress
from berth.util.rootpath import Missing, RootWalker

# (path, major, minor): the nodes every container gets in /dev, as runc creates them.
DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)
DEV_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)
_MAX_SYMLINKS = 255
# statvfs flags that a bind remount must repeat or it would clear them (same bits as MS_*).
_KEEP_FLAGS = (linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC | linux.MS_NOATIME
               | linux.MS_NODIRATIME | linux.MS_RELATIME | linux.MS_RDONLY)


def secure_join(root: str, unsafe: str) -> str:
    """``root``/``unsafe`` with every symlink resolved as if ``root`` were ``/``.

    Components that do not exist yet are joined lexically, so the result is where a path
    would be created. ``..`` and absolute symlink targets never leave ``root``.
    """
    with RootWalker(root, max_links=_MAX_SYMLINKS) as walker:
        return _join(walker, root, unsafe)


def _join(walker: RootWalker, root: str, unsafe: str) -> str:
    try:
        parts = walker.resolve(unsafe, missing=Missing.LEXICAL)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "too many symlinks resolving path in rootfs",
                          unsafe) from None
        raise
    return os.path.join(root, *parts)


def _mkdir_all(path: str, mode: int = 0o755) -> None:
    with suppress(FileExistsError):
        os.makedirs(path, mode)


def _create_target(path: str, is_file: bool) -> None:
    if os.path.lexists(path):
        return
    if is_file:
        _mkdir_all(os.path.dirname(path))
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644))
    else:
        _mkdir_all(path)


def do_mount(m: Mount, target: str, cgroup_dirs: list[str] | None = None) -> None:
    """Mount ``m`` on ``target`` (already resolved), then apply flags and propagation."""
    if m.is_bind:
        linux.mount(m.source, target, None, m.flags & (linux.MS_BIND | linux.MS_REC))
        extra = m.flags & ~(linux.MS_BIND | linux.MS_REC | linux.MS_REMOUNT)
        if extra:
            linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | extra)
    elif m.type in ("cgroup", "cgroup2"):
        mount_cgroups(m, target, cgroup_dirs or [])
    else:
        linux.mount(m.source or m.type, target, m.type, m.flags, m.data or None)
    for prop in m.propagation:
        linux.mount(None, target, None, prop)


def _own_cgroups(cgroup_dirs: list[str]) -> list[tuple[str, str]]:
    """(host directory of our cgroup, name under /sys/fs/cgroup) for every hierarchy we
    are in, v1 and v2, from mountinfo and /proc/self/cgroup; ``cgroup_dirs`` (the
    container's own, which the creator may still be moving us into) take precedence."""
    mine: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            mine[ctrls] = path
    found: list[tuple[str, str]] = []
    for fstype, root, mountpoint, opts in cgroups.mounted_hierarchies():
        if fstype == "cgroup2":
            key = ""
        else:
            key = next((k for k in mine if k and set(k.split(",")) <= set(opts)), "-")
        path = mine.get(key)
        if path is None or not path.startswith(root):
            continue
        rel = path[len(root):].lstrip("/")
        src = os.path.join(mountpoint, rel)
        for d in cgroup_dirs:
            if d.startswith(mountpoint.rstrip("/") + "/"):
                src = d
        found.append((src, os.path.basename(mountpoint)))
    return found


def mount_cgroups(m: Mount, target: str, cgroup_dirs: list[str]) -> None:
    """/sys/fs/cgroup as Docker shows it without a cgroup namespace: a tmpfs holding each
    hierarchy, bind-mounted from the container's own cgroup (so the container sees its
    own limits and usage at the top), read-only unless the mount says rw."""
    ro = m.flags & linux.MS_RDONLY
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        for src, _ in _own_cgroups(cgroup_dirs)[:1]:
            linux.mount(src, target, None, linux.MS_BIND)
            linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | m.flags
                        | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
        return
    linux.mount("tmpfs", target, "tmpfs", m.flags & ~linux.MS_RDONLY, "mode=755")
    sub_flags = (linux.MS_BIND | linux.MS_REMOUNT | linux.MS_NOSUID | linux.MS_NODEV
                 | linux.MS_NOEXEC | ro)
    for src, name in _own_cgroups(cgroup_dirs):
        dest = os.path.join(target, name)
        _mkdir_all(dest)
        linux.mount(src, dest, None, linux.MS_BIND)
        linux.mount(None, dest, None, sub_flags)
    if ro:
        linux.mount(None, target, None, linux.MS_REMOUNT | m.flags)


def mount_entry(rootfs: str, m: Mount, cgroup_dirs: list[str] | None = None) -> None:
    target = secure_join(rootfs, m.destination)
    is_file = False
    if m.is_bind:
        try:
            is_file = not stat.S_ISDIR(os.stat(m.source).st_mode)
        except OSError as e:
            raise OSError(e.errno, f"bind source {m.source}: {e.strerror}", m.source) from None
    _create_target(target, is_file)
    do_mount(m, target, cgroup_dirs)


def needs_dev_setup(cfg: InitConfig) -> bool:
    """Device nodes are created unless /dev comes from the host by a bind mount."""
    return not any(m.destination.rstrip("/") == "/dev" and m.is_bind for m in cfg.mounts)


def _mknod(target: str, path: str, kind: str, major: int, minor: int, mode: int,
           uid: int = 0, gid: int = 0) -> None:
    """The node ``path`` (of the host's /dev) at ``target`` (its place in the rootfs)."""
    _mkdir_all(os.path.dirname(target))
    with suppress(FileNotFoundError):
        if not stat.S_ISDIR(os.lstat(target).st_mode):
            os.unlink(target)
    fmt = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[kind]
    try:
        linux.mknod(target, fmt | (mode & 0o7777), major, minor)
    except PermissionError:
        # No CAP_MKNOD (e.g. later, in a user namespace): borrow the host's node.
        _create_target(target, True)
        linux.mount(path, target, None, linux.MS_BIND)
        return
    os.chown(target, uid, gid)


def setup_dev(cfg: InitConfig) -> None:
    # One walker for all the joins: this only adds nodes, links and directories under /dev
    # and replaces no directory, so the directory fds it keeps stay right (and a container
    # start spends ~0.15 ms less than with a walker per join).
    with RootWalker(cfg.rootfs, max_links=_MAX_SYMLINKS) as walker:
        def join(path: str) -> str:
            return _join(walker, cfg.rootfs, path)

        for path, major, minor in DEFAULT_DEVICES:
            _mknod(join(path), path, "c", major, minor, 0o666)
        for dev in cfg.devices:
            _mknod(join(dev.path), dev.path, dev.kind, dev.major, dev.minor, dev.mode,
                   dev.uid, dev.gid)
        for src, dst in DEV_SYMLINKS:
            with suppress(FileExistsError):
                os.symlink(src, join(dst))
        if os.path.exists("/proc/kcore"):
            with suppress(FileExistsError):
                os.symlink("/proc/kcore", join("/dev/core"))
        if any(m.destination.rstrip("/") == "/dev/pts" for m in cfg.mounts):
            ptmx = join("/dev/ptmx")
            with suppress(FileNotFoundError):
                os.unlink(ptmx)
            os.symlink("pts/ptmx", ptmx)


def _mount_point_of(path: str) -> str:
    """The mount point (in /proc/self/mountinfo) that ``path`` lives on."""
    best = "/"
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            mp = os.fsdecode(line.split()[4]).replace("\\040", " ")
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best):
                best = mp
    return best


def prepare_root(cfg: InitConfig, rootfs_mounts: list[Mount]) -> None:
    """Cut propagation to the host, then put the root filesystem on ``cfg.rootfs``."""
    linux.mount(None, "/", None, cfg.rootfs_propagation)
    if not cfg.rootfs_propagation & linux.MS_PRIVATE:
        # With shared or slave propagation asked for, the mount holding the rootfs must
        # still be private, or mounting the rootfs would propagate out to the host.
        linux.mount(None, _mount_point_of(cfg.rootfs), None, linux.MS_PRIVATE)
    if rootfs_mounts:
        for m in rootfs_mounts:
            do_mount(m, cfg.rootfs)
    else:
        linux.mount(cfg.rootfs, cfg.rootfs, None, linux.MS_BIND | linux.MS_REC)


def pivot(rootfs: str) -> None:
    """``pivot_root`` into ``rootfs`` and detach the old root, with no put_old directory.

    pivot_root(".", ".") stacks the old root on top of the new one; we then unmount it
    from there (after making it a slave so the unmount cannot propagate to the host).
    """
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        linux.pivot_root(".", ".")
        os.fchdir(old)
        linux.mount(None, ".", None, linux.MS_SLAVE | linux.MS_REC)
        linux.umount2(".", linux.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def mask_path(path: str) -> None:
    """Hide ``path``: /dev/null over a file, an empty read-only tmpfs over a directory."""
    try:
        linux.mount("/dev/null", path, None, linux.MS_BIND)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        if e.errno != errno.ENOTDIR:
            raise
        linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY)


def readonly_path(path: str) -> None:
    try:
        linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        raise
    keep = os.statvfs(path).f_flag & _KEEP_FLAGS
    linux.mount(None, path, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | keep)


def readonly_root() -> None:
    keep = os.statvfs("/").f_flag & _KEEP_FLAGS
    linux.mount(None, "/", None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | keep)
