"""Docker's default OCI spec: what ``docker run`` gives a container before its own options.

The daemon starts from ``default_spec`` and layers the container's config on top;
``berth-runtime spec`` writes it as a bundle's config.json.
"""

from __future__ import annotations

import os

from berth.util.jsonlite import loads

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    from typing import Any

# Docker's default capability set (CapEff 00000000a80425fb for root).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


DEFAULT_SYSCTLS: dict[str, str] = {
    "net.ipv4.ip_unprivileged_port_start": "0",
    "net.ipv4.ping_group_range": "0 2147483647",
}


def default_mounts() -> list[dict[str, Any]]:
    """Docker's default mounts, in Docker's order."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
    ]


# Go's names for this machine (Docker's profile filters rules by them).
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}


def _kernel_at_least(version: str) -> bool:
    def parts(text: str) -> tuple[int, ...]:
        out = []
        for piece in text.split("-")[0].split(".")[:2]:
            digits = "".join(ch for ch in piece if ch.isdigit())
            out.append(int(digits or 0))
        return tuple(out)

    return parts(os.uname().release) >= parts(version)


def default_seccomp(capabilities: list[str] | tuple[str, ...] = DEFAULT_CAPABILITIES
                    ) -> dict[str, Any]:
    """Docker's default profile as the OCI ``linux.seccomp`` for a process whose bounding
    set is ``capabilities``: the allow-list, EPERM for the rest, clone without namespace
    flags, and the syscalls a capability unlocks only when it is held (dockerd's rules)."""
    from berth.runtime.seccomp_profile import PROFILE_JSON

    profile = loads(PROFILE_JSON)
    arch = _GOARCH.get(os.uname().machine, os.uname().machine)
    native = "SCMP_ARCH_" + {"amd64": "X86_64", "arm64": "AARCH64"}.get(arch, arch.upper())
    caps = set(capabilities)
    arches: list[str] = []
    for entry in profile.get("archMap") or ():
        if entry["architecture"] == native:
            arches = [entry["architecture"], *entry.get("subArchitectures", ())]
    syscalls = []
    for rule in profile["syscalls"]:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if exc.get("arches") and arch in exc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            continue
        if exc.get("caps") and set(exc["caps"]) & caps:
            continue
        if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
            continue
        out: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
        if rule.get("args"):
            out["args"] = [{"index": a["index"], "value": a["value"],
                            "valueTwo": a.get("valueTwo", 0), "op": a["op"]}
                           for a in rule["args"]]
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        syscalls.append(out)
    section: dict[str, Any] = {"defaultAction": profile["defaultAction"],
                               "architectures": arches, "syscalls": syscalls}
    if profile.get("defaultErrnoRet") is not None:
        section["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return section


def _bounding_caps() -> list[str]:
    """Every capability in our own bounding set (what --privileged may grant)."""
    from berth.linux import CAP_LAST_CAP, CAPABILITIES

    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("CapBnd:"))
        mask = int(line.split()[1], 16)
    except (OSError, StopIteration, ValueError):
        mask = (1 << (CAP_LAST_CAP + 1)) - 1
    return [name for name, num in sorted(CAPABILITIES.items(), key=lambda kv: kv[1])
            if num <= CAP_LAST_CAP and mask & (1 << num)]


_HOST_DEV_SKIP = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev", "console"}


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every character and block device under ``root`` as OCI ``linux.devices`` entries
    (what ``--privileged`` gives a container), skipping pts, shm, mqueue and console."""
    import stat

    found: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in _HOST_DEV_SKIP]
        for name in filenames:
            if dirpath == root and name in _HOST_DEV_SKIP:
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            found.append({"path": path, "type": kind, "major": os.major(st.st_rdev),
                          "minor": os.minor(st.st_rdev), "fileMode": st.st_mode & 0o7777,
                          "uid": st.st_uid, "gid": st.st_gid})
    return found


def privileged_spec_changes(spec: dict[str, Any]) -> dict[str, Any]:
    """``docker run --privileged`` applied to ``spec`` (in place; returned too): every
    capability we hold ourselves (a capability missing from our bounding set, such as
    CAP_SYS_RESOURCE on these machines, is left out rather than failing), no seccomp, no
    masked or read-only paths, every host device created and allowed, /sys and
    /sys/fs/cgroup writable."""
    caps = _bounding_caps()
    process = spec.setdefault("process", {})
    process["capabilities"] = {"bounding": list(caps), "effective": list(caps),
                               "permitted": list(caps)}
    lx = spec.setdefault("linux", {})
    lx.pop("seccomp", None)
    lx["maskedPaths"] = []
    lx["readonlyPaths"] = []
    resources = lx.setdefault("resources", {})
    resources["devices"] = [{"allow": True, "access": "rwm"}]
    known = {d.get("path") for d in lx.get("devices") or ()}
    lx["devices"] = [*(lx.get("devices") or ()),
                     *(d for d in host_devices() if d["path"] not in known)]
    for m in spec.get("mounts") or ():
        if m.get("destination") in ("/sys", "/sys/fs/cgroup"):
            m["options"] = [o for o in m.get("options") or () if o != "ro"] + ["rw"]
    return spec


def default_spec(args: list[str], rootfs: str = "rootfs") -> dict[str, Any]:
    """A fresh OCI runtime spec with Docker's defaults, running ``args`` as root."""
    caps = list(DEFAULT_CAPABILITIES)
    return {
        "ociVersion": "1.1.0",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [DEFAULT_PATH_ENV],
            "cwd": "/",
            "capabilities": {
                "bounding": list(caps),
                "effective": list(caps),
                "permitted": list(caps),
            },
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": "",
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [
                {"type": "mount"},
                {"type": "network"},
                {"type": "uts"},
                {"type": "pid"},
                {"type": "ipc"},
            ],
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "sysctl": dict(DEFAULT_SYSCTLS),
            "seccomp": default_seccomp(caps),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
