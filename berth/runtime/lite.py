"""``json`` and ``contextlib.suppress`` without their modules, for the runtime's start path.

``import json`` brings ``re`` and with it ``enum``; ``import contextlib`` brings
``collections``, ``functools`` and ``operator``: together close to half of what
``berth-runtime run`` used to spend importing (``python -X importtime``). The parsing and
encoding are done by the interpreter's C accelerator, ``_json``, either way; here it is
called directly. Errors stay ``ValueError``/``TypeError`` as with ``json``.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    from typing import Any


class _DecoderSettings:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"),
                      "-Infinity": float("-inf")}.__getitem__


_scan = _json.make_scanner(_DecoderSettings())
_WHITESPACE = " \t\n\r"


def loads(text: str | bytes) -> Any:
    """``json.loads`` (UTF-8 for bytes, as every file the runtime reads is)."""
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8-sig")  # UnicodeDecodeError is a ValueError
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise ValueError(f"Expecting value: char {e.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return value


def _unserializable(obj: object) -> None:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# markers, default, encoder, indent, key separator, item separator, sort_keys, skipkeys,
# allow_nan: ``json.dumps(obj, separators=(",", ":"))`` with and without sort_keys.
_encode = _json.make_encoder(None, _unserializable, _json.encode_basestring_ascii, None,
                             ":", ",", False, False, True)
_encode_sorted = _json.make_encoder(None, _unserializable, _json.encode_basestring_ascii,
                                    None, ":", ",", True, False, True)


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """Compact ``json.dumps`` (no spaces after separators)."""
    return "".join((_encode_sorted if sort_keys else _encode)(obj, 0))


class suppress:  # noqa: N801 - named as the contextlib one it stands in for
    """``contextlib.suppress``: ignore the given exception types inside the block."""

    __slots__ = ("_kinds",)

    def __init__(self, *kinds: type[BaseException]) -> None:
        self._kinds = kinds

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, _value: object, _tb: object) -> bool:
        return kind is not None and issubclass(kind, self._kinds)
