"""Image references, parsed and normalised as Docker does.

The grammar is the one of the ``distribution/reference`` package that every Docker-world tool
shares (written out below); the normalisation is Docker's: a name without a registry lives on
``docker.io``, a one-component Docker Hub name lives in ``library/``, and a name without a tag
or digest means ``:latest``.  Messages are Docker's word for word, because clients print
them unchanged::

    reference   := name [ ":" tag ] [ "@" digest ]
    name        := [ domain "/" ] path-component ( "/" path-component )*
    domain      := host [ ":" port ]
    host        := domain-component ( "." domain-component )* | "[" ipv6 "]"
    domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
    separator   := [._] | "__" | "-"+
    tag         := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest      := algorithm ":" hex{32,}
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from berth.errors import InvalidArgument

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "Reference",
    "is_valid_tag",
    "parse_any_reference",
    "parse_normalized",
    "parse_reference",
]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REMOTE = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_NAME = rf"(?:{_DOMAIN}/)?{_REMOTE}"

_REFERENCE_RE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_NAME_RE = re.compile(rf"(?:({_DOMAIN})/)?({_REMOTE})")
_TAG_RE = re.compile(_TAG)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``domain`` is empty only for references parsed without normalising."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """The repository, fully qualified: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    @property
    def familiar_name(self) -> str:
        """The repository as users write it: ``busybox``, ``user/app``, ``localhost:5000/a``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX):]:
            path = path[len(OFFICIAL_PREFIX):]
        return path

    def familiar(self) -> str:
        """The whole reference in the familiar form Docker prints: ``busybox:latest``."""
        out = self.familiar_name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def with_default_tag(self) -> Reference:
        """Docker's ``TagNameOnly``: a bare name gets ``:latest``; digests keep no tag."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG)

    def with_tag(self, tag: str) -> Reference:
        if not is_valid_tag(tag):
            raise InvalidArgument("invalid tag format")
        return Reference(self.domain, self.path, tag)

    def trimmed(self) -> Reference:
        """The repository alone, without tag or digest."""
        return Reference(self.domain, self.path)


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.fullmatch(tag))


def parse_reference(s: str) -> Reference:
    """Parse without normalising (``distribution/reference.Parse``)."""
    m = _REFERENCE_RE.fullmatch(s)
    if m is None:
        if s == "":
            raise InvalidArgument("repository name must have at least one component")
        if _REFERENCE_RE.fullmatch(s.lower()) is not None:
            raise InvalidArgument("repository name must be lowercase")
        raise InvalidArgument("invalid reference format")
    name, tag, digest = m.group(1), m.group(2) or "", m.group(3) or ""
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(
            f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest:
        _check_digest(digest)
    nm = _NAME_RE.fullmatch(name)
    assert nm is not None  # the reference pattern contains the name pattern
    return Reference(nm.group(1) or "", nm.group(2), tag, digest)


def _check_digest(digest: str) -> None:
    algorithm, _, hexpart = digest.partition(":")
    expected = _DIGEST_LENGTHS.get(algorithm)
    if expected is None:
        raise InvalidArgument("unsupported digest algorithm")
    if len(hexpart) != expected:
        raise InvalidArgument("invalid checksum digest length")
    if hexpart != hexpart.lower():
        raise InvalidArgument("invalid checksum digest format")


def _split_docker_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    head = name[:i]
    if i == -1 or (not any(c in head for c in ".:") and head != "localhost"
                   and head.lower() == head):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = head, name[i + 1:]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_normalized(s: str) -> Reference:
    """Parse a reference as a user types it and qualify it (``ParseNormalizedNamed``).

    The tag is not defaulted here; call ``with_default_tag()`` where Docker does.
    """
    if _IDENTIFIER_RE.fullmatch(s):
        raise InvalidArgument(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_docker_domain(s)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidArgument(
            f"invalid reference format: repository name ({remote}) must be lowercase")
    ref = parse_reference(f"{domain}/{remainder}")
    if not ref.domain:
        # Cannot happen for a qualified name; kept so a grammar change cannot go unnoticed.
        raise InvalidArgument("invalid reference format")
    return ref


def parse_any_reference(s: str) -> Reference | str:
    """A reference or, for ``sha256:<hex>`` and bare 64-hex strings, the image ID it names."""
    if _IDENTIFIER_RE.fullmatch(s):
        return "sha256:" + s
    if re.fullmatch(r"sha256:[a-f0-9]{64}", s):
        return s
    return parse_normalized(s)
