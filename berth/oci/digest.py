"""Content digests (``sha256:<64 hex>``) and chain IDs.

Only sha256 is accepted for content the engine stores: it is what every registry and runtime
in the Docker world writes, and one algorithm keeps the on-disk layout a single directory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from berth.errors import InvalidArgument

__all__ = ["SHA256", "Digest", "chain_ids", "is_digest", "parse_digest", "sha256_digest"]

SHA256 = "sha256"
_SHA256_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
# The grammar of OCI digests in general; only used to tell "malformed" from "unsupported".
_ANY_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class Digest(str):
    """A validated ``sha256:<hex>`` string; ``.hex`` is the part after the colon."""

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        if not _SHA256_RE.match(value):
            if _ANY_DIGEST_RE.match(value) and not value.startswith(SHA256 + ":"):
                raise InvalidArgument(f"unsupported digest algorithm: {value}")
            raise InvalidArgument(f"invalid digest format: {value!r}")
        return super().__new__(cls, value)

    @property
    def algorithm(self) -> str:
        return SHA256

    @property
    def hex(self) -> str:
        return self[len(SHA256) + 1:]

    @classmethod
    def from_hex(cls, hexpart: str) -> Digest:
        return cls(f"{SHA256}:{hexpart}")


def parse_digest(value: str) -> Digest:
    """``Digest(value)``, spelled as a function for call sites that read better that way."""
    return Digest(value)


def is_digest(value: str) -> bool:
    return bool(_SHA256_RE.match(value))


def sha256_digest(data: bytes) -> Digest:
    return Digest.from_hex(hashlib.sha256(data).hexdigest())


def chain_ids(diff_ids: Iterable[str]) -> list[Digest]:
    """The chain ID of each layer prefix, as the OCI image spec defines it.

    ``ChainID(L0) = DiffID(L0)``; ``ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))``.
    A chain ID names a stack of layers, which is what a snapshot is, so images that share a
    base share its snapshots.
    """
    out: list[Digest] = []
    for diff_id in diff_ids:
        d = Digest(diff_id)
        if out:
            d = sha256_digest(f"{out[-1]} {d}".encode())
        out.append(d)
    return out
