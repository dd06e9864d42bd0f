"""OCI content descriptors: what a manifest or index says about a blob."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument
from berth.oci.digest import Digest

__all__ = ["ANNOTATION_CONTAINERD_NAME", "ANNOTATION_REF_NAME", "Descriptor", "Platform"]

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"


@dataclass(frozen=True)
class Platform:
    architecture: str
    os: str
    variant: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Platform:
        return cls(str(d.get("architecture", "")), str(d.get("os", "")), str(d.get("variant", "")))

    def to_dict(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Any) -> Descriptor:
        """Validate a descriptor from untrusted JSON; malformed ones are ``InvalidArgument``."""
        if not isinstance(d, dict):
            raise InvalidArgument("invalid descriptor: not an object")
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"invalid descriptor size: {size!r}")
        digest = d.get("digest")
        if not isinstance(digest, str):
            raise InvalidArgument("invalid descriptor: missing digest")
        ann = d.get("annotations") or {}
        if not isinstance(ann, dict):
            raise InvalidArgument("invalid descriptor annotations")
        plat = d.get("platform")
        return cls(
            media_type=str(d.get("mediaType", "")),
            digest=Digest(digest),
            size=size,
            annotations={str(k): str(v) for k, v in ann.items()},
            platform=Platform.from_dict(plat) if isinstance(plat, dict) else None,
            urls=tuple(str(u) for u in d.get("urls") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest),
                               "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_dict()
        return out
