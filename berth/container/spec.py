"""From a Docker container config and its image to an OCI runtime spec: pure functions.

Creation merges the image's config into the container's once (as Docker stores it), and start
turns the stored record into ``config.json``. Nothing here touches the disk except
:func:`read_rootfs_file`, which looks a file up through a snapshot's layers without mounting.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from berth.errors import InvalidArgument, RuntimeFailure
from berth.runtime.spec import default_spec

__all__ = [
    "build_spec",
    "merge_image_config",
    "read_rootfs_file",
    "resolve_user",
]

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


def _parse_passwd(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve_user(spec: str, passwd: str | None,
                 group: str | None) -> tuple[int, int, list[int], str]:
    """``user[:group]`` by name or number → (uid, gid, supplementary gids, home), as Docker."""
    user_part, _, group_part = spec.partition(":")
    users = _parse_passwd(passwd or "")
    groups = _parse_passwd(group or "")
    uid, gid, home, name = 0, 0, "/", "root"
    if user_part == "":
        user_part = "0"
    match = None
    for row in users:
        if len(row) >= 4 and (row[0] == user_part or row[2] == user_part):
            match = row
            break
    if match is not None:
        name = match[0]
        try:
            uid, gid = int(match[2]), int(match[3])
        except ValueError:
            raise InvalidArgument(f"invalid passwd entry for {user_part}") from None
        home = match[5] if len(match) > 5 and match[5] else "/"
    elif user_part.isdigit():
        uid, name = int(user_part), ""
    else:
        raise RuntimeFailure(f"unable to find user {user_part}: no matching entries in "
                             "passwd file", 126)
    if group_part:
        gmatch = None
        for row in groups:
            if len(row) >= 3 and (row[0] == group_part or row[2] == group_part):
                gmatch = row
                break
        if gmatch is not None:
            gid = int(gmatch[2])
        elif group_part.isdigit():
            gid = int(group_part)
        else:
            raise RuntimeFailure(f"unable to find group {group_part}: no matching entries in "
                                 "group file", 126)
    extra: list[int] = []
    if name:
        for row in groups:
            if len(row) >= 4 and name in row[3].split(",") and row[2].isdigit():
                g = int(row[2])
                if g != gid and g not in extra:
                    extra.append(g)
    return uid, gid, extra, home


def _layer_dirs(mounts: list[dict[str, Any]]) -> list[str]:
    """The directories of a snapshot's mounts, topmost first."""
    dirs: list[str] = []
    for mount in mounts:
        options = mount.get("options") or []
        if mount.get("type") == "overlay":
            upper = [o.split("=", 1)[1] for o in options if o.startswith("upperdir=")]
            lower = [o.split("=", 1)[1] for o in options if o.startswith("lowerdir=")]
            dirs += upper
            for item in lower:
                dirs += item.split(":")
        elif mount.get("type") == "bind" or "bind" in options or "rbind" in options:
            dirs.append(mount["source"])
    return dirs


def read_rootfs_file(mounts: list[dict[str, Any]], path: str, limit: int = 1 << 20) -> str | None:
    """A small file's text from the merged view of a snapshot, or None if absent.

    Looks through the layers top-down as overlayfs would (a whiteout hides it), without
    mounting anything and without following links out of the tree.
    """
    rel = path.strip("/")
    for directory in _layer_dirs(mounts):
        candidate = os.path.join(directory, rel)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    return None


def build_spec(record: dict[str, Any], *, rootfs: str, hostname_path: str, hosts_path: str,
               resolv_path: str, user: tuple[int, int, list[int], str]) -> dict[str, Any]:
    """The OCI runtime spec for a container record (Docker's defaults plus its config)."""
    config = record["Config"]
    host_config = record.get("HostConfig") or {}
    args = [record["Path"], *record["Args"]]
    spec = default_spec(args, rootfs=rootfs)
    process = spec["process"]
    uid, gid, extra_gids, home = user
    env = list(config.get("Env") or [])
    if not any(_env_key(e) == "HOME" for e in env):
        env.append(f"HOME={home}")
    if config.get("Tty") and not any(_env_key(e) == "TERM" for e in env):
        env.append("TERM=xterm")
    if not any(_env_key(e) == "HOSTNAME" for e in env):
        env.insert(1 if env and env[0].startswith("PATH=") else 0,
                   f"HOSTNAME={config.get('Hostname') or ''}")
    process["env"] = env
    process["cwd"] = config.get("WorkingDir") or "/"
    process["terminal"] = bool(config.get("Tty"))
    process["user"] = {"uid": uid, "gid": gid}
    if extra_gids:
        process["user"]["additionalGids"] = extra_gids
    spec["hostname"] = config.get("Hostname") or ""
    spec["root"] = {"path": rootfs, "readonly": bool(host_config.get("ReadonlyRootfs"))}
    for dest, source in (("/etc/resolv.conf", resolv_path), ("/etc/hostname", hostname_path),
                         ("/etc/hosts", hosts_path)):
        spec["mounts"].append({"destination": dest, "type": "bind", "source": source,
                               "options": ["rbind", "rprivate"]})
    spec.setdefault("annotations", {})["org.berth.container.id"] = record["Id"]
    return spec
