"""Control groups for a container: placement, limits from ``linux.resources``, freezing,
statistics and removal.

One container has one relative path (``linux.cgroupsPath``, e.g. ``berth/<id>``), taken
relative to the root of every hierarchy: cgroup v1 (one mount per controller, as on these
machines: memory, cpu, cpuacct, cpuset, pids, blkio, devices, freezer), or the unified v2
hierarchy when ``/sys/fs/cgroup`` itself is cgroup2. The creator makes the directories and
writes the limits before anything is forked; init joins them itself by writing ``0`` to each
``cgroup.procs`` before it does anything else (so even its rootfs work is accounted), and
only then unshares a cgroup namespace, whose root is thereby the container's cgroup.

The plan (``Cgroup``) is plain data kept in the runtime's ``state.json``, so ``delete``,
``pause`` and the shim's ``stats`` work from any process.
"""

from __future__ import annotations

import errno
import os
import time

from berth.errors import Conflict, InvalidArgument, Unavailable
from berth.util import suppress

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    from typing import Any

ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer")

# The device rules every container gets after the spec's own, as runc adds them: mknod of
# anything, and the nodes created in /dev (null, zero, full, random, urandom, tty, console,
# ptmx, the pts slaves) plus tun.
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
)

_USER_HZ = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # three system calls; open() makes seven
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode().strip()


def join_self(directory: str) -> None:
    """Move the calling, single-threaded process into the cgroup at ``directory``.

    A v1 ``cgroup.procs`` write (and any write naming another pid) takes the kernel's global
    threadgroup lock, whose first writer after a quiet spell waits out an RCU grace period:
    5 to 25 ms here, more than the rest of a container's creation. Writing ``0`` to
    ``tasks`` moves only the calling thread and skips that lock; with one thread it is the
    same move. v2 has no ``tasks``: ``cgroup.procs`` there.
    """
    try:
        fd = os.open(os.path.join(directory, "tasks"), os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = os.open(os.path.join(directory, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)


def _read_int(path: str, default: int = 0) -> int:
    try:
        text = _read(path)
    except OSError:
        return default
    if text == "max":
        return default
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return default


def _write(path: str, value: str | int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OSError(e.errno, f"writing {value!r}: {e.strerror}", path) from None
    try:
        _write_fd(fd, path, value)
    finally:
        os.close(fd)


def _write_fd(fd: int, path: str, value: str | int) -> None:
    """One write: the kernel takes each write to a cgroup file as one value or rule."""
    try:
        os.write(fd, str(value).encode())
    except OSError as e:
        raise OSError(e.errno, f"writing {value!r}: {e.strerror}", path) from None


_mounted: list[tuple[str, str, str, list[str]]] | None = None


def mounted_hierarchies() -> list[tuple[str, str, str, list[str]]]:
    """(cgroup or cgroup2, root, mount point, super options) of every cgroup mount in our
    mountinfo.

    Read once per process: hierarchies are mounted at boot and stay. ``create`` reads it
    before forking init, which needs it for the container's /sys/fs/cgroup, and the
    launcher's warm-up container fills it for every shim the launcher forks.
    """
    global _mounted
    if _mounted is None:
        try:
            with open("/proc/self/mountinfo", "rb") as f:
                text = f.read().decode(errors="surrogateescape")
        except OSError:
            return []
        found = []
        for line in text.splitlines():
            left, _, right = line.partition(" - ")
            rparts = right.split()
            if len(rparts) < 3 or rparts[0] not in ("cgroup", "cgroup2"):
                continue
            lparts = left.split()
            found.append((rparts[0], lparts[3], lparts[4], rparts[2].split(",")))
        _mounted = found
    return _mounted


def _v1_mounts() -> dict[str, str]:
    """controller -> mount point of its v1 hierarchy."""
    found: dict[str, str] = {}
    for fstype, _root, mountpoint, options in mounted_hierarchies():
        if fstype == "cgroup":
            for opt in options:
                if opt in V1_CONTROLLERS:
                    found.setdefault(opt, mountpoint)
    return found


def _clean_relative(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise InvalidArgument(f"linux.cgroupsPath: bad path {path!r}")
    return "/".join(parts)


class Cgroup:
    """Where a container's cgroup is, per controller (v1) or once (v2, key ``""``)."""

    def __init__(self, path: str, version: int = 1, dirs: dict[str, str] | None = None
                 ) -> None:
        self.path = path
        self.version = version
        self.dirs = dirs or {}

    @classmethod
    def for_path(cls, cgroups_path: str) -> Cgroup:
        rel = _clean_relative(cgroups_path)
        if os.path.exists(os.path.join(ROOT, "cgroup.controllers")):
            return cls(rel, 2, {"": os.path.join(ROOT, rel)})
        mounts = _v1_mounts()
        dirs = {c: os.path.join(mounts[c], rel) for c in V1_CONTROLLERS if c in mounts}
        if not dirs:
            raise Unavailable("cgroups: no cgroup hierarchy is mounted")
        return cls(rel, 1, dirs)

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> Cgroup | None:
        if not doc:
            return None
        return cls(str(doc["path"]), int(doc.get("version", 1)), dict(doc["dirs"]))

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "version": self.version, "dirs": dict(self.dirs)}

    def unique_dirs(self) -> list[str]:
        return sorted(set(self.dirs.values()))

    def _file(self, controller: str, name: str) -> str | None:
        d = self.dirs.get("" if self.version == 2 else controller)
        return None if d is None else os.path.join(d, name)

    # ---- lifecycle ------------------------------------------------------------------

    def create(self) -> None:
        """Make the directories (parents too); cpuset levels start with their parent's
        cpus and mems, since an empty cpuset admits no task."""
        for controller, d in sorted(self.dirs.items()):
            self._mkdirs(d, controller == "cpuset")
        if self.version == 2:
            self._enable_v2_controllers()

    def _mkdirs(self, d: str, cpuset: bool) -> None:
        """``mkdir -p``, trying the directory itself first (its parent usually exists)."""
        for _ in range(20):
            try:
                os.mkdir(d, 0o755)
                break
            except FileExistsError:
                return
            except FileNotFoundError:  # no parent yet, or one removed by a racing delete
                self._mkdirs(os.path.dirname(d), cpuset)
        else:
            os.mkdir(d, 0o755)  # still failing: raise what it raises
        if cpuset:
            parent = os.path.dirname(d)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not _read(os.path.join(d, name)):
                    _write(os.path.join(d, name), _read(os.path.join(parent, name)))

    def _enable_v2_controllers(self) -> None:
        cur = ROOT
        for part in self.path.split("/"):
            with suppress(OSError):
                ctrls = _read(os.path.join(cur, "cgroup.controllers")).split()
                _write(os.path.join(cur, "cgroup.subtree_control"),
                       " ".join("+" + c for c in ctrls))
            cur = os.path.join(cur, part)

    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.unique_dirs()]

    def join(self, pid: int = 0) -> None:
        """Move ``pid`` (0: the caller) into every hierarchy."""
        for path in self.procs_files():
            _write(path, pid)

    def pids(self) -> list[int]:
        """Host pids of every process in the container."""
        for controller in ("pids", "memory", "freezer", "cpu", ""):
            path = self._file(controller, "cgroup.procs")
            if path is None:
                continue
            with suppress(OSError):
                return [int(n) for n in _read(path).split()]
        return []

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove the container's own directories.

        Parents stay, as runc leaves them: a shared parent (``berth``) removed while another
        container is being placed under it makes that placement fail (ENOENT/ENODEV)."""
        deadline = time.monotonic() + timeout
        for d in self.unique_dirs():
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise OSError(e.errno, f"removing cgroup: {e.strerror}", d) from None
                    time.sleep(0.005)

    # ---- limits ---------------------------------------------------------------------

    def apply(self, resources: dict[str, Any] | None, *, devices: bool = True) -> None:
        """Write ``linux.resources`` (OCI) into the cgroup; live changes use the same call."""
        res = resources or {}
        if self.version == 2:
            self._apply_v2(res)
            return
        mem = res.get("memory") or {}
        if mem:
            self._apply_memory_v1(mem)
        cpu = res.get("cpu") or {}
        if cpu:
            self._apply_cpu_v1(cpu)
        pids = res.get("pids") or {}
        if "limit" in pids and self._file("pids", "pids.max"):
            limit = int(pids["limit"])
            _write(self._file("pids", "pids.max") or "", "max" if limit <= 0 else limit)
        blkio = res.get("blockIO") or {}
        if blkio:
            self._apply_blkio_v1(blkio)
        if devices and self._file("devices", "devices.allow"):
            self._apply_devices_v1(res.get("devices"))

    def _apply_memory_v1(self, mem: dict[str, Any]) -> None:
        f = self._file
        if mem.get("reservation") is not None:
            _write(f("memory", "memory.soft_limit_in_bytes") or "", int(mem["reservation"]))
        limit, swap = mem.get("limit"), mem.get("swap")
        writes: list[tuple[str, int]] = []
        if limit is not None:
            writes.append(("memory.limit_in_bytes", int(limit)))
        memsw = f("memory", "memory.memsw.limit_in_bytes")
        if swap is not None and memsw and os.path.exists(memsw):
            writes.append(("memory.memsw.limit_in_bytes", int(swap)))
        # memsw must stay >= limit at every step: try one order, then the other.
        try:
            for name, value in writes:
                _write(f("memory", name) or "", value)
        except OSError:
            for name, value in reversed(writes):
                _write(f("memory", name) or "", value)
        if mem.get("swappiness") is not None and 0 <= int(mem["swappiness"]) <= 100:
            with suppress(OSError):
                _write(f("memory", "memory.swappiness") or "", int(mem["swappiness"]))
        if mem.get("disableOOMKiller"):
            _write(f("memory", "memory.oom_control") or "", 1)

    def _apply_cpu_v1(self, cpu: dict[str, Any]) -> None:
        f = self._file
        if cpu.get("shares"):
            _write(f("cpu", "cpu.shares") or "", int(cpu["shares"]))
        if cpu.get("period"):
            _write(f("cpu", "cpu.cfs_period_us") or "", int(cpu["period"]))
        if cpu.get("quota") is not None and int(cpu["quota"]) != 0:
            _write(f("cpu", "cpu.cfs_quota_us") or "", int(cpu["quota"]))
        if cpu.get("realtimePeriod"):
            _write(f("cpu", "cpu.rt_period_us") or "", int(cpu["realtimePeriod"]))
        if cpu.get("realtimeRuntime"):
            _write(f("cpu", "cpu.rt_runtime_us") or "", int(cpu["realtimeRuntime"]))
        if cpu.get("cpus"):
            _write(f("cpuset", "cpuset.cpus") or "", cpu["cpus"])
        if cpu.get("mems"):
            _write(f("cpuset", "cpuset.mems") or "", cpu["mems"])

    def _apply_blkio_v1(self, blkio: dict[str, Any]) -> None:
        if blkio.get("weight"):
            for name in ("blkio.weight", "blkio.bfq.weight"):
                path = self._file("blkio", name)
                if path and os.path.exists(path):
                    _write(path, int(blkio["weight"]))
                    break
        for key, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                          ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                          ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                          ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
            for dev in blkio.get(key) or ():
                _write(self._file("blkio", name) or "",
                       f"{dev['major']}:{dev['minor']} {dev['rate']}")

    def _apply_devices_v1(self, rules: list[dict[str, Any]] | None) -> None:
        allow = self._file("devices", "devices.allow") or ""
        deny = self._file("devices", "devices.deny") or ""
        rules = list(rules or ())
        if not any(device_rule(r) == "a" for r in rules):
            # Rules that do not say where to start start from nothing allowed: a spec whose
            # resources leave out Docker's deny-all must not get every device.
            rules.insert(0, {"allow": False, "access": "rwm"})
        lines = [(allow if rule.get("allow") else deny, device_rule(rule))
                 for rule in [*rules, *DEFAULT_DEVICE_RULES]]
        fds: dict[str, int] = {}  # each file opened once for its dozen rules
        try:
            for path, line in lines:
                if path not in fds:
                    try:
                        fds[path] = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                    except OSError as e:
                        raise OSError(e.errno, f"writing {line!r}: {e.strerror}", path
                                      ) from None
                _write_fd(fds[path], path, line)
        finally:
            for fd in fds.values():
                os.close(fd)

    def _apply_v2(self, res: dict[str, Any]) -> None:
        f = self._file
        mem = res.get("memory") or {}
        if mem.get("limit") is not None:
            limit = int(mem["limit"])
            _write(f("", "memory.max") or "", "max" if limit < 0 else limit)
            if mem.get("swap") is not None and int(mem["swap"]) >= 0 and limit >= 0:
                _write(f("", "memory.swap.max") or "", max(0, int(mem["swap"]) - limit))
        if mem.get("reservation") is not None:
            _write(f("", "memory.low") or "", int(mem["reservation"]))
        cpu = res.get("cpu") or {}
        if cpu.get("shares"):
            weight = 1 + ((int(cpu["shares"]) - 2) * 9999) // 262142
            _write(f("", "cpu.weight") or "", weight)
        if cpu.get("quota") or cpu.get("period"):
            quota = int(cpu.get("quota") or 0)
            _write(f("", "cpu.max") or "",
                   f"{quota if quota > 0 else 'max'} {int(cpu.get('period') or 100000)}")
        if cpu.get("cpus"):
            _write(f("", "cpuset.cpus") or "", cpu["cpus"])
        if cpu.get("mems"):
            _write(f("", "cpuset.mems") or "", cpu["mems"])
        pids = res.get("pids") or {}
        if "limit" in pids:
            limit = int(pids["limit"])
            _write(f("", "pids.max") or "", "max" if limit <= 0 else limit)
        blkio = res.get("blockIO") or {}
        if blkio.get("weight"):
            with suppress(OSError):
                _write(f("", "io.weight") or "", int(blkio["weight"]))

    # ---- freezer --------------------------------------------------------------------

    def freeze(self, timeout: float = 5.0) -> None:
        self._set_frozen(True, timeout)

    def thaw(self, timeout: float = 5.0) -> None:
        self._set_frozen(False, timeout)

    def _set_frozen(self, frozen: bool, timeout: float) -> None:
        if self.version == 2:
            path = self._file("", "cgroup.freeze") or ""
            _write(path, 1 if frozen else 0)
            return
        path = self._file("freezer", "freezer.state")
        if path is None:
            raise Unavailable("cgroups: no freezer hierarchy")
        want = "FROZEN" if frozen else "THAWED"
        deadline = time.monotonic() + timeout
        while True:
            _write(path, want)
            if _read(path) == want:
                return
            if time.monotonic() > deadline:
                _write(path, "THAWED")
                raise Unavailable(f"cgroups: the container did not become {want.lower()}")
            time.sleep(0.001)

    def is_frozen(self) -> bool:
        if self.version == 2:
            path = self._file("", "cgroup.freeze")
            return bool(path) and _read_int(path or "") == 1
        path = self._file("freezer", "freezer.state")
        try:
            return path is not None and _read(path) in ("FROZEN", "FREEZING")
        except OSError:
            return False

    # ---- events and statistics -------------------------------------------------------

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer took from this cgroup."""
        if self.version == 2:
            return _kv(self._file("", "memory.events") or "").get("oom_kill", 0)
        path = self._file("memory", "memory.oom_control")
        if path is None:
            return 0
        return _kv(path).get("oom_kill", 0)

    def stats(self) -> dict[str, Any]:
        """Docker's Engine API stats sub-objects (cgroup v1 field names)."""
        if self.version == 2:
            return self._stats_v2()
        f = self._file
        percpu = []
        with suppress(OSError):
            percpu = [int(n) for n in _read(f("cpuacct", "cpuacct.usage_percpu") or "").split()]
        acct = _kv(f("cpuacct", "cpuacct.stat") or "")
        tick_ns = 1_000_000_000 // _USER_HZ
        cpu_stat = _kv(f("cpu", "cpu.stat") or "")
        memory_stat = _kv(f("memory", "memory.stat") or "")
        pids_max = _read_int(f("pids", "pids.max") or "", 0)
        return {
            "cpu_stats": {
                "cpu_usage": {
                    "total_usage": _read_int(f("cpuacct", "cpuacct.usage") or ""),
                    "percpu_usage": percpu,
                    "usage_in_kernelmode": acct.get("system", 0) * tick_ns,
                    "usage_in_usermode": acct.get("user", 0) * tick_ns,
                },
                "system_cpu_usage": system_cpu_usage(),
                "online_cpus": os.sysconf("SC_NPROCESSORS_ONLN"),
                "throttling_data": {
                    "periods": cpu_stat.get("nr_periods", 0),
                    "throttled_periods": cpu_stat.get("nr_throttled", 0),
                    "throttled_time": cpu_stat.get("throttled_time", 0),
                },
            },
            "memory_stats": {
                "usage": _read_int(f("memory", "memory.usage_in_bytes") or ""),
                "max_usage": _read_int(f("memory", "memory.max_usage_in_bytes") or ""),
                "limit": _read_int(f("memory", "memory.limit_in_bytes") or ""),
                "failcnt": _read_int(f("memory", "memory.failcnt") or ""),
                "stats": memory_stat,
            },
            "pids_stats": {"current": _read_int(f("pids", "pids.current") or ""),
                           "limit": pids_max},
            "blkio_stats": {
                "io_service_bytes_recursive": self._blkio("io_service_bytes_recursive"),
                "io_serviced_recursive": self._blkio("io_serviced_recursive"),
            },
        }

    def _blkio(self, name: str) -> list[dict[str, Any]]:
        for prefix in ("blkio.", "blkio.throttle.", "blkio.bfq."):
            path = self._file("blkio", prefix + name)
            if path is None or not os.path.exists(path):
                continue
            entries = _blkio_entries(path)
            if entries or prefix == "blkio.bfq.":
                return entries
        return []

    def _stats_v2(self) -> dict[str, Any]:
        f = self._file
        cpu = _kv(f("", "cpu.stat") or "")
        mem = _kv(f("", "memory.stat") or "")
        return {
            "cpu_stats": {
                "cpu_usage": {"total_usage": cpu.get("usage_usec", 0) * 1000,
                              "usage_in_kernelmode": cpu.get("system_usec", 0) * 1000,
                              "usage_in_usermode": cpu.get("user_usec", 0) * 1000},
                "system_cpu_usage": system_cpu_usage(),
                "online_cpus": os.sysconf("SC_NPROCESSORS_ONLN"),
                "throttling_data": {"periods": cpu.get("nr_periods", 0),
                                    "throttled_periods": cpu.get("nr_throttled", 0),
                                    "throttled_time": cpu.get("throttled_usec", 0) * 1000},
            },
            "memory_stats": {"usage": _read_int(f("", "memory.current") or ""),
                             "limit": _read_int(f("", "memory.max") or ""),
                             "stats": mem},
            "pids_stats": {"current": _read_int(f("", "pids.current") or ""),
                           "limit": _read_int(f("", "pids.max") or "")},
            "blkio_stats": {"io_service_bytes_recursive": [], "io_serviced_recursive": []},
        }


def device_rule(rule: dict[str, Any]) -> str:
    """An OCI device rule as a devices.allow/deny line (``c 1:3 rwm``; ``a`` for all)."""
    kind = rule.get("type") or "a"
    access = rule.get("access") or "rwm"
    if kind == "a" and rule.get("major") in (None, -1) and rule.get("minor") in (None, -1):
        return "a"
    if kind not in ("a", "c", "b"):
        raise InvalidArgument(f"linux.resources.devices: bad type {kind!r}")
    if not access or set(access) - set("rwm"):
        raise InvalidArgument(f"linux.resources.devices: bad access {access!r}")
    major = rule.get("major")
    minor = rule.get("minor")
    ma = "*" if major in (None, -1) else str(int(major))
    mi = "*" if minor in (None, -1) else str(int(minor))
    return f"{kind} {ma}:{mi} {access}"


def _kv(path: str) -> dict[str, int]:
    """``key value`` lines as a dict of ints (memory.stat, cpu.stat, oom_control)."""
    out: dict[str, int] = {}
    try:
        text = _read(path)
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            with suppress(ValueError):
                out[parts[0]] = int(parts[1])
    return out


def _blkio_entries(path: str) -> list[dict[str, Any]]:
    entries = []
    try:
        text = _read(path)
    except OSError:
        return entries
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        entries.append({"major": int(major), "minor": int(minor), "op": parts[1],
                        "value": int(parts[2])})
    return entries


def system_cpu_usage() -> int:
    """The host's total CPU time in nanoseconds, from /proc/stat (as Docker computes it)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                ticks = sum(int(n) for n in line.split()[1:8])
                return ticks * (1_000_000_000 // _USER_HZ)
    return 0


def check_paused(cg: Cgroup | None) -> None:
    if cg is not None and cg.is_frozen():
        raise Conflict("container is paused")
