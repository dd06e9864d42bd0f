"""Docker's default spec, and its privileged variant, validate against the OCI schema."""

from __future__ import annotations

import json
import warnings

import pytest

from berth.runtime.spec import default_spec, privileged_spec_changes
from tests.daemon_fixture import SPECS as SHARED_SPECS

SPECS = SHARED_SPECS / "oci" / "runtime"


@pytest.mark.parametrize("privileged", [False, True])
def test_default_spec_is_valid(privileged: bool) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not (SPECS / "config-schema.json").exists():
        pytest.skip("no OCI schemas here")
    schema = json.loads((SPECS / "config-schema.json").read_text())
    spec = default_spec(["sh"])
    if privileged:
        privileged_spec_changes(spec)
        assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
        assert "seccomp" not in spec["linux"] and not spec["linux"]["maskedPaths"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        resolver = jsonschema.RefResolver(base_uri=f"file://{SPECS}/", referrer=schema)
        jsonschema.validate(spec, schema, resolver=resolver)
