"""Image references: Docker's normalisation and messages, and properties of the parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth.errors import InvalidArgument
from berth.oci import Reference, parse_any_reference, parse_normalized, parse_reference

HEX = "a" * 64


@pytest.mark.parametrize(("given_", "full", "familiar"), [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("registry.example.com/x/y/z", "registry.example.com/x/y/z:latest",
     "registry.example.com/x/y/z:latest"),
    ("[::1]:5000/app:1", "[::1]:5000/app:1", "[::1]:5000/app:1"),
    ("Example.com/app", "Example.com/app:latest", "Example.com/app:latest"),
    ("ab__c--d/e_f.g:T_a.g-1", "docker.io/ab__c--d/e_f.g:T_a.g-1",
     "ab__c--d/e_f.g:T_a.g-1"),
    ("a.b/c", "a.b/c:latest", "a.b/c:latest"),  # a dot makes the first component a host
    (f"busybox@sha256:{HEX}", f"docker.io/library/busybox@sha256:{HEX}",
     f"busybox@sha256:{HEX}"),
    (f"busybox:1@sha256:{HEX}", f"docker.io/library/busybox:1@sha256:{HEX}",
     f"busybox:1@sha256:{HEX}"),
])
def test_normalised_as_docker(given_: str, full: str, familiar: str) -> None:
    ref = parse_normalized(given_).with_default_tag()
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize(("bad", "message"), [
    ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
    ("user/App", "invalid reference format: repository name (user/App) must be lowercase"),
    ("a b", "invalid reference format"),
    ("busybox:", "invalid reference format"),
    (":tag", "invalid reference format"),
    ("-busybox", "invalid reference format"),
    ("busybox:-x", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("busybox@sha256:abc", "invalid reference format"),
    ("", "invalid reference format"),
    (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
    ("a/" + "b" * 260, "repository name must not be more than 255 characters"),
    ("busybox:" + "t" * 129, "invalid reference format"),
])
def test_refused_with_dockers_message(bad: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_normalized(bad)
    assert str(err.value) == message


def test_digest_algorithm_and_length_checked() -> None:
    with pytest.raises(InvalidArgument, match="invalid checksum digest length"):
        parse_reference("x@sha256:" + "a" * 32)
    with pytest.raises(InvalidArgument, match="unsupported digest algorithm"):
        parse_reference("x@md5:" + "a" * 32)


def test_parse_any_reference_ids() -> None:
    assert parse_any_reference(HEX) == f"sha256:{HEX}"
    assert parse_any_reference(f"sha256:{HEX}") == f"sha256:{HEX}"
    ref = parse_any_reference("d2dd61ac0326")
    assert not isinstance(ref, str) and ref.name == "docker.io/library/d2dd61ac0326"


_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_sep = st.sampled_from([".", "_", "__", "-", "--"])
_component = st.builds(lambda a, s, b: a + s + b, _alnum, _sep, _alnum) | _alnum
# A first component with a dot or colon would be read as a registry host: keep it plain.
_first = st.builds(lambda a, s, b: a + s + b, _alnum, st.sampled_from(["_", "__", "-"]), _alnum)
_path = st.builds(lambda a, rest: "/".join([a, *rest]), _first | _alnum,
                  st.lists(_component, max_size=3))
_domain = st.sampled_from(["", "localhost/", "localhost:5000/", "example.com/",
                           "reg.example.co:443/", "docker.io/"])
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@given(_domain, _path, st.none() | _tag)
def test_valid_references_round_trip(domain: str, path: str, tag: str | None) -> None:
    text = domain + path + (f":{tag}" if tag else "")
    ref = parse_normalized(text).with_default_tag()
    assert ref.tag == (tag or "latest")
    # Normalising is idempotent, from the full and from the familiar form.
    assert parse_normalized(str(ref)) == ref
    assert parse_normalized(ref.familiar()).with_default_tag() == ref
    assert ref.domain and "/" in ref.name


@given(st.text(max_size=40))
def test_parser_only_raises_invalid_argument(text: str) -> None:
    try:
        ref = parse_normalized(text)
    except InvalidArgument:
        return
    assert parse_normalized(str(ref)) == ref
    assert ref.path == ref.path.lower()


@given(_path)
def test_uppercase_is_refused_with_the_repository(path: str) -> None:
    # Upper case in the first of several components would make it a registry host, as in
    # Docker; so change the last component.
    head, _, last = path.rpartition("/")
    upper = (head + "/" if head else "") + last.upper()
    if upper == path:
        return
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        parse_normalized(upper)


def _by_grammar(text: str) -> Reference | None:
    """What the grammar's regular expressions alone make of a digest-free reference."""
    from berth.oci.reference import NAME_TOTAL_LENGTH_MAX, _patterns

    m = _patterns().reference.fullmatch(text)
    if m is None or m.group(3) or len(m.group(1)) > NAME_TOTAL_LENGTH_MAX:
        return None
    nm = _patterns().name.fullmatch(m.group(1))
    assert nm is not None
    return Reference(nm.group(1) or "", nm.group(2), m.group(2) or "")


_grammar_chars = st.text("ab0Z9.-_:/@[]", max_size=24)


@given(_grammar_chars | (_domain.map(lambda d: d.rstrip("/")) | _path)
       .flatmap(lambda p: st.builds(lambda tail: p + tail, _grammar_chars)))
def test_hand_parser_agrees_with_the_grammar(text: str) -> None:
    from berth.oci.reference import _parse_plain

    if "@" in text or "[" in text:
        return
    assert _parse_plain(text) == _by_grammar(text)


@pytest.mark.parametrize("text", ["a/b", "a:1/b:c", "localhost:5000", "A.b-c/d", "a-/b",
                                  "a--b__c.d", "a___b", "a._b", "x" * 256, "a:" + "t" * 128,
                                  "a:" + "t" * 129, "a/b:c:d", "1.2.3.4:80/x", "a.b:/c"])
def test_hand_parser_agrees_on_edges(text: str) -> None:
    from berth.oci.reference import _parse_plain

    assert _parse_plain(text) == _by_grammar(text)


def test_reference_is_a_frozen_value() -> None:
    import pickle

    ref = parse_normalized("busybox:1")
    assert ref == Reference("docker.io", "library/busybox", "1")
    assert hash(ref) == hash(Reference("docker.io", "library/busybox", "1"))
    assert ref != Reference("docker.io", "library/busybox", "2")
    assert {ref: 1}[parse_normalized("docker.io/library/busybox:1")] == 1
    assert pickle.loads(pickle.dumps(ref)) == ref
    assert repr(ref) == ("Reference(domain='docker.io', path='library/busybox', tag='1', "
                         "digest='')")
    with pytest.raises(AttributeError):
        ref.tag = "2"  # type: ignore[misc]
