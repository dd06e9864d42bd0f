"""The snapshotter role: layered, copy-on-write filesystem trees described by mounts.

Lifecycle (as containerd's snapshotters):

* ``prepare(key, parent)`` makes an *active* snapshot: a writable tree on top of the committed
  snapshot ``parent`` (or empty), and returns the mounts that present it. Unpacking a layer
  is: prepare on the previous layer's chain ID, write the layer's changes, ``commit``.
* ``commit(name, key)`` turns the active snapshot ``key`` into the *committed*, read-only
  snapshot ``name``; the active key is gone. Only committed snapshots can be parents.
* ``view(key, parent)`` makes a read-only active snapshot (for inspecting an image's tree).
* ``mounts(key)`` returns the mounts of an active snapshot or view again; ``remove(key)``
  deletes a snapshot that has no children; ``stat``, ``walk``, ``usage`` introspect.

A snapshotter never mounts anything: mounting happens where the tree is used, e.g. in the
container's own mount namespace. A ``Mount`` is a plain dict in the OCI runtime spec's shape:
``{"type": "overlay", "source": "overlay", "options": ["lowerdir=…", "upperdir=…", …]}``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Info", "Kind", "Mount", "Snapshotter", "Usage"]

Mount = dict[str, Any]


class Kind(enum.Enum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


@dataclass(frozen=True)
class Info:
    key: str
    kind: Kind
    parent: str | None
    labels: dict[str, str] = field(default_factory=dict)
    created: str = ""
    updated: str = ""


@dataclass(frozen=True)
class Usage:
    size: int     # bytes of the snapshot's own changes (hard links counted once)
    inodes: int


class Snapshotter(Protocol):
    def prepare(self, key: str, parent: str | None = None,
                labels: dict[str, str] | None = None) -> list[Mount]: ...
    def view(self, key: str, parent: str | None = None,
             labels: dict[str, str] | None = None) -> list[Mount]: ...
    def mounts(self, key: str) -> list[Mount]: ...
    def commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None: ...
    def remove(self, key: str) -> None: ...
    def stat(self, key: str) -> Info: ...
    def walk(self) -> Iterator[Info]: ...
    def usage(self, key: str) -> Usage: ...
