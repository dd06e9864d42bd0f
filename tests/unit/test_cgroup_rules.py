"""Pure parts of cgroup handling: device rules, relative paths, json-file sizes."""

from __future__ import annotations

import pytest

from berth.errors import InvalidArgument
from berth.runtime import cgroups
from berth.runtime.config import from_spec
from berth.shim.jsonlog import parse_size


def test_device_rules() -> None:
    assert cgroups.device_rule({"allow": False, "access": "rwm"}) == "a"
    assert cgroups.device_rule({"type": "c", "major": 1, "minor": 3, "access": "rwm"}) \
        == "c 1:3 rwm"
    assert cgroups.device_rule({"type": "c", "major": 136, "access": "rw"}) == "c 136:* rw"
    assert cgroups.device_rule({"type": "b", "access": "m"}) == "b *:* m"
    with pytest.raises(InvalidArgument):
        cgroups.device_rule({"type": "x", "access": "r"})
    with pytest.raises(InvalidArgument):
        cgroups.device_rule({"type": "c", "access": "rwz"})


def test_relative_paths_are_checked() -> None:
    with pytest.raises(InvalidArgument):
        cgroups.Cgroup.for_path("../escape")
    with pytest.raises(InvalidArgument):
        cgroups.Cgroup.for_path("")


def test_json_round_trip() -> None:
    cg = cgroups.Cgroup("berth/x", 1, {"memory": "/sys/fs/cgroup/memory/berth/x"})
    again = cgroups.Cgroup.from_json(cg.to_json())
    assert again is not None and again.to_json() == cg.to_json()
    assert cgroups.Cgroup.from_json(None) is None


def test_spec_devices_are_allowed_in_the_cgroup(tmp_path: pytest.TempPathFactory) -> None:
    (tmp_path / "rootfs").mkdir()  # type: ignore[operator]
    spec = {"process": {"args": ["sh"]}, "linux": {
        "cgroupsPath": "berth/x", "resources": {"devices": [{"allow": False,
                                                             "access": "rwm"}]},
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}}
    cfg = from_spec(spec, str(tmp_path), "x")
    assert cfg.cgroups_path == "berth/x"
    assert cfg.resources["devices"][-1] == {"allow": True, "type": "c", "major": 10,
                                            "minor": 229, "access": "rwm"}


def test_default_cgroup_path_when_resources_but_no_path(tmp_path: pytest.TempPathFactory
                                                         ) -> None:
    (tmp_path / "rootfs").mkdir()  # type: ignore[operator]
    spec = {"process": {"args": ["sh"]}, "linux": {"resources": {"pids": {"limit": 5}}}}
    assert from_spec(spec, str(tmp_path), "abc").cgroups_path == "berth-runtime/abc"
    spec = {"process": {"args": ["sh"]}, "linux": {}}
    assert from_spec(spec, str(tmp_path), "abc").cgroups_path is None


def test_log_sizes_in_dockers_units() -> None:
    assert parse_size("10m") == 10 << 20
    assert parse_size("512k") == 512 << 10
    assert parse_size("1g") == 1 << 30
    assert parse_size("100") == 100
    with pytest.raises(ValueError):
        parse_size("ten")
