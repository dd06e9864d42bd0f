"""berth.util.jsonlite gives what the json module gives, without importing it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth.util import jsonlite

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(_values)
def test_same_text_and_values_as_json(value: object) -> None:
    text = jsonlite.dumps(value)
    assert text == json.dumps(value, separators=(",", ":"))
    assert jsonlite.loads(text) == json.loads(text)
    assert jsonlite.loads(("\n " + json.dumps(value, indent=1) + " \r\n").encode()) == value


@given(st.text(max_size=30))
def test_bad_input_fails_as_json_does(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError as e:
        with pytest.raises(type(e)):
            jsonlite.loads(text)
        return
    got = jsonlite.loads(text)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected


def test_edges() -> None:
    assert jsonlite.loads(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}
    assert jsonlite.loads(b"\xef\xbb\xbf{}") == {}  # a BOM: handed to json, which copes
    assert jsonlite.dumps({"é": float("inf"), 1: None}) == '{"\\u00e9":Infinity,"1":null}'
    with pytest.raises(json.JSONDecodeError):
        jsonlite.loads(b"{} x")
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonlite.dumps({"a": object()})
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsonlite.dumps(loop)


def test_does_not_import_json_or_re() -> None:
    probe = ("import sys; from berth.util import jsonlite; jsonlite.loads(jsonlite.dumps("
             "{'a': [1]})); print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                         check=True,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])}).stdout
    assert out.strip() == "[]"


@given(_values)
def test_sorted_keys_as_json_sorts_them(value: object) -> None:
    assert jsonlite.dumps(value, sort_keys=True) == json.dumps(value, separators=(",", ":"),
                                                               sort_keys=True)


def test_a_runtime_spec_round_trips() -> None:
    from berth.runtime.spec import default_spec

    spec = default_spec(["sh", "-c", "echo hi"])
    assert jsonlite.loads(json.dumps(spec)) == spec
    assert jsonlite.dumps(spec) == json.dumps(spec, separators=(",", ":"))


def test_suppress_swallows_only_the_given_kinds() -> None:
    from berth.util import suppress

    with suppress(OSError):
        raise FileNotFoundError("gone")
    with pytest.raises(ValueError), suppress(OSError, KeyError):
        raise ValueError("kept")
    with suppress(OSError):
        pass
