"""Translate an OCI runtime spec into the plan the init stages execute, validating as we go.

The spec is read and checked once, in the creator, before anything forks: every problem is
reported with the field that is wrong, and the init stages work from plain, already-parsed
values (flags as integers, capabilities as masks), so nothing between ``fork`` and ``execve``
has to interpret JSON.
"""

from __future__ import annotations

import os
import resource

from berth import linux
from berth.errors import InvalidArgument, NotImplementedYet
from berth.runtime import hooks as _hooks
from berth.runtime import seccomp as _seccomp
from berth.runtime.user import ANNOTATION as USER_ANNOTATION

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    from typing import Any

# OCI namespace type -> clone flag.
NAMESPACES: dict[str, int] = {
    "pid": linux.CLONE_NEWPID,
    "network": linux.CLONE_NEWNET,
    "mount": linux.CLONE_NEWNS,
    "ipc": linux.CLONE_NEWIPC,
    "uts": linux.CLONE_NEWUTS,
    "cgroup": linux.CLONE_NEWCGROUP,
    "user": linux.CLONE_NEWUSER,
    "time": linux.CLONE_NEWTIME,
}
_UNSUPPORTED_NAMESPACES = {"time"}

# Mount option -> (clear instead of set, flag).
_FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, linux.MS_RDONLY),
    "rw": (True, linux.MS_RDONLY),
    "nosuid": (False, linux.MS_NOSUID),
    "suid": (True, linux.MS_NOSUID),
    "nodev": (False, linux.MS_NODEV),
    "dev": (True, linux.MS_NODEV),
    "noexec": (False, linux.MS_NOEXEC),
    "exec": (True, linux.MS_NOEXEC),
    "sync": (False, linux.MS_SYNCHRONOUS),
    "async": (True, linux.MS_SYNCHRONOUS),
    "dirsync": (False, linux.MS_DIRSYNC),
    "remount": (False, linux.MS_REMOUNT),
    "mand": (False, linux.MS_MANDLOCK),
    "nomand": (True, linux.MS_MANDLOCK),
    "noatime": (False, linux.MS_NOATIME),
    "atime": (True, linux.MS_NOATIME),
    "nodiratime": (False, linux.MS_NODIRATIME),
    "diratime": (True, linux.MS_NODIRATIME),
    "relatime": (False, linux.MS_RELATIME),
    "norelatime": (True, linux.MS_RELATIME),
    "strictatime": (False, linux.MS_STRICTATIME),
    "nostrictatime": (True, linux.MS_STRICTATIME),
    "lazytime": (False, linux.MS_LAZYTIME),
    "nolazytime": (True, linux.MS_LAZYTIME),
    "bind": (False, linux.MS_BIND),
    "rbind": (False, linux.MS_BIND | linux.MS_REC),
}
PROPAGATION: dict[str, int] = {
    "private": linux.MS_PRIVATE,
    "rprivate": linux.MS_PRIVATE | linux.MS_REC,
    "shared": linux.MS_SHARED,
    "rshared": linux.MS_SHARED | linux.MS_REC,
    "slave": linux.MS_SLAVE,
    "rslave": linux.MS_SLAVE | linux.MS_REC,
    "unbindable": linux.MS_UNBINDABLE,
    "runbindable": linux.MS_UNBINDABLE | linux.MS_REC,
}
# Options runc accepts that need features berth does not have yet; ignored, not refused.
_IGNORED_OPTIONS = {"tmpcopyup", "nosymfollow", "idmap", "ridmap", "rro", "rrw", "rnosuid",
                    "rnodev", "rnoexec", "rsuid", "rdev", "rexec", "rrelatime", "rnoatime"}

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class _Record:
    """A small immutable record: fields in ``__slots__``, compared by value.

    Not dataclasses nor NamedTuple: importing dataclasses (and with it inspect) or building
    NamedTuple classes costs more at start-up than ``berth-runtime run`` can afford.
    """

    __slots__: tuple[str, ...] = ()
    _defaults: dict[str, Any] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}: too many arguments")
        for name, value in zip(names, args, strict=False):
            object.__setattr__(self, name, value)
        for name in names[len(args):]:
            if name in kwargs:
                object.__setattr__(self, name, kwargs.pop(name))
            elif name in self._defaults:
                object.__setattr__(self, name, self._defaults[name])
            else:
                raise TypeError(f"{type(self).__name__}: {name} is required")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(kwargs)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"


class Mount(_Record):
    """One mount, parsed: ``flags`` for mount(2), propagation applied by separate calls."""

    __slots__ = ("destination", "type", "source", "flags", "propagation", "data")
    _defaults = {"flags": 0, "propagation": (), "data": ""}
    destination: str
    type: str
    source: str
    flags: int
    propagation: tuple[int, ...]
    data: str

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & linux.MS_BIND)


class Device(_Record):
    __slots__ = ("path", "kind", "major", "minor", "mode", "uid", "gid")
    path: str
    kind: str  # "c", "b", "u" or "p"
    major: int
    minor: int
    mode: int
    uid: int
    gid: int


class Namespace(_Record):
    __slots__ = ("kind", "flag", "path")
    kind: str
    flag: int
    path: str | None


class Capabilities(_Record):
    __slots__ = ("bounding", "effective", "permitted", "inheritable", "ambient")
    bounding: int
    effective: int
    permitted: int
    inheritable: int
    ambient: int


class InitConfig:
    """Everything the init stages need, in the form they need it."""

    def __init__(self, *, id: str, bundle: str, rootfs: str,  # noqa: A002
                 args: list[str], env: list[str], cwd: str = "/", terminal: bool = False,
                 console_size: tuple[int, int] | None = None, readonly_root: bool = False,
                 rootfs_propagation: int = linux.MS_PRIVATE | linux.MS_REC,
                 namespaces: list[Namespace] | None = None, mounts: list[Mount] | None = None,
                 devices: list[Device] | None = None, masked_paths: list[str] | None = None,
                 readonly_paths: list[str] | None = None, hostname: str | None = None,
                 domainname: str | None = None, sysctl: dict[str, str] | None = None,
                 rlimits: list[tuple[int, int, int]] | None = None, uid: int = 0,
                 gid: int = 0, additional_gids: list[int] | None = None,
                 user_name: str | None = None, umask: int = 0o022,
                 capabilities: Capabilities | None = None, no_new_privileges: bool = False,
                 oom_score_adj: int | None = None, annotations: dict[str, str] | None = None,
                 cgroups_path: str | None = None, resources: dict[str, Any] | None = None,
                 seccomp: bytes | None = None,
                 hooks: dict[str, list[dict[str, Any]]] | None = None,
                 uid_mappings: list[tuple[int, int, int]] | None = None,
                 gid_mappings: list[tuple[int, int, int]] | None = None) -> None:
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.args = args
        self.env = env
        self.cwd = cwd
        self.terminal = terminal
        self.console_size = console_size  # (height, width)
        self.readonly_root = readonly_root
        self.rootfs_propagation = rootfs_propagation
        self.namespaces = namespaces or []
        self.mounts = mounts or []
        self.devices = devices or []
        self.masked_paths = masked_paths or []
        self.readonly_paths = readonly_paths or []
        self.hostname = hostname
        self.domainname = domainname
        self.sysctl = sysctl or {}
        self.rlimits = rlimits or []
        self.uid = uid
        self.gid = gid
        self.additional_gids = additional_gids or []
        self.user_name = user_name  # Docker's --user, resolved inside the container
        self.umask = umask
        self.capabilities = capabilities
        self.no_new_privileges = no_new_privileges
        self.oom_score_adj = oom_score_adj
        self.annotations = annotations or {}
        self.cgroups_path = cgroups_path
        self.resources = resources or {}
        self.cgroup_procs: list[str] = []  # filled in by the creator
        self.creator_joins_cgroups = False  # the creator moves init (see container.create)
        self.seccomp = seccomp  # the compiled BPF program
        self.hooks = hooks or {}
        # (container id, host id, size), written by the creator for a new user namespace.
        self.uid_mappings = uid_mappings or []
        self.gid_mappings = gid_mappings or []

    def has_namespace(self, kind: str) -> bool:
        return any(ns.kind == kind for ns in self.namespaces)

    def creates_namespace(self, kind: str) -> bool:
        return any(ns.kind == kind and ns.path is None for ns in self.namespaces)

    @property
    def path_env(self) -> str:
        for entry in reversed(self.env):
            if entry.startswith("PATH="):
                return entry[5:]
        return DEFAULT_PATH


def parse_mount(m: dict[str, Any], bundle: str = "/", *, where: str = "mounts") -> Mount:
    """Turn an OCI mount object into a ``Mount``; ``where`` names it in errors."""
    if not isinstance(m, dict):
        raise InvalidArgument(f"{where}: must be an object")
    dest = m.get("destination", "")
    mtype = m.get("type") or ""
    source = m.get("source") or ""
    if not isinstance(dest, str) or not isinstance(mtype, str) or not isinstance(source, str):
        raise InvalidArgument(f"{where}: destination, type and source must be strings")
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for opt in m.get("options") or ():
        if not isinstance(opt, str):
            raise InvalidArgument(f"{where}: option {opt!r} is not a string")
        if opt in _FLAG_OPTIONS:
            clear, flag = _FLAG_OPTIONS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in _IGNORED_OPTIONS:
            continue
        else:
            data.append(opt)
    if mtype == "bind":
        flags |= linux.MS_BIND
    if flags & linux.MS_BIND and source and not os.path.isabs(source):
        source = os.path.join(bundle, source)
    return Mount(destination=dest, type=mtype, source=source, flags=flags,
                 propagation=tuple(propagation), data=",".join(data))


def _caps(spec_caps: dict[str, Any]) -> Capabilities:
    try:
        return Capabilities(
            bounding=linux.cap_mask(spec_caps.get("bounding")),
            effective=linux.cap_mask(spec_caps.get("effective")),
            permitted=linux.cap_mask(spec_caps.get("permitted")),
            inheritable=linux.cap_mask(spec_caps.get("inheritable")),
            ambient=linux.cap_mask(spec_caps.get("ambient")),
        )
    except ValueError as e:
        raise InvalidArgument(f"process.capabilities: {e}") from None


def _rlimit(entry: dict[str, Any]) -> tuple[int, int, int]:
    name = entry.get("type", "")
    res = getattr(resource, name, None) if name.startswith("RLIMIT_") else None
    if res is None:
        raise InvalidArgument(f"process.rlimits: unknown rlimit type {name!r}")
    return res, int(entry.get("soft", 0)), int(entry.get("hard", 0))


def _device(entry: dict[str, Any]) -> Device:
    path = entry.get("path", "")
    kind = entry.get("type", "")
    if not path.startswith("/dev/") or kind not in ("c", "b", "u", "p"):
        raise InvalidArgument(f"linux.devices: bad device {entry!r}")
    mode = entry.get("fileMode")
    return Device(path=path, kind=kind, major=int(entry.get("major", 0)),
                  minor=int(entry.get("minor", 0)), mode=0o666 if mode is None else int(mode),
                  uid=int(entry.get("uid", 0)), gid=int(entry.get("gid", 0)))


def _id_mappings(entries: Any, where: str) -> list[tuple[int, int, int]]:
    out = []
    for i, m in enumerate(entries or ()):
        try:
            c, h, n = int(m["containerID"]), int(m["hostID"]), int(m["size"])
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(f"{where}[{i}]: containerID, hostID and size are required"
                                  ) from None
        if c < 0 or h < 0 or n <= 0:
            raise InvalidArgument(f"{where}[{i}]: ids must be >= 0 and size > 0")
        out.append((c, h, n))
    return out


def from_spec(spec: dict[str, Any], bundle: str, container_id: str) -> InitConfig:
    """Validate ``spec`` (an OCI config.json) and return the init plan.

    Raises ``InvalidArgument`` naming the field at fault, ``NotImplementedYet`` for features
    that are planned but absent (user and time namespaces).
    """
    if not isinstance(spec, dict):
        raise InvalidArgument("config.json: not a JSON object")
    process = spec.get("process")
    if not isinstance(process, dict):
        raise InvalidArgument("config.json: process is required")
    args = process.get("args")
    if not args or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise InvalidArgument("process.args: must be a non-empty list of strings")
    cwd = process.get("cwd") or "/"
    if not os.path.isabs(cwd):
        raise InvalidArgument(f"process.cwd: {cwd!r} is not an absolute path")
    env = process.get("env") or []
    if not all(isinstance(e, str) and "=" in e for e in env):
        raise InvalidArgument("process.env: entries must be KEY=value strings")

    root = spec.get("root") or {}
    root_path = root.get("path") or "rootfs"
    rootfs = os.path.normpath(os.path.join(bundle, root_path))
    if not os.path.isdir(rootfs):
        raise InvalidArgument(f"root.path: {rootfs} is not a directory")

    lx = spec.get("linux") or {}
    namespaces: list[Namespace] = []
    seen: set[str] = set()
    for ns in lx.get("namespaces") or ():
        kind = ns.get("type", "")
        if kind not in NAMESPACES:
            raise InvalidArgument(f"linux.namespaces: unknown namespace type {kind!r}")
        if kind in seen:
            raise InvalidArgument(f"linux.namespaces: {kind} listed twice")
        if kind in _UNSUPPORTED_NAMESPACES:
            raise NotImplementedYet(f"linux.namespaces: {kind} namespaces are not supported yet")
        seen.add(kind)
        path = ns.get("path") or None
        if path is not None and not os.path.exists(path):
            raise InvalidArgument(f"linux.namespaces: {kind} namespace path {path} does not exist")
        namespaces.append(Namespace(kind, NAMESPACES[kind], path))

    mounts = [parse_mount(m, bundle, where=f"mounts[{i}]")
              for i, m in enumerate(spec.get("mounts") or ())]
    for i, m in enumerate(mounts):
        if not m.destination.startswith("/"):
            raise InvalidArgument(f"mounts[{i}]: destination {m.destination!r} is not absolute")

    uid_mappings = _id_mappings(lx.get("uidMappings"), "linux.uidMappings")
    gid_mappings = _id_mappings(lx.get("gidMappings"), "linux.gidMappings")
    new_userns = any(ns.kind == "user" and ns.path is None for ns in namespaces)
    if new_userns and not (uid_mappings and gid_mappings):
        raise InvalidArgument("linux.uidMappings/gidMappings: a new user namespace needs both")
    if (uid_mappings or gid_mappings) and not new_userns:
        raise InvalidArgument("linux.uidMappings: mappings need a new user namespace")

    propagation = lx.get("rootfsPropagation") or "rprivate"
    if propagation not in PROPAGATION:
        raise InvalidArgument(f"linux.rootfsPropagation: unknown value {propagation!r}")

    hostname = spec.get("hostname") or None
    domainname = spec.get("domainname") or None
    if (hostname or domainname) and "uts" not in seen:
        raise InvalidArgument("hostname: setting it needs a uts namespace of the container's own")

    resources = lx.get("resources") or {}
    if not isinstance(resources, dict):
        raise InvalidArgument("linux.resources: must be an object")
    cgroups_path = lx.get("cgroupsPath") or None
    if cgroups_path is not None and not isinstance(cgroups_path, str):
        raise InvalidArgument("linux.cgroupsPath: must be a string")
    if cgroups_path is None and resources:
        cgroups_path = f"berth-runtime/{container_id}"
    devices = [_device(d) for d in lx.get("devices") or ()]
    if resources or cgroups_path:
        # Every device the spec creates is usable, as runc allows them.
        rules = list(resources.get("devices") or ())
        rules += [{"allow": True, "type": "c" if d.kind == "u" else d.kind,
                   "major": d.major, "minor": d.minor, "access": "rwm"}
                  for d in devices if d.kind != "p"]
        resources = {**resources, "devices": rules}

    user = process.get("user") or {}
    caps = process.get("capabilities")
    size = process.get("consoleSize") or None
    console_size = None
    if size:
        try:
            console_size = (int(size.get("height", 0)), int(size.get("width", 0)))
        except (AttributeError, TypeError, ValueError):
            raise InvalidArgument("process.consoleSize: height and width must be numbers"
                                  ) from None
    umask = user.get("umask")
    oom = process.get("oomScoreAdj")
    return InitConfig(
        id=container_id,
        bundle=bundle,
        rootfs=rootfs,
        args=list(args),
        env=list(env),
        cwd=cwd,
        terminal=bool(process.get("terminal")),
        console_size=console_size,
        readonly_root=bool(root.get("readonly")),
        rootfs_propagation=PROPAGATION[propagation],
        namespaces=namespaces,
        mounts=mounts,
        devices=devices,
        masked_paths=list(lx.get("maskedPaths") or ()),
        readonly_paths=list(lx.get("readonlyPaths") or ()),
        hostname=hostname,
        domainname=domainname,
        sysctl=dict(lx.get("sysctl") or {}),
        rlimits=[_rlimit(r) for r in process.get("rlimits") or ()],
        uid=int(user.get("uid", 0)),
        gid=int(user.get("gid", 0)),
        additional_gids=[int(g) for g in user.get("additionalGids") or ()],
        user_name=(spec.get("annotations") or {}).get(USER_ANNOTATION) or None,
        umask=0o022 if umask is None else int(umask),
        capabilities=None if caps is None else _caps(caps),
        no_new_privileges=bool(process.get("noNewPrivileges")),
        oom_score_adj=None if oom is None else int(oom),
        annotations=dict(spec.get("annotations") or {}),
        cgroups_path=cgroups_path,
        resources=resources,
        seccomp=_seccomp.compile_section(lx.get("seccomp")),
        hooks=_hooks.parse(spec),
        uid_mappings=uid_mappings,
        gid_mappings=gid_mappings,
    )
