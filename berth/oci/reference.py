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

The CLI parses one reference per ``run`` and starts in tens of milliseconds, so the common
shapes (no digest, no IPv6 host) are checked by hand and the grammar's regular expressions are
compiled only for the rest; a property test keeps the two in agreement.
"""

from __future__ import annotations

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

_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = frozenset("0123456789abcdef")
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM_CHARS = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TAG_FIRST = _ALNUM_CHARS | {"_"}
_TAG_CHARS = _TAG_FIRST | {".", "-"}
_DIGITS = frozenset("0123456789")


class _Grammar:
    """The grammar's compiled patterns, built on first use (``re`` and compiling cost ms)."""

    def __init__(self) -> None:
        import re

        self.reference = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
        self.name = re.compile(rf"(?:({_DOMAIN})/)?({_REMOTE})")


_grammar: _Grammar | None = None


def _patterns() -> _Grammar:
    global _grammar
    if _grammar is None:
        _grammar = _Grammar()
    return _grammar


class Reference:
    """A parsed reference. ``domain`` is empty only for references parsed without normalising.

    Immutable, hashable and compared by value (a plain class: ``dataclasses`` would import
    ``inspect``, ~10 ms of the CLI's start)."""

    __slots__ = ("domain", "path", "tag", "digest")

    domain: str
    path: str
    tag: str
    digest: str

    def __init__(self, domain: str, path: str, tag: str = "", digest: str = "") -> None:
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "digest", digest)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[str, str, str, str]:
        return self.domain, self.path, self.tag, self.digest

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Reference(domain={self.domain!r}, path={self.path!r}, tag={self.tag!r}, "
                f"digest={self.digest!r})")

    def __reduce__(self) -> tuple[type[Reference], tuple[str, str, str, str]]:
        return Reference, self._key()

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


# -- the grammar by hand ----------------------------------------------------------------------

def is_valid_tag(tag: str) -> bool:
    return (0 < len(tag) <= 128 and tag[0] in _TAG_FIRST
            and all(c in _TAG_CHARS for c in tag))


def _is_path_component(text: str) -> bool:
    """``[a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*``"""
    if not text or text[0] not in _LOWER_ALNUM or text[-1] not in _LOWER_ALNUM:
        return False
    separator = ""
    for c in text:
        if c in _LOWER_ALNUM:
            if separator and separator not in (".", "_", "__") and separator.strip("-"):
                return False
            separator = ""
        elif c in "._-":
            separator += c
        else:
            return False
    return True


def _is_domain_component(text: str) -> bool:
    return bool(text) and text[0] in _ALNUM_CHARS and text[-1] in _ALNUM_CHARS and all(
        c in _ALNUM_CHARS or c == "-" for c in text)


def _is_domain(text: str) -> bool:
    """``host [":" port]`` for a host written as names (an IPv6 host goes to the grammar)."""
    host, colon, port = text.partition(":")
    if colon and not (port and all(c in _DIGITS for c in port)):
        return False
    return all(_is_domain_component(part) for part in host.split("."))


def _parse_plain(s: str) -> Reference | None:
    """A reference without digest or IPv6 host, or None when it is not valid (the grammar then
    says why)."""
    slash = s.rfind("/")
    colon = s.find(":", slash + 1)
    name, tag = (s[:colon], s[colon + 1:]) if colon >= 0 else (s, "")
    if colon >= 0 and not is_valid_tag(tag):
        return None
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        return None
    components = name.split("/")
    if len(components) > 1 and _is_domain(components[0]) and all(
            _is_path_component(c) for c in components[1:]):
        return Reference(components[0], name[len(components[0]) + 1:], tag)
    if all(_is_path_component(c) for c in components):
        return Reference("", name, tag)
    return None


def parse_reference(s: str) -> Reference:
    """Parse without normalising (``distribution/reference.Parse``)."""
    if "@" not in s and "[" not in s:
        ref = _parse_plain(s)
        if ref is not None:
            return ref
    grammar = _patterns()
    m = grammar.reference.fullmatch(s)
    if m is None:
        if s == "":
            raise InvalidArgument("repository name must have at least one component")
        if grammar.reference.fullmatch(s.lower()) is not None:
            raise InvalidArgument("repository name must be lowercase")
        raise InvalidArgument("invalid reference format")
    name, tag, digest = m.group(1), m.group(2) or "", m.group(3) or ""
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(
            f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest:
        _check_digest(digest)
    nm = grammar.name.fullmatch(name)
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


def _is_hex_id(s: str, length: int = 64) -> bool:
    return len(s) == length and all(c in _HEX for c in s)


def parse_normalized(s: str) -> Reference:
    """Parse a reference as a user types it and qualify it (``ParseNormalizedNamed``).

    The tag is not defaulted here; call ``with_default_tag()`` where Docker does.
    """
    if _is_hex_id(s):
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
    if _is_hex_id(s):
        return "sha256:" + s
    if s.startswith("sha256:") and _is_hex_id(s[7:]):
        return s
    return parse_normalized(s)
