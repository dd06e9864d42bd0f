"""Digests, chain IDs and descriptors."""

from __future__ import annotations

import hashlib

import pytest

from berth.errors import InvalidArgument
from berth.oci import Descriptor, Digest, chain_ids, sha256_digest


def test_digest_validation() -> None:
    d = Digest("sha256:" + "0" * 64)
    assert d.hex == "0" * 64 and d.algorithm == "sha256"
    for bad in ["sha256:" + "0" * 63, "sha256:" + "A" * 64, "0" * 64, "sha256:", ""]:
        with pytest.raises(InvalidArgument):
            Digest(bad)
    with pytest.raises(InvalidArgument, match="unsupported digest algorithm"):
        Digest("sha512:" + "0" * 128)


def test_sha256_digest() -> None:
    assert sha256_digest(b"x") == "sha256:" + hashlib.sha256(b"x").hexdigest()


def test_chain_ids_of_the_fixture() -> None:
    diff_ids = [
        "sha256:1f78acb9acbb2d02b793711c1dfcdc9c161d375dffd7959a13c5c5d66003a968",
        "sha256:537dbe794e50dce92dfebbfc2bd61cb97d46036dd93004581b1b20b71ac30c92",
    ]
    chains = chain_ids(diff_ids)
    assert chains[0] == diff_ids[0]
    assert chains[1] == sha256_digest(f"{diff_ids[0]} {diff_ids[1]}".encode())
    assert chain_ids([]) == []


def test_descriptor_round_trip_and_validation() -> None:
    raw = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": "sha256:" + "1" * 64, "size": 714,
           "annotations": {"org.opencontainers.image.ref.name": "x:1"},
           "platform": {"architecture": "amd64", "os": "linux"}}
    d = Descriptor.from_dict(raw)
    assert d.to_dict() == raw
    for bad in [{**raw, "size": -1}, {**raw, "size": "1"}, {**raw, "digest": "nope"}, [], None]:
        with pytest.raises(InvalidArgument):
            Descriptor.from_dict(bad)
