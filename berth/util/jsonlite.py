"""Compact JSON through the C accelerator alone, for processes that count milliseconds.

``import json`` loads ``re`` (and with it ``enum``) to compile patterns the C scanner and
encoder never use: ~5 ms of a ``berth run`` that should take tens. These two functions call the
same C code ``json`` uses, and hand anything unusual (bad input, a C module missing) to ``json``
itself, so results and errors are the standard library's.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

__all__ = ["dumps", "loads"]

_WHITESPACE = " \t\n\r"

try:
    import _json
except ImportError:  # another interpreter: the standard module does everything
    _json = None  # type: ignore[assignment]


class _ScanContext:
    """What the C scanner reads from a ``json.JSONDecoder``: the defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__
    memo: dict[str, str] = {}


def _refuse(obj: object) -> object:
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


if _json is not None:
    _scan = _json.make_scanner(_ScanContext())
    # markers, default, encoder, indent, key separator, item separator, sort_keys, skipkeys,
    # allow_nan
    _encode = _json.make_encoder(None, _refuse, _json.encode_basestring_ascii, None, ":", ",",
                                 False, False, True)
    _encode_sorted = _json.make_encoder(None, _refuse, _json.encode_basestring_ascii, None,
                                        ":", ",", True, False, True)
else:  # pragma: no cover
    _scan = _encode = _encode_sorted = None


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """``json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys)``."""
    encode = _encode_sorted if sort_keys else _encode
    if encode is not None:
        try:
            return "".join(encode(obj, 0))
        except (TypeError, ValueError, RecursionError):
            pass  # the standard message (and a cycle is reported, not overflowed)
    import json

    return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys)


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads(data)`` for a document in UTF-8 (as every daemon answer is)."""
    if _scan is not None:
        try:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            start = len(text) - len(text.lstrip(_WHITESPACE))
            try:
                value, end = _scan(text, start)
            except StopIteration:
                pass
            except ValueError:
                pass
            else:
                if not text[end:].strip(_WHITESPACE):
                    return value
    import json

    return json.loads(data)
