"""Flag values read the way the docker CLI reads them, worded as it words their errors.

Sizes (go-units ``RAMInBytes``), Go durations, ``--cpus`` as an exact rational, integers with
``strconv``'s messages, ulimits, ``--mount`` CSV, devices, ports, security options, env and
label files. Shared by ``run``/``create``, ``update`` and ``exec``.
"""

from __future__ import annotations

import os

from berth.cli.context import StatusError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping
    from typing import Any

    from berth.cli.parser import Parser
    from berth.util.flags import Namespace


class OptionError(ValueError):
    """A flag's value is wrong. ``flag`` errors are worded as pflag's (with the usage line),
    the others as docker's option validation; both exit 125."""

    def __init__(self, message: str, flag: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.flag = flag

    def status(self, verb: str, usage: str) -> StatusError:
        """The error to exit with: pflag's words and the usage line, or docker's own."""
        if self.flag:
            from berth.cli.parser import flag_error

            return flag_error(self.message, f"berth {verb} {usage}", verb)
        return StatusError(125, f"berth: {self.message}\n\n"
                                f"Run 'berth {verb} --help' for more information")


# The resource flags of run/create, ``update`` taking some of them: (names, kind, API field,
# help). The kind says how the value is read and is what the help shows, but for "swap" (shown
# as bytes; "-1" means unlimited) and "string" (kept as given, dropped when empty).
RESOURCE_FLAGS = (
    (("-m", "--memory"), "bytes", "Memory", "Memory limit"),
    (("--memory-reservation",), "bytes", "MemoryReservation", "Memory soft limit"),
    (("--memory-swap",), "swap", "MemorySwap",
     "Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    (("--memory-swappiness",), "int", "MemorySwappiness",
     "Tune container memory swappiness (0 to 100) (default -1)"),
    (("--cpus",), "decimal", "NanoCpus", "Number of CPUs"),
    (("-c", "--cpu-shares"), "int", "CpuShares", "CPU shares (relative weight)"),
    (("--cpu-quota",), "int", "CpuQuota", "Limit CPU CFS (Completely Fair Scheduler) quota"),
    (("--cpu-period",), "int", "CpuPeriod", "Limit CPU CFS (Completely Fair Scheduler) period"),
    (("--cpu-rt-period",), "int", "CpuRealtimePeriod",
     "Limit CPU real-time period in microseconds"),
    (("--cpu-rt-runtime",), "int", "CpuRealtimeRuntime",
     "Limit CPU real-time runtime in microseconds"),
    (("--cpuset-cpus",), "string", "CpusetCpus", "CPUs in which to allow execution (0-3, 0,1)"),
    (("--cpuset-mems",), "string", "CpusetMems", "MEMs in which to allow execution (0-3, 0,1)"),
    (("--pids-limit",), "int", "PidsLimit", "Tune container pids limit (set -1 for unlimited)"),
    (("--blkio-weight",), "uint16", "BlkioWeight",
     "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)"),
    (("--shm-size",), "bytes", "ShmSize", "Size of /dev/shm"),
    (("--oom-score-adj",), "int", "OomScoreAdj", "Tune host's OOM preferences (-1000 to 1000)"),
    (("--cpu-count",), "int", "CpuCount", "CPU count (Windows only)"),
    (("--cpu-percent",), "int", "CpuPercent", "CPU percent (Windows only)"),
    (("--io-maxbandwidth",), "bytes", "IOMaximumBandwidth",
     "Maximum IO bandwidth limit for the system drive (Windows only)"),
    (("--io-maxiops",), "uint", "IOMaximumIOps",
     "Maximum IOps limit for the system drive (Windows only)"),
)


def dest_of(flag: str) -> str:
    """The attribute a long flag's value lands in (``--cpu-rt-period`` → ``cpu_rt_period``)."""
    return flag[2:].replace("-", "_")


def add_resource_flags(p: Parser, only: Collection[str] | None = None,
                       wording: Mapping[str, str] | None = None) -> None:
    """Declare the resource flags (those whose long name is in ``only``, when given), with
    ``wording`` replacing the help of some (docker's ``update`` words a few differently)."""
    for names, kind, _, text in RESOURCE_FLAGS:
        if only is None or names[-1] in only:
            p.flag(*names, kind="bytes" if kind == "swap" else kind,
                   help=(wording or {}).get(names[-1], text))


def bad_flag(value: str, flag: str, why: str) -> OptionError:
    return OptionError(f'invalid argument "{value}" for "{flag}" flag: {why}', flag=True)


def go_int(value: str, flag: str, bits: int = 64, unsigned: bool = False) -> int:
    """strconv.ParseInt/ParseUint with Go's error text."""
    fn = "ParseUint" if unsigned else "ParseInt"
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" and not unsigned else text
    if not digits.isdigit():
        raise bad_flag(value, flag, f'strconv.{fn}: parsing "{value}": invalid syntax')
    number = int(text)
    lo, hi = (0, (1 << bits) - 1) if unsigned else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if not lo <= number <= hi:
        raise bad_flag(value, flag, f'strconv.{fn}: parsing "{value}": value out of range')
    return number


def nano_cpus(value: str) -> int:
    """``--cpus 1.5`` → 1500000000, exact (a rational number, as docker parses it)."""
    from fractions import Fraction

    try:
        cpus = Fraction(value.strip())
    except (ValueError, ZeroDivisionError):
        raise bad_flag(value, "--cpus", f"failed to parse {value} as a rational number") \
            from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise bad_flag(value, "--cpus", "value is too precise")
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


def parse_resource_flags(args: Namespace) -> dict[str, Any]:
    """The resource flags given on the command line, as ``HostConfig``/``UpdateConfig`` fields
    (a zero ``PidsLimit`` left out: it would mean "unlimited" to the daemon)."""
    out: dict[str, Any] = {}
    for names, kind, field_name, _ in RESOURCE_FLAGS:
        value = getattr(args, dest_of(names[-1]), None)
        if value is None:
            continue
        flag = ", ".join(names)
        if kind == "string":
            if value:
                out[field_name] = value
        elif kind == "swap" and value.strip() == "-1":
            out[field_name] = -1
        elif kind in ("bytes", "swap"):
            try:
                out[field_name] = ram_in_bytes(value)
            except ValueError as e:
                raise bad_flag(value, flag, str(e)) from None
        elif kind == "decimal":
            out[field_name] = nano_cpus(value)
        elif kind == "uint16":
            out[field_name] = go_int(value, flag, 16, unsigned=True)
        elif kind == "uint":
            out[field_name] = go_int(value, flag, 64, unsigned=True)
        else:
            out[field_name] = go_int(value, flag)
    if not out.get("PidsLimit"):
        out.pop("PidsLimit", None)
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
        raise bad_flag(value, "--ulimit", f"invalid ulimit argument: {value}")
    if name not in _ULIMITS:
        raise bad_flag(value, "--ulimit", f"invalid ulimit type: {name}")
    soft_text, colon, hard_text = limits.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if colon else soft
    except ValueError:
        bad = soft_text if not soft_text.lstrip("-").isdigit() else hard_text
        raise bad_flag(value, "--ulimit",
                        f'strconv.ParseInt: parsing "{bad}": invalid syntax') from None
    if soft > hard:
        raise bad_flag(value, "--ulimit", f"ulimit soft limit must be less than or equal to "
                                           f"hard limit: {soft} > {hard}")
    return {"Name": name, "Soft": soft, "Hard": hard}


def parse_bool(text: str) -> bool | None:
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
        return bad_flag(value, "--mount", why)

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
            flag = True if not sep else parse_bool(val)
            if flag is None:
                raise bad(f"invalid value for {key}: {val}")
            mount["ReadOnly"] = flag
        elif key == "consistency":
            mount["Consistency"] = val
        elif key == "bind-propagation":
            bind["Propagation"] = val
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = True if not sep else bool(parse_bool(val))
        elif key == "volume-nocopy":
            volume["NoCopy"] = True if not sep else bool(parse_bool(val))
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


def health_config(args: Namespace) -> dict[str, Any] | None:
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
            raise bad_flag(value, flag, str(e)) from None
    retries = go_int(args.health_retries, "--health-retries", 32) \
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


def security_opts(values: list[str]) -> list[str]:
    """docker's ``parseSecurityOpts``: a seccomp profile file is sent as its (compact) JSON."""
    if not values:
        return []
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


def kv_map(values: list[str]) -> dict[str, str]:
    """``k=v`` items to a map; a bare ``k`` maps to "" (docker's ``ConvertKVStringsToMap``)."""
    out: dict[str, str] = {}
    for item in values:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _file_entries(paths: list[str]) -> Iterator[str]:
    """The lines of env and label files, leading blanks trimmed, empty and ``#`` lines left
    out; an unreadable file is an error worded as Go's, met when its turn comes."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise OptionError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
        for text in map(str.lstrip, lines):
            if text and not text.startswith("#"):
                yield text


def read_label_files(paths: list[str]) -> list[str]:
    # A bare name has no value to pass: dropped, as docker does.
    return [text for text in _file_entries(paths) if "=" in text]


def is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def extra_host(value: str) -> str:
    """``host:ip`` or ``host=ip`` (``host-gateway`` allowed), as docker validates it."""
    name, sep, address = value.partition("=")
    if not sep:
        name, sep, address = value.partition(":")
    if not sep or not name or not (address == "host-gateway" or is_ip(address)):
        raise bad_flag(value, "--add-host", f'bad format for add-host: "{value}"')
    return f"{name}:{address}"


def volume_spec(spec: str) -> str | None:
    """``-v``: a bind or named volume (``src:dst[:opts]``) → its ``Binds`` entry; an anonymous
    volume (``/dst``) → None. A ``./relative`` host path is made absolute, as docker does."""
    parts = spec.split(":")
    if len(parts) == 1:
        return None
    host = parts[0]
    if host == "." or host.startswith("./") or host.startswith(".."):
        host = os.path.abspath(host)
    return ":".join([host, *parts[1:]])


def capabilities(names: list[str]) -> list[str] | None:
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
        raise bad_flag(value, "--device", f"invalid device specification: {value}")
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


def dns_server(value: str) -> str:
    if not is_ip(value):
        raise bad_flag(value, "--dns", f"IP address is not correctly formatted: {value}")
    return value


def log_opts(args: Namespace) -> dict[str, str]:
    if args.log_driver == "none" and args.log_opt:
        raise OptionError("invalid logging opts for driver none")
    return kv_map(args.log_opt)


def env_entry(item: str, environ: Mapping[str, str]) -> str:
    """``K=V`` as given; a bare ``K`` takes the CLI's own value when it has one (docker's rule)."""
    key, sep, _ = item.partition("=")
    if not key:
        raise OptionError(f"invalid argument \"{item}\" for \"-e, --env\" flag: "
                          f"invalid environment variable: {item}", flag=True)
    if sep:
        return item
    value = environ.get(key)
    return f"{key}={value}" if value is not None else item


def read_env_files(paths: list[str], environ: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for text in _file_entries(paths):
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


def restart_policy(text: str) -> dict[str, Any]:
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


def port_range(text: str) -> list[int]:
    lo, sep, hi = text.partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
        raise ValueError(text)
    start, end = int(lo), int(hi) if sep else int(lo)
    if end < start or end > 65535:
        raise ValueError(text)
    return list(range(start, end + 1))


def expand_ports(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    try:
        return [f"{p}/{proto or 'tcp'}" for p in port_range(port)]
    except ValueError:
        raise OptionError(f"invalid range format for --expose: {spec}") from None


def parse_publish(spec: str) -> list[tuple[str, dict[str, str]]]:
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
        cports = port_range(container)
        hports = port_range(host) if host else []
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


def device_limit(value: str, flag: str, kind: str) -> dict[str, Any]:
    """``/dev/sda:1mb`` (bps), ``/dev/sda:1000`` (iops), ``/dev/sda:200`` (weight)."""
    path, sep, amount = value.rpartition(":")
    if not sep:
        raise bad_flag(value, flag, f"bad format: {value}")
    if not path.startswith("/dev/"):
        raise bad_flag(value, flag, f"bad format for device path: {value}")
    if kind == "weight":
        if not amount.isdigit() or int(amount) > 0xFFFF:
            raise bad_flag(value, flag, f"invalid weight for device: {value}")
        return {"Path": path, "Weight": int(amount)}
    if kind == "iops":
        if not amount.isdigit():
            raise bad_flag(value, flag, f"invalid rate for device: {value}. The correct format "
                                        "is <device-path>:<number>. Number must be a positive "
                                        "integer")
        return {"Path": path, "Rate": int(amount)}
    try:
        rate = ram_in_bytes(amount)
    except ValueError:
        rate = -1
    if rate < 0:
        raise bad_flag(value, flag, f"invalid rate for device: {value}. The correct format is "
                                    "<device-path>:<number>[<unit>]. Number must be a positive "
                                    "integer. Unit is optional and can be kb, mb, or gb")
    return {"Path": path, "Rate": rate}


def parse_gpus(value: str) -> dict[str, Any]:
    """``--gpus all|N|[count=N,][device=a,b,][driver=x,][capabilities=c]`` → a device request."""
    import csv

    request: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None,
                               "Capabilities": None, "Options": {}}
    caps: list[str] = []
    for item in next(csv.reader([value]), []):
        key, sep, val = item.partition("=")
        if not sep:
            key, val = "count", item
        if key == "count":
            if val == "all":
                request["Count"] = -1
            elif val.isdigit():
                request["Count"] = int(val)
            else:
                raise bad_flag(value, "--gpus", f"invalid count ({val}): value must be either "
                                                '"all" or an integer: invalid syntax')
        elif key == "device":
            request["DeviceIDs"] = val.split(",")
        elif key == "driver":
            request["Driver"] = val
        elif key == "capabilities":
            caps.append(val)
        elif key == "options":
            k, _, v = val.partition("=")
            request["Options"][k] = v
        else:
            raise bad_flag(value, "--gpus", f"unexpected key '{key}' in '{item}'")
    request["Capabilities"] = [sorted({"gpu", *caps})]
    return request
