"""The local volume driver: one directory per volume, its metadata beside its data.

Layout: ``DATA_ROOT/volumes/<name>/_data`` holds the content and ``volume.json`` the record
(name, labels, options, created time, anonymous or not), replaced by atomic rename, so the
volume survives daemon restarts without a schema of its own. Which containers use a volume is
the container service's knowledge: removal asks it through ``in_use``. All methods are
synchronous disk work; the API calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable
from typing import Any

from berth import errors
from berth.util import atomic_write_json, new_id, read_json, rfc3339_nano

__all__ = ["VolumeService"]

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_META = "volume.json"


class VolumeService:
    def __init__(self, data_root: str, in_use: Callable[[str], list[str]] | None = None,
                 emit: Callable[[str, str, dict[str, str]], None] | None = None) -> None:
        self.root = os.path.join(data_root, "volumes")
        os.makedirs(self.root, mode=0o701, exist_ok=True)
        self.in_use: Callable[[str], list[str]] = in_use or (lambda name: [])
        self.emit = emit or (lambda action, name, attrs: None)
        self._lock = threading.Lock()

    def _dir(self, name: str) -> str:
        if not _NAME.match(name):
            raise errors.InvalidArgument(
                f'"{name}" includes invalid characters for a local volume name, only '
                '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                "directory, use absolute path")
        return os.path.join(self.root, name)

    def _view(self, meta: dict[str, Any]) -> dict[str, Any]:
        name = meta["Name"]
        return {"CreatedAt": meta["CreatedAt"], "Driver": "local",
                "Labels": meta.get("Labels") or {},
                "Mountpoint": os.path.join(self.root, name, "_data"), "Name": name,
                "Options": meta.get("Options") or {}, "Scope": "local"}

    def _meta(self, name: str) -> dict[str, Any]:
        try:
            return read_json(os.path.join(self._dir(name), _META))
        except (FileNotFoundError, ValueError):
            raise errors.NotFound(f"get {name}: no such volume") from None

    def create(self, name: str | None = None, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, driver: str | None = None
               ) -> tuple[dict[str, Any], bool]:
        """(volume, created): an existing name is returned as it is, as Docker does."""
        if driver not in (None, "", "local"):
            raise errors.NotFound(f"plugin \"{driver}\" not found")
        for key in options or {}:
            if key not in ("type", "device", "o", "size"):
                raise errors.InvalidArgument(f"invalid option key: {key!r}")
        anonymous = not name
        name = name or new_id()
        path = self._dir(name)
        with self._lock:
            if os.path.exists(os.path.join(path, _META)):
                return self._view(self._meta(name)), False
            os.makedirs(os.path.join(path, "_data"), mode=0o755, exist_ok=True)
            labels = dict(labels or {})
            if anonymous:
                labels.setdefault("com.docker.volume.anonymous", "")
            meta = {"Name": name, "CreatedAt": rfc3339_nano()[:19] + "Z", "Labels": labels,
                    "Options": dict(options or {}), "Anonymous": anonymous}
            atomic_write_json(os.path.join(path, _META), meta)
        self.emit("create", name, {"driver": "local"})
        return self._view(meta), True

    def inspect(self, name: str) -> dict[str, Any]:
        return self._view(self._meta(name))

    def is_anonymous(self, name: str) -> bool:
        try:
            return bool(self._meta(name).get("Anonymous"))
        except errors.NotFound:
            return False

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        out = []
        for name in sorted(os.listdir(self.root)):
            try:
                meta = self._meta(name)
            except (errors.NotFound, errors.InvalidArgument):
                continue
            if self._matches(meta, filters or {}):
                out.append(self._view(meta))
        return out

    def _matches(self, meta: dict[str, Any], filters: dict[str, list[str]]) -> bool:
        for key, values in filters.items():
            if not values:
                continue
            if key == "name":
                if not any(v in meta["Name"] for v in values):
                    return False
            elif key == "driver":
                if "local" not in values:
                    return False
            elif key == "dangling":
                want = values[0].lower() in ("1", "true")
                if (not self.in_use(meta["Name"])) != want:
                    return False
            elif key == "label":
                labels = meta.get("Labels") or {}
                for v in values:
                    k, eq, want_v = v.partition("=")
                    if k not in labels or (eq and labels[k] != want_v):
                        return False
            elif key == "label!":
                labels = meta.get("Labels") or {}
                for v in values:
                    k, eq, want_v = v.partition("=")
                    if k in labels and (not eq or labels[k] == want_v):
                        return False
            elif key == "all":
                continue
            else:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        return True

    def remove(self, name: str, force: bool = False) -> None:
        path = self._dir(name)
        if not os.path.exists(os.path.join(path, _META)):
            if force:
                return
            raise errors.NotFound(f"get {name}: no such volume")
        users = self.in_use(name)
        if users:
            raise errors.Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        shutil.rmtree(path, ignore_errors=True)
        self.emit("destroy", name, {"driver": "local"})

    def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """Unused volumes; named ones only with ``all=true`` (API 1.42+), as Docker does."""
        filters = dict(filters or {})
        everything = (filters.pop("all", None) or ["false"])[0].lower() in ("1", "true")
        deleted, reclaimed = [], 0
        for vol in self.list(filters):
            name = vol["Name"]
            if self.in_use(name) or not (everything or self.is_anonymous(name)):
                continue
            reclaimed += _du(vol["Mountpoint"])
            try:
                self.remove(name)
            except errors.Conflict:
                continue
            deleted.append(name)
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    def usage(self, name: str) -> int:
        return _du(os.path.join(self._dir(name), "_data"))


def _du(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total
