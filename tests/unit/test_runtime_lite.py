"""berth.runtime.lite stands in for json and contextlib.suppress: same results, same errors."""

import json
import math

import pytest

from berth.runtime import lite
from berth.runtime.spec import default_spec

DOCUMENTS = [
    '{"a": [1, 2.5, "x\\u00e9", null, true, false, {"b": -1e300}]}',
    "  []  ",
    '"just a string"',
    "12",
    '{"emoji": "\\ud83d\\ude00", "nested": {"k": [[], {}]}}',
    "\n\t{\"spaced\" : 1 }\r\n",
    json.dumps(default_spec(["sh", "-c", "echo hi"])),
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_loads_matches_json(text):
    assert lite.loads(text) == json.loads(text)
    assert lite.loads(text.encode()) == json.loads(text)


def test_loads_takes_a_utf8_byte_order_mark():
    assert lite.loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


def test_loads_non_finite_constants_as_json_does():
    inf, neg, nan = lite.loads("[Infinity, -Infinity, NaN]")
    assert inf == math.inf and neg == -math.inf and math.isnan(nan)


@pytest.mark.parametrize("text", ["", "   ", "{", "[1,]", '{"a": 1} x', "[1] [2]", "nul",
                                  b"\xff\xfe"])
def test_loads_rejects_what_json_rejects(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        lite.loads(text)


@pytest.mark.parametrize("obj", [
    {"b": 1, "a": [1.5, "é\n\x00", None, True, False]},
    "text", 3, -0.0, 1e20, [], {},
    {"z": {"y": 1, "x": [2, {"w": "v"}]}},
    default_spec(["true"]),
])
def test_dumps_matches_compact_json(obj):
    assert lite.dumps(obj) == json.dumps(obj, separators=(",", ":"))
    assert lite.dumps(obj, sort_keys=True) == json.dumps(obj, separators=(",", ":"),
                                                         sort_keys=True)
    assert lite.loads(lite.dumps(obj)) == obj


def test_dumps_refuses_what_json_cannot_encode():
    with pytest.raises(TypeError, match="not JSON serializable"):
        lite.dumps({"a": object()})


def test_suppress_swallows_only_the_given_kinds():
    with lite.suppress(OSError):
        raise FileNotFoundError("gone")
    with pytest.raises(ValueError), lite.suppress(OSError, KeyError):
        raise ValueError("kept")
    with lite.suppress(OSError):
        pass
