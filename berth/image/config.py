"""Image configs: Docker's container-config shape, import changes, and Go-compatible JSON.

Image IDs are digests of config bytes, so configs we did not write are kept byte for byte;
configs we do write (imports, later commits and builds) are serialised the way Docker's Go
code does, so they look the same to tools that read them.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import shlex
from typing import Any

from berth.errors import InvalidArgument

__all__ = [
    "CONTAINER_CONFIG_FIELDS",
    "apply_changes",
    "container_config",
    "go_json",
    "stored_config",
    "parse_created",
]

# Docker's container.Config in declaration order, with the zero value of each field that is
# always present; fields that are "omitempty" in Go are listed with None and only copied.
CONTAINER_CONFIG_FIELDS: list[tuple[str, Any, bool]] = [
    ("Hostname", "", True),
    ("Domainname", "", True),
    ("User", "", True),
    ("AttachStdin", False, True),
    ("AttachStdout", False, True),
    ("AttachStderr", False, True),
    ("ExposedPorts", None, False),
    ("Tty", False, True),
    ("OpenStdin", False, True),
    ("StdinOnce", False, True),
    ("Env", None, True),
    ("Cmd", None, True),
    ("Healthcheck", None, False),
    ("ArgsEscaped", None, False),
    ("Image", "", True),
    ("Volumes", None, True),
    ("WorkingDir", "", True),
    ("Entrypoint", None, True),
    ("NetworkDisabled", None, False),
    ("MacAddress", None, False),
    ("OnBuild", None, True),
    ("Labels", None, True),
    ("StopSignal", None, False),
    ("StopTimeout", None, False),
    ("Shell", None, False),
]


def container_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """An image config's ``config`` in the full shape the Engine API returns."""
    cfg = cfg or {}
    out: dict[str, Any] = {}
    for key, zero, always in CONTAINER_CONFIG_FIELDS:
        value = cfg.get(key)
        if value is None:
            if always:
                out[key] = zero
        elif always or value not in ("", False, 0, [], {}):
            out[key] = value
    return out


def stored_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """The ``config`` an image config blob carries: Docker's field order, without the nulls
    Docker writes (``"Env": null``), which the OCI image-config schema refuses."""
    return {k: v for k, v in container_config(cfg).items() if v is not None}


def go_json(obj: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, UTF-8, ``<>&`` escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .encode())


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)")


def parse_created(value: str | None) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp (nanoseconds tolerated); 0 if absent."""
    if not value:
        return 0.0
    m = _RFC3339.fullmatch(value.strip())
    if m is None:
        return 0.0
    y, mo, d, h, mi, s, frac, tz = m.groups()
    dt = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=_dt.UTC)
    ts = dt.timestamp()
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        ts -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    if frac:
        ts += float("0." + frac)
    return ts


_ALLOWED_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL",
                    "USER", "VOLUME", "WORKDIR")


def _json_or_shell(rest: str, shell: bool) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", rest] if shell else shlex.split(rest)


def _pairs(rest: str, what: str) -> list[tuple[str, str]]:
    words = shlex.split(rest)
    if not words:
        raise InvalidArgument(f"{what} requires at least one argument")
    if "=" not in words[0]:
        # The legacy form: "ENV KEY value with spaces".
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"{what} names can not be blank")
        out.append((key, value))
    return out


def apply_changes(cfg: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply Dockerfile instructions (``docker import --change``) to a container config."""
    cfg = dict(cfg)
    for change in changes:
        change = change.strip()
        if not change:
            continue
        word, _, rest = change.partition(" ")
        instr = word.upper()
        if instr not in _ALLOWED_CHANGES:
            raise InvalidArgument(f"{word} is not a valid change command")
        if instr == "CMD":
            cfg["Cmd"] = _json_or_shell(rest, shell=True)
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest, shell=True)
        elif instr == "ENV":
            env = list(cfg.get("Env") or [])
            for key, value in _pairs(rest, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            cfg["Env"] = env
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            for key, value in _pairs(rest, "LABEL"):
                labels[key] = value
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                port, _, proto = p.partition("/")
                if not port or not all(c.isdigit() or c == "-" for c in port):
                    raise InvalidArgument(f"invalid containerPort: {port}")
                ports[f"{port}/{(proto or 'tcp').lower()}"] = {}
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _json_or_shell(rest, shell=False):
                vols[v] = {}
            cfg["Volumes"] = vols
        elif instr == "WORKDIR":
            cfg["WorkingDir"] = rest.strip()
        elif instr == "USER":
            cfg["User"] = rest.strip()
        elif instr == "STOPSIGNAL":
            cfg["StopSignal"] = rest.strip()
        elif instr == "ONBUILD":
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), rest.strip()]
    return cfg
