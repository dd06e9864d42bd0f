"""Snapshots: layered copy-on-write trees that are described by mounts, never mounted here."""

from berth.snapshot.base import Info, Kind, Mount, Snapshotter, Usage
from berth.snapshot.overlay import OverlaySnapshotter, tree_usage

__all__ = ["Info", "Kind", "Mount", "OverlaySnapshotter", "Snapshotter", "Usage", "tree_usage"]
