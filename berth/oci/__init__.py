"""Pure data types of the OCI and Docker image formats: digests, descriptors, media types,
references. Stdlib only, so every layer may use them.

Names load lazily (PEP 562): the CLI parses a reference without paying for hashlib and the
descriptor types.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing and importlib cost the CLI milliseconds to import
if TYPE_CHECKING:
    from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'berth.oci' has no attribute {name!r}")
    qualified = f"berth.oci.{module}"
    __import__(qualified)
    value = getattr(sys.modules[qualified], name)
    globals()[name] = value
    return value
