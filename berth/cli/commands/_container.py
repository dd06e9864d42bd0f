"""What ``run`` and ``create`` share: their flags, the create request they build, and docker's
create flow (pull the image when the daemon says it has none, then create again)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser, append_list
from berth.errors import BerthError
from berth.http.client import APIError

USAGE = "[OPTIONS] IMAGE [COMMAND] [ARG...]"


def configure(p: Parser, *, run: bool) -> None:
    """The flags of ``create`` (and, with ``run``, those only ``run`` has)."""
    if run:
        p.flag("-d", "--detach", action="store_true",
               help="Run container in background and print container ID")
        p.flag("--detach-keys", dest="detach_keys", kind="string",
               help="Override the key sequence for detaching a container")
        p.flag("--sig-proxy", dest="sig_proxy", action="store_true", default=True,
               help="Proxy received signals to the process (default true)")
    append_list(p, "--add-host", dest="add_host", help="Add a custom host-to-IP mapping (host:ip)")
    append_list(p, "-a", "--attach", help="Attach to STDIN, STDOUT or STDERR")
    p.flag("--blkio-weight", dest="blkio_weight", kind="uint16",
           help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
    p.flag("--cpu-period", dest="cpu_period", kind="int",
           help="Limit CPU CFS (Completely Fair Scheduler) period")
    p.flag("--cpu-quota", dest="cpu_quota", kind="int",
           help="Limit CPU CFS (Completely Fair Scheduler) quota")
    p.flag("-c", "--cpu-shares", dest="cpu_shares", kind="int",
           help="CPU shares (relative weight)")
    p.flag("--cpus", kind="decimal", help="Number of CPUs")
    p.flag("--cpuset-cpus", dest="cpuset_cpus", kind="string",
           help="CPUs in which to allow execution (0-3, 0,1)")
    p.flag("--cpuset-mems", dest="cpuset_mems", kind="string",
           help="MEMs in which to allow execution (0-3, 0,1)")
    p.flag("--health-cmd", dest="health_cmd", kind="string",
           help="Command to run to check health")
    p.flag("--health-interval", dest="health_interval", kind="duration",
           help="Time between running the check (ms|s|m|h) (default 0s)")
    p.flag("--health-retries", dest="health_retries", kind="int",
           help="Consecutive failures needed to report unhealthy")
    p.flag("--health-start-interval", dest="health_start_interval", kind="duration",
           help="Time between running the check during the start period (ms|s|m|h) "
                "(default 0s)")
    p.flag("--health-start-period", dest="health_start_period", kind="duration",
           help="Start period for the container to initialize before starting health-retries "
                "countdown (ms|s|m|h) (default 0s)")
    p.flag("--health-timeout", dest="health_timeout", kind="duration",
           help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    append_list(p, "--label-file", dest="label_file",
                help="Read in a line delimited file of labels")
    p.flag("--log-driver", dest="log_driver", kind="string",
           help="Logging driver for the container")
    append_list(p, "--log-opt", dest="log_opt", help="Log driver options")
    p.flag("--memory-reservation", dest="memory_reservation", kind="bytes",
           help="Memory soft limit")
    p.flag("--memory-swap", dest="memory_swap", kind="bytes",
           help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    p.flag("--memory-swappiness", dest="memory_swappiness", kind="int",
           help="Tune container memory swappiness (0 to 100) (default -1)")
    append_list(p, "--mount", help="Attach a filesystem mount to the container")
    p.flag("--no-healthcheck", dest="no_healthcheck", action="store_true",
           help="Disable any container-specified HEALTHCHECK")
    p.flag("--oom-kill-disable", dest="oom_kill_disable", action="store_true",
           help="Disable OOM Killer")
    p.flag("--oom-score-adj", dest="oom_score_adj", kind="int",
           help="Tune host's OOM preferences (-1000 to 1000)")
    p.flag("--pids-limit", dest="pids_limit", kind="int",
           help="Tune container pids limit (set -1 for unlimited)")
    p.flag("--shm-size", dest="shm_size", kind="bytes", help="Size of /dev/shm")
    append_list(p, "--sysctl", help="Sysctl options")
    append_list(p, "--ulimit", help="Ulimit options")
    append_list(p, "--annotation", help="Add an annotation to the container (passed through to "
                                        "the OCI runtime)")
    append_list(p, "--cap-add", dest="cap_add", help="Add Linux capabilities")
    p.flag("--cgroup-parent", dest="cgroup_parent", kind="string",
           help="Optional parent cgroup for the container")
    p.flag("--cgroupns", kind="string", help="Cgroup namespace to use (host|private)")
    p.flag("--cpu-rt-period", dest="cpu_rt_period", kind="int",
           help="Limit CPU real-time period in microseconds")
    p.flag("--cpu-rt-runtime", dest="cpu_rt_runtime", kind="int",
           help="Limit CPU real-time runtime in microseconds")
    append_list(p, "--device", help="Add a host device to the container")
    append_list(p, "--device-cgroup-rule", dest="device_cgroup_rule",
                help="Add a rule to the cgroup allowed devices list")
    p.flag("--disable-content-trust", dest="disable_content_trust", action="store_true",
           default=True, help="Skip image verification (default true)")
    append_list(p, "--dns-option", dest="dns_option", help="Set DNS options")
    append_list(p, "--dns-search", dest="dns_search", help="Set custom DNS search domains")
    p.flag("--domainname", kind="string", help="Container NIS domain name")
    p.flag("--ipc", kind="string", help="IPC mode to use")
    p.flag("--isolation", kind="string", help="Container isolation technology")
    p.flag("--kernel-memory", dest="kernel_memory", kind="bytes",
           help="Kernel memory limit (accepted and ignored, as by API 1.42 and later)")
    append_list(p, "--link", help="Add link to another container")
    p.flag("--pid", kind="string", help="PID namespace to use")
    p.flag("--runtime", kind="string", help="Runtime to use for this container")
    append_list(p, "--storage-opt", dest="storage_opt",
                help="Storage driver options for the container")
    p.flag("--userns", kind="string", help="User namespace to use")
    p.flag("--uts", kind="string", help="UTS namespace to use")
    p.flag("--volume-driver", dest="volume_driver", kind="string",
           help="Optional volume driver for the container")
    append_list(p, "--volumes-from", dest="volumes_from",
                help="Mount volumes from the specified container(s)")
    append_list(p, "--cap-drop", dest="cap_drop", help="Drop Linux capabilities")
    p.flag("--cidfile", kind="string", help="Write the container ID to the file")
    append_list(p, "--dns", help="Set custom DNS servers")
    p.flag("--entrypoint", kind="string", help="Overwrite the default ENTRYPOINT of the image")
    append_list(p, "-e", "--env", help="Set environment variables")
    append_list(p, "--env-file", dest="env_file", help="Read in a file of environment variables")
    append_list(p, "--expose", help="Expose a port or a range of ports")
    append_list(p, "--group-add", dest="group_add", help="Add additional groups to join")
    p.flag("-h", "--hostname", kind="string", help="Container host name")
    p.flag("--init", action="store_true",
           help="Run an init inside the container that forwards signals and reaps processes")
    p.flag("-i", "--interactive", action="store_true",
           help="Keep STDIN open even if not attached")
    append_list(p, "-l", "--label", help="Set meta data on a container")
    p.flag("-m", "--memory", kind="bytes", help="Memory limit")
    p.flag("--name", kind="string", help="Assign a name to the container")
    p.flag("--network", kind="network", help="Connect a container to a network")
    p.flag("--platform", kind="string", help="Set platform if server is multi-platform capable")
    p.flag("--privileged", action="store_true",
           help="Give extended privileges to this container")
    append_list(p, "-p", "--publish", help="Publish a container's port(s) to the host")
    p.flag("-P", "--publish-all", dest="publish_all", action="store_true",
           help="Publish all exposed ports to random ports")
    p.flag("--pull", kind="string", default="missing", choices=("always", "missing", "never"),
           help='Pull image before running ("always", "missing", "never")')
    p.flag("-q", "--quiet", action="store_true", help="Suppress the pull output")
    p.flag("--read-only", dest="read_only", action="store_true",
           help="Mount the container's root filesystem as read only")
    p.flag("--restart", kind="string", default="no",
           help="Restart policy to apply when a container exits")
    p.flag("--rm", action="store_true",
           help="Automatically remove the container and its associated anonymous volumes "
                "when it exits")
    append_list(p, "--security-opt", dest="security_opt", help="Security Options")
    p.flag("--stop-signal", dest="stop_signal", kind="string",
           help="Signal to stop the container")
    p.flag("--stop-timeout", dest="stop_timeout", kind="int", type=int,
           help="Timeout (in seconds) to stop a container")
    append_list(p, "--tmpfs", help="Mount a tmpfs directory")
    p.flag("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.flag("-u", "--user", kind="string",
           help="Username or UID (format: <name|uid>[:<group|gid>])")
    append_list(p, "-v", "--volume", help="Bind mount a volume")
    p.flag("-w", "--workdir", kind="string", help="Working directory inside the container")
    p.command_positionals()


@dataclass
class CreateSpec:
    """The create request: the body of ``POST /containers/create`` and its query."""

    body: dict[str, Any]
    name: str | None = None
    platform: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def image(self) -> str:
        return str(self.body["Image"])


class OptionError(ValueError):
    """A flag's value is wrong. ``flag`` errors are worded as pflag's (with the usage line),
    the others as docker's option validation; both exit 125."""

    def __init__(self, message: str, flag: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.flag = flag

    def status(self, verb: str) -> StatusError:
        if self.flag:
            from berth.cli.parser import flag_error

            return flag_error(self.message, f"berth {verb} {USAGE}", verb)
        return _usage_error(self.message, verb)


def _usage_error(message: str, verb: str) -> StatusError:
    return StatusError(125, f"berth: {message}\n\nRun 'berth {verb} --help' for more information")


def build_spec(args: argparse.Namespace, verb: str, *, detach: bool,
               environ: Mapping[str, str]) -> CreateSpec:
    """Turn the flags into the create request, validating as docker's CLI does."""
    try:
        return _build_spec(args, detach, environ)
    except OptionError as e:
        raise e.status(verb) from None


def _build_spec(args: argparse.Namespace, detach: bool, environ: Mapping[str, str]) -> CreateSpec:
    attach = [a.lower() for a in args.attach]
    for stream in attach:
        if stream not in ("stdin", "stdout", "stderr"):
            raise OptionError(f"invalid argument \"{stream}\" for \"-a, --attach\" flag: "
                              "valid streams are STDIN, STDOUT and STDERR", flag=True)
    if detach and attach:
        raise OptionError("conflicting options: cannot specify both --attach and --detach")
    if detach:
        attach_stdin = attach_stdout = attach_stderr = False
    elif attach:
        attach_stdin = "stdin" in attach
        attach_stdout = "stdout" in attach
        attach_stderr = "stderr" in attach
    else:
        attach_stdin = bool(args.interactive)
        attach_stdout = attach_stderr = True
    if args.rm and args.restart not in ("", "no"):
        raise OptionError("conflicting options: cannot specify both --restart and --rm")

    env = _read_env_files(args.env_file, environ) + [_env_entry(e, environ) for e in args.env]
    labels = _kv_map(_read_label_files(args.label_file) + list(args.label))
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in args.publish:
        for port, binding in _parse_publish(spec):
            exposed[port] = {}
            bindings.setdefault(port, []).append(binding)
    for spec in args.expose:
        for port in _expand_ports(spec):
            exposed[port] = {}
    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in args.volume:
        binds_or_volume = _volume_spec(spec)
        if binds_or_volume is None:
            volumes[spec] = {}
        else:
            binds.append(binds_or_volume)
    tmpfs: dict[str, str] = {}
    for spec in args.tmpfs:
        path, _, options = spec.partition(":")
        tmpfs[path] = options

    entrypoint: list[str] | None = None
    if args.entrypoint is not None:
        entrypoint = [args.entrypoint]

    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "NetworkMode": args.network or "default",
        "PortBindings": bindings or {},
        "RestartPolicy": _restart_policy(args.restart),
        "AutoRemove": bool(args.rm),
        "Privileged": bool(args.privileged),
        "PublishAllPorts": bool(args.publish_all),
        "ReadonlyRootfs": bool(args.read_only),
        "CapAdd": _capabilities(args.cap_add),
        "CapDrop": _capabilities(args.cap_drop),
        "Dns": [_dns(d) for d in args.dns],
        "ExtraHosts": [_extra_host(h) for h in args.add_host] or None,
        "GroupAdd": args.group_add or None,
        "SecurityOpt": _security_opts(args.security_opt) or None,
        "LogConfig": {"Type": args.log_driver or "", "Config": _log_opts(args)},
        "OomKillDisable": bool(args.oom_kill_disable),
    }
    if args.init:
        host_config["Init"] = True
    if tmpfs:
        host_config["Tmpfs"] = tmpfs
    host_config.update(parse_resource_flags(args))
    if args.cpuset_cpus:
        host_config["CpusetCpus"] = args.cpuset_cpus
    if args.cpuset_mems:
        host_config["CpusetMems"] = args.cpuset_mems
    if not host_config.get("PidsLimit"):
        host_config.pop("PidsLimit", None)
    if args.ulimit:
        host_config["Ulimits"] = [parse_ulimit(u) for u in args.ulimit]
    if args.mount:
        host_config["Mounts"] = [parse_mount(m) for m in args.mount]
    for flag_value, field_name in (
            (args.cgroup_parent, "CgroupParent"), (args.cgroupns, "CgroupnsMode"),
            (args.ipc, "IpcMode"), (args.pid, "PidMode"), (args.uts, "UTSMode"),
            (args.userns, "UsernsMode"), (args.runtime, "Runtime"),
            (args.isolation, "Isolation"), (args.volume_driver, "VolumeDriver")):
        if flag_value:
            host_config[field_name] = flag_value
    for values, field_name in ((args.dns_option, "DnsOptions"), (args.dns_search, "DnsSearch"),
                               (args.volumes_from, "VolumesFrom"), (args.link, "Links"),
                               (args.device_cgroup_rule, "DeviceCgroupRules")):
        if values:
            host_config[field_name] = list(values)
    if args.device:
        host_config["Devices"] = [parse_device(d) for d in args.device]
    if args.storage_opt:
        host_config["StorageOpt"] = _kv_map(args.storage_opt)
    if args.annotation:
        host_config["Annotations"] = _kv_map(args.annotation)
    if args.sysctl:
        for item in args.sysctl:
            if "=" not in item:
                raise _bad_flag(item, "--sysctl", f"sysctl '{item}' is not allowed")
        host_config["Sysctls"] = _kv_map(args.sysctl)

    body: dict[str, Any] = {
        "Hostname": args.hostname or "",
        "Domainname": args.domainname or "",
        "User": args.user or "",
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
        "Tty": bool(args.tty),
        "OpenStdin": bool(args.interactive),
        "StdinOnce": bool(args.interactive) and attach_stdin,
        "Env": env or None,
        "Cmd": list(args.command) if args.command else None,
        "Image": args.image,
        "Volumes": volumes,
        "WorkingDir": args.workdir or "",
        "Entrypoint": entrypoint,
        "Labels": labels,
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": {}},
    }
    if exposed:
        body["ExposedPorts"] = exposed
    if args.stop_signal:
        body["StopSignal"] = args.stop_signal
    if args.stop_timeout is not None:
        body["StopTimeout"] = args.stop_timeout
    health = _health_config(args)
    if health is not None:
        body["Healthcheck"] = health
    return CreateSpec(body, name=args.name or None, platform=args.platform or None)


# -- flag values, parsed and worded as docker's CLI does -----------------------------------------

_RESOURCE_FLAGS = (
    # (dest, flag as shown in errors, API field, kind)
    ("memory", "-m, --memory", "Memory", "bytes"),
    ("memory_reservation", "--memory-reservation", "MemoryReservation", "bytes"),
    ("memory_swap", "--memory-swap", "MemorySwap", "swap"),
    ("memory_swappiness", "--memory-swappiness", "MemorySwappiness", "int"),
    ("cpus", "--cpus", "NanoCpus", "decimal"),
    ("cpu_shares", "-c, --cpu-shares", "CpuShares", "int"),
    ("cpu_quota", "--cpu-quota", "CpuQuota", "int"),
    ("cpu_period", "--cpu-period", "CpuPeriod", "int"),
    ("cpu_rt_period", "--cpu-rt-period", "CpuRealtimePeriod", "int"),
    ("cpu_rt_runtime", "--cpu-rt-runtime", "CpuRealtimeRuntime", "int"),
    ("pids_limit", "--pids-limit", "PidsLimit", "int"),
    ("blkio_weight", "--blkio-weight", "BlkioWeight", "uint16"),
    ("shm_size", "--shm-size", "ShmSize", "bytes"),
    ("oom_score_adj", "--oom-score-adj", "OomScoreAdj", "int"),
)


def _bad_flag(value: str, flag: str, why: str) -> OptionError:
    return OptionError(f'invalid argument "{value}" for "{flag}" flag: {why}', flag=True)


def _go_int(value: str, flag: str, bits: int = 64, unsigned: bool = False) -> int:
    """strconv.ParseInt/ParseUint with Go's error text."""
    fn = "ParseUint" if unsigned else "ParseInt"
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" and not unsigned else text
    if not digits.isdigit():
        raise _bad_flag(value, flag, f'strconv.{fn}: parsing "{value}": invalid syntax')
    number = int(text)
    lo, hi = (0, (1 << bits) - 1) if unsigned else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if not lo <= number <= hi:
        raise _bad_flag(value, flag, f'strconv.{fn}: parsing "{value}": value out of range')
    return number


def nano_cpus(value: str) -> int:
    """``--cpus 1.5`` → 1500000000, exact (a rational number, as docker parses it)."""
    from fractions import Fraction

    try:
        cpus = Fraction(value.strip())
    except (ValueError, ZeroDivisionError):
        raise _bad_flag(value, "--cpus", f"failed to parse {value} as a rational number") \
            from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise _bad_flag(value, "--cpus", "value is too precise")
    return int(nano)


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def go_duration_ns(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds; ValueError with Go's message."""
    import re

    quoted = f'"{text}"'
    body = text
    sign = 1
    if body and body[0] in "+-":
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    if body == "0":
        return 0
    if not body:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    pos = 0
    part = re.compile(r"(\d*\.?\d*)([a-zµμ]*)")
    while pos < len(body):
        m = part.match(body, pos)
        if not m or not m.group(1) or m.group(1) == ".":
            raise ValueError(f"time: invalid duration {quoted}")
        if not m.group(2):
            raise ValueError(f"time: missing unit in duration {quoted}")
        if m.group(2) not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{m.group(2)}" in duration {quoted}')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * int(round(total))


def parse_resource_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The resource flags given on the command line, as ``HostConfig``/``UpdateConfig``."""
    out: dict[str, Any] = {}
    for dest, flag, field_name, kind in _RESOURCE_FLAGS:
        value = getattr(args, dest, None)
        if value is None:
            continue
        if kind in ("bytes", "swap"):
            if kind == "swap" and value.strip() == "-1":
                out[field_name] = -1
                continue
            try:
                out[field_name] = ram_in_bytes(value)
            except ValueError as e:
                raise _bad_flag(value, flag, str(e)) from None
        elif kind == "decimal":
            out[field_name] = nano_cpus(value)
        elif kind == "uint16":
            out[field_name] = _go_int(value, flag, 16, unsigned=True)
        else:
            out[field_name] = _go_int(value, flag)
    swappiness = out.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise OptionError(f"invalid value: {swappiness}. Valid memory swappiness range is "
                          "0-100")
    return out


_ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
            "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")


def parse_ulimit(value: str) -> dict[str, Any]:
    """``nofile=1024[:2048]`` → ``{"Name": "nofile", "Soft": 1024, "Hard": 2048}`` (go-units)."""
    name, sep, limits = value.partition("=")
    if not sep:
        raise _bad_flag(value, "--ulimit", f"invalid ulimit argument: {value}")
    if name not in _ULIMITS:
        raise _bad_flag(value, "--ulimit", f"invalid ulimit type: {name}")
    soft_text, colon, hard_text = limits.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if colon else soft
    except ValueError:
        bad = soft_text if not soft_text.lstrip("-").isdigit() else hard_text
        raise _bad_flag(value, "--ulimit",
                        f'strconv.ParseInt: parsing "{bad}": invalid syntax') from None
    if soft > hard:
        raise _bad_flag(value, "--ulimit", f"ulimit soft limit must be less than or equal to "
                                           f"hard limit: {soft} > {hard}")
    return {"Name": name, "Soft": soft, "Hard": hard}


def _parse_bool(text: str) -> bool | None:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    return None


def parse_mount(value: str) -> dict[str, Any]:
    """``--mount type=bind,source=/a,target=/b,readonly`` → a ``Mounts`` entry."""
    import csv

    mount: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] = {}
    volume: dict[str, Any] = {}
    tmpfs: dict[str, Any] = {}

    def bad(why: str) -> OptionError:
        return _bad_flag(value, "--mount", why)

    fields = next(csv.reader([value]), [])
    for item in fields:
        key, sep, val = item.partition("=")
        key = key.strip().lower()
        if not sep and key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            raise bad(f"invalid field '{item}' must be a key=value pair")
        if key == "type":
            mount["Type"] = val
        elif key in ("source", "src"):
            mount["Source"] = val
        elif key in ("target", "dst", "destination"):
            mount["Target"] = val
        elif key in ("readonly", "ro"):
            flag = True if not sep else _parse_bool(val)
            if flag is None:
                raise bad(f"invalid value for {key}: {val}")
            mount["ReadOnly"] = flag
        elif key == "consistency":
            mount["Consistency"] = val
        elif key == "bind-propagation":
            bind["Propagation"] = val
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = True if not sep else bool(_parse_bool(val))
        elif key == "volume-nocopy":
            volume["NoCopy"] = True if not sep else bool(_parse_bool(val))
        elif key == "volume-label":
            k, _, v = val.partition("=")
            volume.setdefault("Labels", {})[k] = v
        elif key == "volume-driver":
            volume.setdefault("DriverConfig", {})["Name"] = val
        elif key == "volume-opt":
            k, _, v = val.partition("=")
            volume.setdefault("DriverConfig", {}).setdefault("Options", {})[k] = v
        elif key == "volume-subpath":
            volume["Subpath"] = val
        elif key == "tmpfs-size":
            try:
                tmpfs["SizeBytes"] = ram_in_bytes(val)
            except ValueError as e:
                raise bad(f"invalid value for {key}: {val}: {e}") from None
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(val, 8)
            except ValueError:
                raise bad(f"invalid value for {key}: {val}") from None
        else:
            raise bad(f"unexpected key '{key}' in '{item}'")
    kind = mount["Type"]
    if not mount.get("Target"):
        raise bad("target is required")
    if bind and kind != "bind":
        raise bad(f"cannot mix 'bind-*' options with mount type '{kind}'")
    if volume and kind != "volume":
        raise bad(f"cannot mix 'volume-*' options with mount type '{kind}'")
    if tmpfs and kind != "tmpfs":
        raise bad(f"cannot mix 'tmpfs-*' options with mount type '{kind}'")
    if bind:
        mount["BindOptions"] = bind
    if volume:
        volume.setdefault("DriverConfig", {})
        mount["VolumeOptions"] = volume
    if tmpfs:
        mount["TmpfsOptions"] = tmpfs
    return mount


def _health_config(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--health-*`` / ``--no-healthcheck`` → ``Healthcheck`` (durations in nanoseconds)."""
    durations: dict[str, int] = {}
    for dest, flag, field_name in (
            ("health_interval", "--health-interval", "Interval"),
            ("health_timeout", "--health-timeout", "Timeout"),
            ("health_start_period", "--health-start-period", "StartPeriod"),
            ("health_start_interval", "--health-start-interval", "StartInterval")):
        value = getattr(args, dest, None)
        if value is None:
            continue
        try:
            durations[field_name] = go_duration_ns(value)
        except ValueError as e:
            raise _bad_flag(value, flag, str(e)) from None
    retries = _go_int(args.health_retries, "--health-retries", 32) \
        if args.health_retries is not None else 0
    have = bool(args.health_cmd) or any(durations.values()) or retries != 0
    if args.no_healthcheck:
        if have:
            raise OptionError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return None
    for field_name, flag in (("Interval", "interval"), ("Timeout", "timeout"),
                             ("StartPeriod", "start-period"),
                             ("StartInterval", "start-interval")):
        if durations.get(field_name, 0) < 0:
            raise OptionError(f"--health-{flag} cannot be negative")
    if retries < 0:
        raise OptionError("--health-retries cannot be negative")
    config: dict[str, Any] = {}
    if args.health_cmd:
        config["Test"] = ["CMD-SHELL", args.health_cmd]
    config.update({k: v for k, v in durations.items() if v})
    if retries:
        config["Retries"] = retries
    return config


def _security_opts(values: list[str]) -> list[str]:
    """docker's ``parseSecurityOpts``: a seccomp profile file is sent as its (compact) JSON."""
    import json

    out = []
    for opt in values:
        key, sep, val = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, val = opt.partition(":")
        if (not sep or not val) and key != "no-new-privileges":
            raise OptionError(f"Invalid --security-opt: {json.dumps(opt)}")
        if key == "seccomp" and val not in ("builtin", "unconfined"):
            try:
                with open(val, encoding="utf-8") as f:
                    profile = json.load(f)
            except OSError as e:
                raise OptionError(f"opening seccomp profile ({val}) failed: open {val}: "
                                  f"{(e.strerror or str(e)).lower()}") from None
            except ValueError as e:
                raise OptionError(f"compacting json for seccomp profile ({val}) failed: "
                                  f"{e}") from None
            opt = "seccomp=" + json.dumps(profile, separators=(",", ":"))
        out.append(opt)
    return out


def _kv_map(values: list[str]) -> dict[str, str]:
    """``k=v`` items to a map; a bare ``k`` maps to "" (docker's ``ConvertKVStringsToMap``)."""
    out: dict[str, str] = {}
    for item in values:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _read_label_files(paths: list[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise OptionError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
        for line in lines:
            text = line.lstrip()
            if text and not text.startswith("#") and "=" in text:
                out.append(text)  # a bare name has no value to pass: dropped, as docker does
    return out


def _check_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def _extra_host(value: str) -> str:
    """``host:ip`` or ``host=ip`` (``host-gateway`` allowed), as docker validates it."""
    name, sep, address = value.partition("=")
    if not sep:
        name, sep, address = value.partition(":")
    if not sep or not name or not (address == "host-gateway" or _check_ip(address)):
        raise _bad_flag(value, "--add-host", f'bad format for add-host: "{value}"')
    return f"{name}:{address}"


def _volume_spec(spec: str) -> str | None:
    """``-v``: a bind or named volume (``src:dst[:opts]``) → its ``Binds`` entry; an anonymous
    volume (``/dst``) → None. A ``./relative`` host path is made absolute, as docker does."""
    parts = spec.split(":")
    if len(parts) == 1:
        return None
    host = parts[0]
    if host == "." or host.startswith("./") or host.startswith(".."):
        host = os.path.abspath(host)
    return ":".join([host, *parts[1:]])


def _capabilities(names: list[str]) -> list[str] | None:
    """docker's ``CapabilitiesNormalize``: upper case, ``CAP_`` prefixed (``ALL`` as is)."""
    out: list[str] = []
    for name in names:
        cap = name.strip().upper()
        if cap != "ALL" and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        if cap not in out:
            out.append(cap)
    return out or None


def parse_device(value: str) -> dict[str, str]:
    """``--device /dev/x[:/dev/y][:rwm]`` → a ``Devices`` entry (docker's ``parseLinuxDevice``)."""
    parts = value.split(":", 3)
    if len(parts) > 3:
        raise _bad_flag(value, "--device", f"invalid device specification: {value}")
    permissions, dst = "rwm", ""
    if len(parts) == 3:
        permissions = parts[2]
    if len(parts) >= 2:
        mode = parts[1]
        if mode and set(mode) <= set("rwm") and len(set(mode)) == len(mode):
            permissions = mode
        else:
            dst = mode
    return {"PathOnHost": parts[0], "PathInContainer": dst or parts[0],
            "CgroupPermissions": permissions}


def _dns(value: str) -> str:
    if not _check_ip(value):
        raise _bad_flag(value, "--dns", f"IP address is not correctly formatted: {value}")
    return value


def _log_opts(args: argparse.Namespace) -> dict[str, str]:
    if args.log_driver == "none" and args.log_opt:
        raise OptionError("invalid logging opts for driver none")
    return _kv_map(args.log_opt)


def _env_entry(item: str, environ: Mapping[str, str]) -> str:
    """``K=V`` as given; a bare ``K`` takes the CLI's own value when it has one (docker's rule)."""
    key, sep, _ = item.partition("=")
    if not key:
        raise OptionError(f"invalid argument \"{item}\" for \"-e, --env\" flag: "
                          f"invalid environment variable: {item}", flag=True)
    if sep:
        return item
    value = environ.get(key)
    return f"{key}={value}" if value is not None else item


def _read_env_files(paths: list[str], environ: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise OptionError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
        for line in lines:
            text = line.lstrip()
            if not text or text.startswith("#"):
                continue
            if "=" in text:
                key, _, value = text.partition("=")
                if not key.strip():
                    raise OptionError(f"invalid environment variable: {text}")
                out.append(f"{key.lstrip()}={value}")
            else:
                name = text.strip()
                if name in environ:  # a bare name not set here is dropped, as docker does
                    out.append(f"{name}={environ[name]}")
    return out


def _restart_policy(text: str) -> dict[str, Any]:
    """``name[:count]``; the name is the daemon's to judge, as with docker's CLI."""
    name, colon, count = (text or "no").partition(":")
    if colon and not name:
        raise OptionError("invalid restart policy format: no policy provided before colon")
    policy: dict[str, Any] = {"Name": name, "MaximumRetryCount": 0}
    if count:
        try:
            policy["MaximumRetryCount"] = int(count)
        except ValueError:
            raise OptionError("invalid restart policy format: maximum retry count must be an "
                              "integer") from None
    return policy


def _port_range(text: str) -> list[int]:
    lo, sep, hi = text.partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
        raise ValueError(text)
    start, end = int(lo), int(hi) if sep else int(lo)
    if end < start or end > 65535:
        raise ValueError(text)
    return list(range(start, end + 1))


def _expand_ports(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    try:
        return [f"{p}/{proto or 'tcp'}" for p in _port_range(port)]
    except ValueError:
        raise OptionError(f"invalid range format for --expose: {spec}") from None


def _parse_publish(spec: str) -> list[tuple[str, dict[str, str]]]:
    """``[ip:][hostPort:]containerPort[/proto]``, ranges allowed, as ``-p`` takes them."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    ip = ""
    if rest.startswith("["):  # [ipv6]:host:container
        end = rest.find("]")
        ip, rest = rest[1:end], rest[end + 2:]
    parts = rest.rsplit(":", 2) if not ip else rest.split(":")
    if len(parts) == 3:
        ip, host, container = parts
    elif len(parts) == 2:
        host, container = parts
    else:
        host, container = "", parts[0]
    try:
        cports = _port_range(container)
        hports = _port_range(host) if host else []
    except ValueError:
        raise OptionError(f"invalid containerPort: {container}") from None
    if hports and len(hports) != len(cports) and len(cports) != 1:
        raise OptionError(f"invalid ranges specified for container and host Ports: "
                          f"{container} and {host}")
    out = []
    for i, cport in enumerate(cports):
        if not hports:
            hport = ""
        elif len(cports) == 1 and len(hports) > 1:
            hport = host  # a host range for one container port: the daemon picks
        else:
            hport = str(hports[i])
        out.append((f"{cport}/{proto}", {"HostIp": ip, "HostPort": hport}))
    return out


_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: ``512m``, ``1.5GiB``, ``100`` (bytes); binary multiples.

    Raises ValueError with go-units' wording (``invalid size: '…'``, ``invalid suffix: '…'``).
    """
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep < 0:
        raise ValueError(f"invalid size: '{text}'")
    number, suffix = (text[:sep + 1], text[sep + 1:]) if text[sep] != " " else \
        (text[:sep], text[sep + 1:])
    try:
        size = float(number)
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    sfx = suffix.lower()
    if not sfx or sfx == "b":
        return int(size)
    if len(sfx) > 3 or sfx[0] not in _BINARY or (len(sfx) == 2 and sfx[1] != "b") or \
            (len(sfx) == 3 and sfx[1:] != "ib"):
        raise ValueError(f"invalid suffix: '{sfx}'")
    return int(size * _BINARY[sfx[0]])


# -- the create flow --------------------------------------------------------------------------


def run_error(error: BaseException, verb: str) -> StatusError:
    """docker's exit codes for run/create failures: 127 command not found, 126 cannot be run,
    else 125; the message prefixed and followed by a pointer to --help."""
    if isinstance(error, APIError):
        message = f"Error response from daemon: {error.message}"
    elif isinstance(error, BerthError):
        message = error.message
    else:
        message = str(error)
    code = 125
    if any(s in message for s in ("executable file not found", "no such file or directory",
                                  "system cannot find the file specified")):
        code = 127
    elif "permission denied" in message or "is a directory" in message:
        code = 126
    return StatusError(code, f"berth: {message}\n\nRun 'berth {verb} --help' for more information")


def create_container(ctx: Context, spec: CreateSpec, *, pull: str = "missing",
                     quiet: bool = False) -> str:
    """Create the container, pulling its image first if needed; return the container id."""
    from berth.cli.commands.pull import pull_image
    from berth.oci.reference import parse_any_reference

    ref = parse_any_reference(spec.image)  # InvalidArgument: run exits 125, create 1
    named = None if isinstance(ref, str) else ref.with_default_tag()
    params = {"name": spec.name, "platform": spec.platform}
    client = ctx.client
    if pull == "always" and named is not None:
        pull_image(ctx, named.familiar(), spec.platform, quiet=quiet)
    try:
        result = client.post_json("/containers/create", params, spec.body)
    except APIError as e:
        if e.status != 404 or named is None or pull != "missing":
            raise
        if not quiet:
            ctx.err(f"Unable to find image '{named.familiar()}' locally")
        pull_image(ctx, named.familiar(), spec.platform, quiet=quiet)
        result = client.post_json("/containers/create", params, spec.body)
    for warning in result.get("Warnings") or []:
        ctx.err(f"WARNING: {warning}")
    return str(result["Id"])


def write_cidfile(path: str, container_id: str) -> None:
    """``--cidfile``: refuse an existing file, as docker does, so two runs cannot share one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise StatusError(125, f"berth: container ID file found, make sure the other container "
                               f"isn't running or delete {path}") from None
    with os.fdopen(fd, "w") as f:
        f.write(container_id)
