"""Pure data types of the OCI and Docker image formats: digests, descriptors, media types,
references. Stdlib only, so every layer may use them."""

from berth.oci.descriptor import (
    ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
    Descriptor,
    Platform,
)
from berth.oci.digest import Digest, chain_ids, is_digest, parse_digest, sha256_digest
from berth.oci.reference import (
    Reference,
    is_valid_tag,
    parse_any_reference,
    parse_normalized,
    parse_reference,
)

__all__ = [
    "ANNOTATION_CONTAINERD_NAME",
    "ANNOTATION_REF_NAME",
    "Descriptor",
    "Digest",
    "Platform",
    "Reference",
    "chain_ids",
    "is_digest",
    "is_valid_tag",
    "parse_any_reference",
    "parse_digest",
    "parse_normalized",
    "parse_reference",
    "sha256_digest",
]
