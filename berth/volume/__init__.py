"""Volumes: the local driver, named and anonymous volumes under DATA_ROOT/volumes."""

from berth.volume.service import VolumeService

__all__ = ["VolumeService"]
