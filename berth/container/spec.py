"""From a Docker container config and its image to an OCI runtime spec: pure functions.

Creation merges the image's config into the container's once (as Docker stores it), and start
turns the stored record into ``config.json``.
"""

from __future__ import annotations

from typing import Any

from berth.errors import InvalidArgument
from berth.runtime.spec import default_spec
from berth.runtime.user import ANNOTATION as USER_ANNOTATION

__all__ = ["build_spec", "merge_image_config"]

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
               resolv_path: str) -> dict[str, Any]:
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
    return spec
