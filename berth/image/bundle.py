"""Reading image archives: ``docker save`` tars and OCI image-layout tars.

The archive is first unpacked into a private temp directory (regular files only; symlinks
and hard links are recorded, never created, and followed only inside the archive), then
described as a list of ``ImagePlan``: the config bytes, the layers in order, the tags. Only
after every plan has been validated does the service touch the stores.

Formats:

* docker-archive: ``manifest.json`` = ``[{"Config": path, "RepoTags": [...], "Layers":
  [path, ...]}]``; Docker ≤ 24 writes ``<id>/layer.tar`` and ``<hex>.json``, Docker ≥ 25
  writes ``blobs/sha256/<hex>`` (and an OCI ``index.json`` beside it, which we ignore then).
* OCI layout: ``oci-layout`` + ``index.json`` → manifests (or nested indexes) → config and
  layer blobs under ``blobs/<alg>/<hex>``. Names come from ``io.containerd.image.name`` or
  ``org.opencontainers.image.ref.name`` when that is a full reference (a bare tag such as
  ``latest`` names no repository, so such an image loads untagged).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from berth.archive import TarReader, TarType, open_decompressed
from berth.archive.tar import Limits
from berth.errors import InvalidArgument
from berth.oci import (
    ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
    Descriptor,
    Digest,
    Reference,
    mediatype,
    parse_normalized,
)

__all__ = ["Bundle", "ImagePlan", "LayerPlan", "read_bundle"]

_MAX_JSON = 8 << 20  # manifests, indexes and configs larger than this are not plausible


@dataclass
class LayerPlan:
    path: str                  # a file in the bundle's temp dir
    diff_id: Digest
    blob_digest: Digest | None = None    # known from an OCI descriptor
    media_type: str = ""
    size: int | None = None


@dataclass
class ImagePlan:
    config_bytes: bytes
    config: dict[str, Any]
    layers: list[LayerPlan]
    tags: list[Reference] = field(default_factory=list)
    manifest_digest: str | None = None

    @property
    def image_id(self) -> Digest:
        return Digest.from_hex(hashlib.sha256(self.config_bytes).hexdigest())


class Bundle:
    """The files of an unpacked archive, addressed by their cleaned path inside it."""

    def __init__(self, tmpdir: str) -> None:
        self.tmpdir = tmpdir
        self.files: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self._n = 0

    def extract(self, stream: BinaryIO) -> None:
        source, _ = open_decompressed(stream)
        reader = TarReader(source, Limits(max_entries=1_000_000))
        saw_any = False
        for entry in reader:
            saw_any = True
            name = _clean(entry.name)
            if name is None:
                continue
            if entry.type in (TarType.REG, TarType.CONT):
                self._n += 1
                path = os.path.join(self.tmpdir, f"f{self._n}")
                with open(path, "wb") as f:
                    for chunk in reader.chunks():
                        f.write(chunk)
                self.files[name] = path
                self.links.pop(name, None)
            elif entry.type == TarType.SYMLINK:
                target = posixpath.join(posixpath.dirname(name), entry.linkname)
                cleaned = _clean(target)
                if cleaned is not None:
                    self.links[name] = cleaned
            elif entry.type == TarType.LINK:
                cleaned = _clean(entry.linkname)
                if cleaned is not None:
                    self.links[name] = cleaned
        if not saw_any:
            raise InvalidArgument("invalid archive: empty or not a tar archive")

    def resolve(self, name: str) -> str | None:
        """The temp file behind ``name``, following the archive's own links inside it."""
        cleaned = _clean(name)
        for _ in range(40):
            if cleaned is None:
                return None
            if cleaned in self.files:
                return self.files[cleaned]
            nxt = self.links.get(cleaned)
            if nxt is None:
                # A linked directory somewhere along the path.
                parts = cleaned.split("/")
                for i in range(len(parts) - 1, 0, -1):
                    head = "/".join(parts[:i])
                    if head in self.links:
                        nxt = _clean(self.links[head] + "/" + "/".join(parts[i:]))
                        break
                if nxt is None:
                    return None
            cleaned = nxt
        return None

    def has(self, name: str) -> bool:
        return self.resolve(name) is not None

    def read(self, name: str, what: str) -> bytes:
        path = self.resolve(name)
        if path is None:
            raise InvalidArgument(f"invalid archive: {what} {name!r} not found in the archive")
        if os.path.getsize(path) > _MAX_JSON:
            raise InvalidArgument(f"invalid archive: {what} {name!r} is too large")
        with open(path, "rb") as f:
            return f.read()

    def json(self, name: str, what: str) -> Any:
        try:
            return json.loads(self.read(name, what))
        except ValueError:
            raise InvalidArgument(f"invalid archive: {what} {name!r} is not valid JSON") from None


def _clean(name: str) -> str | None:
    parts: list[str] = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(p)
    return "/".join(parts) if parts else None


def _digest_of_path(name: str) -> Digest | None:
    """The digest a file name claims: ``blobs/sha256/<hex>`` or ``<hex>.json``."""
    base = posixpath.basename(name)
    parent = posixpath.basename(posixpath.dirname(name))
    hexpart = base[:-5] if base.endswith(".json") else base if parent == "sha256" else ""
    if len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart):
        return Digest.from_hex(hexpart)
    return None


def _parse_config(data: bytes, where: str) -> dict[str, Any]:
    try:
        config = json.loads(data)
    except ValueError:
        raise InvalidArgument(f"invalid image config {where}: not valid JSON") from None
    if not isinstance(config, dict):
        raise InvalidArgument(f"invalid image config {where}: not an object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidArgument(f"invalid image config {where}: rootfs type must be \"layers\"")
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list):
        raise InvalidArgument(f"invalid image config {where}: bad rootfs.diff_ids")
    for d in diff_ids:
        Digest(str(d))
    if config.get("os", "linux") not in ("linux", ""):
        raise InvalidArgument(f"image operating system \"{config.get('os')}\" cannot be used "
                              "on this platform")
    return config


def _verify(data: bytes, digest: Digest, what: str) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != digest.hex:
        raise InvalidArgument(f"invalid archive: {what} digest mismatch: expected {digest}, "
                              f"got sha256:{got}")


def _docker_plans(bundle: Bundle) -> list[ImagePlan]:
    manifest = bundle.json("manifest.json", "manifest")
    if not isinstance(manifest, list):
        raise InvalidArgument("invalid archive: manifest.json is not a list")
    plans = []
    for item in manifest:
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise InvalidArgument("invalid archive: manifest.json entry without Config")
        cfg_name = item["Config"]
        data = bundle.read(cfg_name, "image config")
        claimed = _digest_of_path(cfg_name)
        if claimed is not None:
            _verify(data, claimed, "image config")
        config = _parse_config(data, cfg_name)
        diff_ids = [Digest(d) for d in config["rootfs"].get("diff_ids") or []]
        layer_names = item.get("Layers") or []
        if not isinstance(layer_names, list) or len(layer_names) != len(diff_ids):
            raise InvalidArgument(
                "invalid manifest, layers length mismatch: expected "
                f"{len(diff_ids)}, got {len(layer_names) if isinstance(layer_names, list) else 0}")
        layers = []
        for name, diff_id in zip(layer_names, diff_ids, strict=True):
            path = bundle.resolve(str(name))
            if path is None:
                raise InvalidArgument(f"invalid archive: layer {name!r} not found in the archive")
            layers.append(LayerPlan(path=path, diff_id=diff_id,
                                    blob_digest=_digest_of_path(str(name))))
        tags = []
        for t in item.get("RepoTags") or []:
            ref = parse_normalized(str(t))
            if ref.digest:
                continue
            tags.append(ref.with_default_tag())
        plans.append(ImagePlan(data, config, layers, tags))
    return plans


def _blob_name(d: Descriptor) -> str:
    return f"blobs/{d.digest.algorithm}/{d.digest.hex}"


def _oci_name(annotations: dict[str, str]) -> Reference | None:
    name = annotations.get(ANNOTATION_CONTAINERD_NAME) or ""
    if not name:
        ref_name = annotations.get(ANNOTATION_REF_NAME) or ""
        # A bare tag ("latest", "1.0") is what the OCI spec puts here; it names no repository.
        if "/" in ref_name or ":" in ref_name or "@" in ref_name:
            name = ref_name
    if not name:
        return None
    try:
        ref = parse_normalized(name)
    except InvalidArgument:
        return None
    return None if ref.digest else ref.with_default_tag()


def _oci_manifest(bundle: Bundle, desc: Descriptor) -> ImagePlan:
    data = bundle.read(_blob_name(desc), "manifest")
    _verify(data, desc.digest, "manifest")
    try:
        manifest = json.loads(data)
    except ValueError:
        raise InvalidArgument("invalid archive: manifest is not valid JSON") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers", []), list):
        raise InvalidArgument("invalid archive: malformed manifest")
    cdesc = Descriptor.from_dict(manifest.get("config"))
    cdata = bundle.read(_blob_name(cdesc), "image config")
    _verify(cdata, cdesc.digest, "image config")
    config = _parse_config(cdata, str(cdesc.digest))
    diff_ids = [Digest(d) for d in config["rootfs"].get("diff_ids") or []]
    ldescs = [Descriptor.from_dict(x) for x in manifest.get("layers") or []]
    if len(ldescs) != len(diff_ids):
        raise InvalidArgument(f"invalid manifest, layers length mismatch: expected "
                              f"{len(diff_ids)}, got {len(ldescs)}")
    layers = []
    for ld, diff_id in zip(ldescs, diff_ids, strict=True):
        if ld.media_type and ld.media_type not in mediatype.LAYER_TYPES:
            raise InvalidArgument(f"unsupported layer media type {ld.media_type}")
        path = bundle.resolve(_blob_name(ld))
        if path is None:
            raise InvalidArgument(f"invalid archive: layer {ld.digest} not found in the archive")
        layers.append(LayerPlan(path=path, diff_id=diff_id, blob_digest=ld.digest,
                                media_type=ld.media_type, size=ld.size))
    return ImagePlan(cdata, config, layers, manifest_digest=str(desc.digest))


def _pick_platform(descs: list[Descriptor]) -> Descriptor | None:
    for d in descs:
        p = d.platform
        if p is None or (p.os == "linux" and p.architecture == "amd64"):
            return d
    return None


def _oci_plans(bundle: Bundle) -> list[ImagePlan]:
    layout = bundle.json("oci-layout", "oci-layout file")
    if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
        raise InvalidArgument("invalid archive: bad oci-layout file")
    index = bundle.json("index.json", "index")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidArgument("invalid archive: malformed index.json")
    plans: list[ImagePlan] = []
    for raw in index["manifests"]:
        desc = Descriptor.from_dict(raw)
        ref = _oci_name(desc.annotations)
        depth = 0
        while desc.media_type in mediatype.INDEX_TYPES:
            depth += 1
            if depth > 4:
                raise InvalidArgument("invalid archive: indexes nested too deeply")
            data = bundle.read(_blob_name(desc), "index")
            _verify(data, desc.digest, "index")
            try:
                nested = [Descriptor.from_dict(x) for x in json.loads(data).get("manifests", [])]
            except (ValueError, AttributeError):
                raise InvalidArgument("invalid archive: malformed nested index") from None
            chosen = _pick_platform(nested)
            if chosen is None:
                raise InvalidArgument("image has no manifest for linux/amd64")
            desc = chosen
        if desc.media_type not in mediatype.MANIFEST_TYPES:
            raise InvalidArgument(f"unsupported manifest media type {desc.media_type}")
        plan = _oci_manifest(bundle, desc)
        if ref is not None:
            plan.tags.append(ref)
        plans.append(plan)
    return plans


def read_bundle(bundle: Bundle) -> list[ImagePlan]:
    """Describe the images of an extracted archive; raises ``InvalidArgument`` if malformed."""
    if bundle.has("manifest.json"):
        plans = _docker_plans(bundle)
    elif bundle.has("index.json") and bundle.has("oci-layout"):
        plans = _oci_plans(bundle)
    else:
        raise InvalidArgument("invalid archive: no manifest.json (docker save) or index.json "
                              "(OCI layout) found")
    if not plans:
        raise InvalidArgument("invalid archive: no images found")
    return plans
