"""From a Docker container config and its image to an OCI runtime spec: pure functions.

Creation merges the image's config into the container's once (as Docker stores it), and start
turns the stored record into ``config.json``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from berth.errors import InvalidArgument
from berth.runtime import spec as runtime_spec
from berth.runtime.spec import DEFAULT_CAPABILITIES, default_spec
from berth.runtime.user import ANNOTATION as USER_ANNOTATION

__all__ = ["build_spec", "merge_image_config", "plan_mounts", "resources", "validate_host_config"]

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _env_key(item: str) -> str:
    return item.split("=", 1)[0]


def merge_env(base: list[str], override: list[str]) -> list[str]:
    """Image env first, container env overriding by key, order kept as Docker does."""
    result: dict[str, str] = {}
    for item in list(base) + list(override):
        result[_env_key(item)] = item
    return list(result.values())


def merge_image_config(config: dict[str, Any], image_config: dict[str, Any]) -> dict[str, Any]:
    """The container's Config with the image's defaults filled in (Docker's merge rules)."""
    merged = dict(config)
    user_entrypoint = config.get("Entrypoint")
    user_cmd = config.get("Cmd")
    if isinstance(user_entrypoint, str):
        user_entrypoint = [user_entrypoint]
    if isinstance(user_cmd, str):
        user_cmd = [user_cmd]
    if user_entrypoint is not None and len(user_entrypoint) == 1 and user_entrypoint[0] == "":
        user_entrypoint = []
    if user_entrypoint is None:
        entrypoint = image_config.get("Entrypoint") or []
        cmd = user_cmd if user_cmd else (image_config.get("Cmd") or [])
    else:
        entrypoint = user_entrypoint
        cmd = user_cmd or []
    merged["Entrypoint"] = entrypoint or None
    merged["Cmd"] = cmd or None
    merged["Env"] = merge_env(image_config.get("Env") or [], config.get("Env") or [])
    if not any(_env_key(e) == "PATH" for e in merged["Env"]):
        merged["Env"].insert(0, DEFAULT_PATH)
    if not config.get("WorkingDir"):
        merged["WorkingDir"] = image_config.get("WorkingDir") or ""
    if not config.get("User"):
        merged["User"] = image_config.get("User") or ""
    labels = dict(image_config.get("Labels") or {})
    labels.update(config.get("Labels") or {})
    merged["Labels"] = labels
    exposed = dict(image_config.get("ExposedPorts") or {})
    exposed.update(config.get("ExposedPorts") or {})
    if exposed:
        merged["ExposedPorts"] = exposed
    volumes = dict(image_config.get("Volumes") or {})
    volumes.update(config.get("Volumes") or {})
    if volumes:
        merged["Volumes"] = volumes
    if not config.get("StopSignal") and image_config.get("StopSignal"):
        merged["StopSignal"] = image_config["StopSignal"]
    if not config.get("Healthcheck") and image_config.get("Healthcheck"):
        merged["Healthcheck"] = image_config["Healthcheck"]
    if not (merged["Entrypoint"] or merged["Cmd"]):
        raise InvalidArgument("No command specified")
    return merged


def command_line(config: dict[str, Any]) -> list[str]:
    return list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])


def build_spec(record: dict[str, Any], *, rootfs: str, hostname_path: str, hosts_path: str,
               resolv_path: str, mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The OCI runtime spec for a container record (Docker's defaults plus its config).

    ``--user`` names are resolved by the runtime inside the container, against the image's own
    /etc/passwd and /etc/group as mounted there (see ``berth.runtime.user``).
    """
    config = record["Config"]
    host_config = record.get("HostConfig") or {}
    args = [record["Path"], *record["Args"]]
    spec = default_spec(args, rootfs=rootfs)
    process = spec["process"]
    env = list(config.get("Env") or [])
    if config.get("Tty") and not any(_env_key(e) == "TERM" for e in env):
        env.append("TERM=xterm")
    if not any(_env_key(e) == "HOSTNAME" for e in env):
        env.insert(1 if env and env[0].startswith("PATH=") else 0,
                   f"HOSTNAME={config.get('Hostname') or ''}")
    process["env"] = env
    process["cwd"] = config.get("WorkingDir") or "/"
    process["terminal"] = bool(config.get("Tty"))
    process["user"] = {"uid": 0, "gid": 0}
    spec["hostname"] = config.get("Hostname") or ""
    spec["root"] = {"path": rootfs, "readonly": bool(host_config.get("ReadonlyRootfs"))}
    for dest, source in (("/etc/resolv.conf", resolv_path), ("/etc/hostname", hostname_path),
                         ("/etc/hosts", hosts_path)):
        spec["mounts"].append({"destination": dest, "type": "bind", "source": source,
                               "options": ["rbind", "rprivate"]})
    annotations = spec.setdefault("annotations", {})
    annotations["org.berth.container.id"] = record["Id"]
    annotations[USER_ANNOTATION] = config.get("User") or "0"
    _apply_host_config(spec, record, mounts or [])
    return spec


# -- HostConfig → spec ---------------------------------------------------------------------

_MIN_MEMORY = 6 * 1024 * 1024
_RLIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
            "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as"}
_RESOURCE_INTS = ("Memory", "MemoryReservation", "MemorySwap", "NanoCpus", "CpuShares",
                  "CpuQuota", "CpuPeriod", "BlkioWeight", "PidsLimit", "ShmSize",
                  "KernelMemory", "MemorySwappiness", "CpuRealtimePeriod", "CpuRealtimeRuntime")


def validate_host_config(host_config: dict[str, Any]) -> None:
    """Docker's own checks, with its words, before anything is created."""
    for key in _RESOURCE_INTS:
        value = host_config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidArgument(f"json: cannot unmarshal {type(value).__name__} into Go "
                                  f"struct field HostConfig.{key} of type int64")
    memory = host_config.get("Memory") or 0
    if memory < 0:
        raise InvalidArgument("invalid memory limit: must be a non-negative number")
    if 0 < memory < _MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = host_config.get("MemorySwap") or 0
    if swap > 0 and memory and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if swap > 0 and not memory:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap "
                              "limit, see usage")
    reservation = host_config.get("MemoryReservation") or 0
    if reservation < 0 or (memory and reservation > memory):
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage")
    if (host_config.get("NanoCpus") or 0) < 0:
        raise InvalidArgument("invalid CPU value: must be a positive number")
    if host_config.get("NanoCpus") and (host_config.get("CpuQuota") or
                                        host_config.get("CpuPeriod")):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be "
                              "set")
    if (host_config.get("CpuShares") or 0) < 0 or (host_config.get("CpuQuota") or 0) < 0:
        raise InvalidArgument("invalid CPU value: must be a non-negative number")
    weight = host_config.get("BlkioWeight") or 0
    if weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    if (host_config.get("ShmSize") or 0) < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    policy = host_config.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy: unknown policy '{name}'; use one of "
                              "'no', 'always', 'on-failure', or 'unless-stopped'")
    retries = policy.get("MaximumRetryCount") or 0
    if retries < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if retries and name != "on-failure":
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used "
                              "with 'on-failure'")
    if name != "no" and host_config.get("AutoRemove"):
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    for ulimit in host_config.get("Ulimits") or []:
        if not isinstance(ulimit, dict) or ulimit.get("Name") not in _RLIMITS:
            raise InvalidArgument(f"invalid ulimit: {ulimit!r}")
        if ulimit.get("Soft", 0) > ulimit.get("Hard", 0):
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard "
                                  f"limit: {ulimit['Soft']} > {ulimit['Hard']}")
    for opt in host_config.get("SecurityOpt") or []:
        key, sep, _ = opt.partition("=")
        if key == "no-new-privileges" or opt.startswith("no-new-privileges"):
            continue
        if not sep and ":" not in opt:
            raise InvalidArgument(f"invalid --security-opt 1: {opt!r}")
        if key not in ("seccomp", "label", "apparmor", "systempaths"):
            raise InvalidArgument(f"invalid --security-opt 2: {opt!r}")


def resources(host_config: dict[str, Any]) -> dict[str, Any]:
    """``linux.resources`` from the Resources fields of a HostConfig (zero means unset)."""
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if host_config.get("Memory"):
        memory["limit"] = host_config["Memory"]
        swap = host_config.get("MemorySwap") or 0
        memory["swap"] = swap if swap else 2 * host_config["Memory"]
    elif (host_config.get("MemorySwap") or 0) < 0:
        memory["swap"] = -1
    if host_config.get("MemoryReservation"):
        memory["reservation"] = host_config["MemoryReservation"]
    if host_config.get("OomKillDisable"):
        memory["disableOOMKiller"] = True
    if host_config.get("MemorySwappiness") not in (None, -1):
        memory["swappiness"] = host_config["MemorySwappiness"]
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if host_config.get("CpuShares"):
        cpu["shares"] = host_config["CpuShares"]
    if host_config.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = host_config["NanoCpus"] * 100000 // 1_000_000_000
    if host_config.get("CpuQuota"):
        cpu["quota"] = host_config["CpuQuota"]
    if host_config.get("CpuPeriod"):
        cpu["period"] = host_config["CpuPeriod"]
    if host_config.get("CpusetCpus"):
        cpu["cpus"] = host_config["CpusetCpus"]
    if host_config.get("CpusetMems"):
        cpu["mems"] = host_config["CpusetMems"]
    if cpu:
        out["cpu"] = cpu
    if host_config.get("PidsLimit") and host_config["PidsLimit"] > 0:
        out["pids"] = {"limit": host_config["PidsLimit"]}
    if host_config.get("BlkioWeight"):
        out["blockIO"] = {"weight": host_config["BlkioWeight"]}
    return out


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") or name == "ALL" else "CAP_" + name


def capabilities(host_config: dict[str, Any]) -> list[str]:
    """Docker's default set, with CapAdd then CapDrop applied (``ALL`` in either)."""
    from berth.linux import CAPABILITIES

    every = [str(name) for name in CAPABILITIES]
    if host_config.get("Privileged"):
        return every
    add = [_cap(c) for c in host_config.get("CapAdd") or []]
    drop = [_cap(c) for c in host_config.get("CapDrop") or []]
    caps = list(DEFAULT_CAPABILITIES)
    if "ALL" in add:
        caps = list(every)
    else:
        for cap in add:
            if cap not in every:
                raise InvalidArgument(f"unknown capability: {cap!r}")
            if cap not in caps:
                caps.append(cap)
    if "ALL" in drop:
        caps = [c for c in caps if c in add]
    else:
        for cap in drop:
            if cap not in every:
                raise InvalidArgument(f"unknown capability: {cap!r}")
        caps = [c for c in caps if c not in drop]
    return caps


def _parse_bind(bind: str) -> dict[str, Any]:
    """``src:dst[:opts]`` as Docker reads it: a source with a slash is a host path, otherwise
    a volume name."""
    parts = bind.split(":")
    if len(parts) == 1:
        src, dst, opts = "", parts[0], ""
    elif len(parts) == 2:
        if parts[1].startswith("/"):
            src, dst, opts = parts[0], parts[1], ""
        else:
            src, dst, opts = "", parts[0], parts[1]
    elif len(parts) == 3:
        src, dst, opts = parts
    else:
        raise InvalidArgument(f"invalid volume specification: '{bind}'")
    if not dst.startswith("/"):
        raise InvalidArgument(f"invalid volume specification: '{bind}': invalid mount config: "
                              "mount path must be absolute")
    options = [o for o in opts.split(",") if o]
    rw = "ro" not in options
    propagation = next((o for o in options if o in ("private", "rprivate", "shared", "rshared",
                                                      "slave", "rslave")), "")
    if src.startswith("/"):
        return {"Type": "bind", "Source": src, "Destination": dst, "Mode": opts, "RW": rw,
                "Propagation": propagation or "rprivate"}
    return {"Type": "volume", "Name": src, "Source": "", "Destination": dst, "Driver": "local",
            "Mode": opts or "z", "RW": rw, "Propagation": "",
            "NoCopy": "nocopy" in options}


def plan_mounts(config: dict[str, Any], host_config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every mount point a container asks for, in Docker's MountPoint shape; a volume without
    a name is anonymous and gets one from the volume service."""
    planned: dict[str, dict[str, Any]] = {}
    for dest in config.get("Volumes") or {}:
        planned[dest] = {"Type": "volume", "Name": "", "Source": "", "Destination": dest,
                         "Driver": "local", "Mode": "", "RW": True, "Propagation": ""}
    for bind in host_config.get("Binds") or []:
        if not isinstance(bind, str):
            raise InvalidArgument("json: cannot unmarshal into HostConfig.Binds of type string")
        point = _parse_bind(bind)
        planned[point["Destination"]] = point
    for mount in host_config.get("Mounts") or []:
        if not isinstance(mount, dict):
            raise InvalidArgument("invalid mount config")
        kind = mount.get("Type") or "volume"
        dest = mount.get("Target") or ""
        if not dest.startswith("/"):
            raise InvalidArgument(f"invalid mount config for type \"{kind}\": invalid mount "
                                  f"path: '{dest}' mount path must be absolute")
        rw = not mount.get("ReadOnly")
        if kind == "bind":
            src = mount.get("Source") or ""
            if not src.startswith("/"):
                raise InvalidArgument(f"invalid mount config for type \"bind\": invalid mount "
                                      f"path: '{src}' mount path must be absolute")
            if not os.path.exists(src):
                raise InvalidArgument(f"invalid mount config for type \"bind\": bind source "
                                      f"path does not exist: {src}")
            prop = (mount.get("BindOptions") or {}).get("Propagation") or "rprivate"
            planned[dest] = {"Type": "bind", "Source": src, "Destination": dest, "Mode": "",
                             "RW": rw, "Propagation": prop}
        elif kind == "volume":
            opts = mount.get("VolumeOptions") or {}
            planned[dest] = {"Type": "volume", "Name": mount.get("Source") or "", "Source": "",
                             "Destination": dest, "Driver": "local", "Mode": "z", "RW": rw,
                             "Propagation": "", "NoCopy": bool(opts.get("NoCopy")),
                             "Labels": opts.get("Labels") or {}}
        elif kind == "tmpfs":
            topts = mount.get("TmpfsOptions") or {}
            options = []
            if topts.get("SizeBytes"):
                options.append(f"size={topts['SizeBytes']}")
            if topts.get("Mode"):
                options.append(f"mode={topts['Mode']:o}")
            planned[dest] = {"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": "",
                             "RW": rw, "Propagation": "", "TmpfsOptions": options}
        else:
            raise InvalidArgument(f"mount type unknown: {kind!r}")
    for dest, opts in (host_config.get("Tmpfs") or {}).items():
        if not dest.startswith("/"):
            raise InvalidArgument(f"invalid tmpfs mount path: {dest!r}")
        options = [o for o in (opts or "").split(",") if o]
        planned[dest] = {"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": "",
                         "RW": "ro" not in options, "Propagation": "",
                         "TmpfsOptions": [o for o in options if o not in ("ro", "rw")]}
    return list(planned.values())


def _oci_mount(point: dict[str, Any]) -> dict[str, Any]:
    rw = "rw" if point.get("RW", True) else "ro"
    if point["Type"] == "tmpfs":
        return {"destination": point["Destination"], "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec", rw, *point.get("TmpfsOptions", [])]}
    propagation = point.get("Propagation") or "rprivate"
    return {"destination": point["Destination"], "type": "bind", "source": point["Source"],
            "options": ["rbind", propagation, rw]}


def _apply_host_config(spec: dict[str, Any], record: dict[str, Any],
                       mounts: list[dict[str, Any]]) -> None:
    host_config = record.get("HostConfig") or {}
    config = record["Config"]
    process = spec["process"]
    linux = spec.setdefault("linux", {})
    linux["cgroupsPath"] = f"berth/{record['Id']}"
    res = resources(host_config)
    if res:
        # Merged into Docker's defaults, so the deny-all device rule stays first.
        merged = linux.setdefault("resources", {})
        devices = merged.get("devices", []) + res.pop("devices", [])
        merged.update(res)
        if devices:
            merged["devices"] = devices
    caps = capabilities(host_config)
    process["capabilities"] = {"bounding": list(caps), "effective": list(caps),
                               "permitted": list(caps)}
    shm = host_config.get("ShmSize")
    if shm:
        for m in spec["mounts"]:
            if m["destination"] == "/dev/shm":
                m["options"] = [o for o in m["options"] if not o.startswith("size=")]
                m["options"].append(f"size={shm}")
    rlimits = [{"type": f"RLIMIT_{u['Name'].upper()}", "hard": int(u.get("Hard", 0)),
                "soft": int(u.get("Soft", 0))} for u in host_config.get("Ulimits") or []]
    if rlimits:
        process["rlimits"] = rlimits
    if host_config.get("Sysctls"):
        linux.setdefault("sysctl", {}).update(host_config["Sysctls"])
    gids = []
    for group in host_config.get("GroupAdd") or []:
        if not str(group).isdigit():
            raise InvalidArgument(f"Unable to find group {group}: only numeric groups are "
                                  "supported")
        gids.append(int(group))
    if gids:
        process["user"]["additionalGids"] = gids
        spec.setdefault("annotations", {})["io.berth.groups"] = ",".join(map(str, gids))
    if host_config.get("Init"):
        spec.setdefault("annotations", {})["io.berth.init"] = "true"
    for opt in host_config.get("SecurityOpt") or []:
        key, _, value = (opt if "=" in opt else opt.replace(":", "=", 1)).partition("=")
        if key == "no-new-privileges" and value in ("", "true"):
            process["noNewPrivileges"] = True
        elif key == "seccomp":
            if value == "unconfined":
                linux.pop("seccomp", None)
                spec["annotations"]["io.berth.seccomp"] = "unconfined"
            else:
                try:
                    linux["seccomp"] = json.loads(value)
                except ValueError:
                    raise InvalidArgument("Decoding seccomp profile failed: invalid JSON"
                                          ) from None
    if host_config.get("Privileged"):
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
        for m in spec["mounts"]:
            if m["destination"] == "/sys":
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
        lift = getattr(runtime_spec, "privileged_spec_changes", None)
        if lift is not None:
            lift(spec)
        else:
            linux.pop("seccomp", None)
    taken = {m["Destination"] for m in mounts}
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] not in taken or
                      m["destination"] in ("/proc", "/dev", "/sys")]
    for point in sorted(mounts, key=lambda p: p["Destination"].count("/")):
        spec["mounts"].append(_oci_mount(point))
    if config.get("StopSignal"):
        spec["annotations"]["io.berth.stop-signal"] = config["StopSignal"]
