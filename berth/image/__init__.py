"""The image service: load/import images into the content store and snapshots, resolve,
list, inspect, tag and delete them, and prepare container root filesystems."""

from berth.image.service import ImageRecord, ImageService

__all__ = ["ImageRecord", "ImageService"]
