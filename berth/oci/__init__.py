"""Pure data types of the OCI and Docker image formats: digests, descriptors, media types,
references. Stdlib only, so every layer may use them.

Names load lazily (PEP 562): the CLI parses a reference without paying for hashlib and the
descriptor types.
"""

from __future__ import annotations

from berth.util import lazy_exports

_EXPORTS = {
    "ANNOTATION_CONTAINERD_NAME": "descriptor",
    "ANNOTATION_REF_NAME": "descriptor",
    "Descriptor": "descriptor",
    "Platform": "descriptor",
    "Digest": "digest",
    "chain_ids": "digest",
    "is_digest": "digest",
    "parse_digest": "digest",
    "sha256_digest": "digest",
    "Reference": "reference",
    "is_valid_tag": "reference",
    "parse_any_reference": "reference",
    "parse_normalized": "reference",
    "parse_reference": "reference",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
