"""Writing ``docker save`` archives, in the layout Docker 25+ writes.

One tar holds several images and tags; every blob is stored once under ``blobs/sha256/``,
so the same archive is both a docker-archive (``manifest.json``, ``repositories``) and an OCI
image layout (``oci-layout``, ``index.json``)::

    blobs/sha256/<diff id>      each layer, uncompressed (so its digest is its diff ID)
    blobs/sha256/<image id>     each config, byte for byte (so the image ID survives)
    blobs/sha256/<manifest>     an OCI manifest per image
    index.json                  one descriptor per tag (``io.containerd.image.name`` and
                                ``org.opencontainers.image.ref.name``), or one without names
    manifest.json               ``[{"Config", "RepoTags", "Layers"}]`` as ``docker load`` reads
    oci-layout, repositories

The writer is given a plan (what to write, resolved up front, so a bad name fails before the
first byte) and a function that opens each layer as uncompressed bytes of a known size.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from berth.oci import Reference, mediatype
from berth.oci.digest import sha256_digest

__all__ = ["SaveImage", "SaveLayer", "write_save"]

_CHUNK = 1 << 20
_BLOCK = 512


class _Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass
class SaveLayer:
    diff_id: str


@dataclass
class SaveImage:
    image_id: str
    config_bytes: bytes
    layers: list[SaveLayer]
    tags: list[Reference] = field(default_factory=list)


LayerOpener = Callable[[str], AbstractContextManager[tuple[BinaryIO, int]]]


class _Tar:
    """A minimal streaming tar writer: headers from ``tarfile``, bytes copied in big chunks."""

    def __init__(self, out: _Writer, mtime: int) -> None:
        self.out = out
        self.mtime = mtime

    def _header(self, name: str, kind: bytes, size: int = 0, mode: int = 0o644) -> None:
        ti = tarfile.TarInfo(name)
        ti.type, ti.size, ti.mode, ti.mtime = kind, size, mode, self.mtime
        ti.uname = ti.gname = ""
        self.out.write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def directory(self, name: str) -> None:
        self._header(name, tarfile.DIRTYPE, mode=0o755)

    def data(self, name: str, data: bytes) -> None:
        self._header(name, tarfile.REGTYPE, len(data))
        self.out.write(data)
        self._pad(len(data))

    def stream(self, name: str, f: BinaryIO, size: int) -> None:
        self._header(name, tarfile.REGTYPE, size)
        left = size
        while left:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                raise OSError(f"{name}: source ended {left} bytes early")
            self.out.write(chunk)
            left -= len(chunk)
        self._pad(size)

    def _pad(self, size: int) -> None:
        rest = size % _BLOCK
        if rest:
            self.out.write(b"\0" * (_BLOCK - rest))

    def close(self) -> None:
        self.out.write(b"\0" * (_BLOCK * 2))


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def write_save(images: list[SaveImage], out: _Writer, open_layer: LayerOpener,
               mtime: int = 0) -> None:
    """Write ``images`` as one archive to ``out``."""
    tar = _Tar(out, mtime)
    tar.directory("blobs/")
    tar.directory("blobs/sha256/")
    written: set[str] = set()
    manifest_json = []
    index = []
    repositories: dict[str, dict[str, str]] = {}
    for img in images:
        layer_descs = []
        for layer in img.layers:
            hexpart = layer.diff_id.split(":", 1)[1]
            with open_layer(layer.diff_id) as (f, size):
                if layer.diff_id not in written:
                    tar.stream(f"blobs/sha256/{hexpart}", f, size)
                    written.add(layer.diff_id)
            layer_descs.append({"mediaType": mediatype.OCI_LAYER, "digest": layer.diff_id,
                                "size": size})
        cfg_hex = img.image_id.split(":", 1)[1]
        if img.image_id not in written:
            tar.data(f"blobs/sha256/{cfg_hex}", img.config_bytes)
            written.add(img.image_id)
        manifest = _json({
            "schemaVersion": 2,
            "mediaType": mediatype.OCI_MANIFEST,
            "config": {"mediaType": mediatype.OCI_CONFIG, "digest": img.image_id,
                       "size": len(img.config_bytes)},
            "layers": layer_descs,
        })
        mdigest = str(sha256_digest(manifest))
        if mdigest not in written:
            tar.data(f"blobs/sha256/{mdigest.split(':', 1)[1]}", manifest)
            written.add(mdigest)
        desc = {"mediaType": mediatype.OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
        if img.tags:
            for ref in img.tags:
                index.append({**desc, "annotations": {
                    "io.containerd.image.name": str(ref),
                    "org.opencontainers.image.ref.name": ref.tag}})
                if img.layers:
                    top = img.layers[-1].diff_id.split(":", 1)[1]
                    repositories.setdefault(ref.familiar_name, {})[ref.tag] = top
        else:
            index.append(desc)
        manifest_json.append({
            "Config": f"blobs/sha256/{cfg_hex}",
            "RepoTags": [r.familiar() for r in img.tags] or None,
            "Layers": [f"blobs/sha256/{lay.diff_id.split(':', 1)[1]}" for lay in img.layers],
        })
    tar.data("index.json", _json({"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX,
                                  "manifests": index}) + b"\n")
    tar.data("manifest.json", _json(manifest_json) + b"\n")
    tar.data("oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
    if repositories:
        tar.data("repositories", _json(repositories) + b"\n")
    tar.close()
