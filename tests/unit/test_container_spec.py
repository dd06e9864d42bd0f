"""HostConfig → OCI spec: pure functions, checked without a daemon."""

from __future__ import annotations

import pytest

from berth import errors
from berth.container import spec as specs


def _record(host_config: dict, config: dict | None = None) -> dict:  # type: ignore[type-arg]
    return {"Id": "c" * 64, "Path": "sh", "Args": [], "HostConfig": host_config,
            "Config": {"Env": [], "Hostname": "h", **(config or {})}}


def _spec(host_config: dict, mounts: list | None = None) -> dict:  # type: ignore[type-arg]
    return specs.build_spec(_record(host_config), rootfs="/r", hostname_path="/h",
                            hosts_path="/hs", resolv_path="/rs", mounts=mounts or [])


def test_resources() -> None:
    res = specs.resources({"Memory": 64 << 20, "NanoCpus": 500_000_000, "PidsLimit": 10,
                           "CpuShares": 512, "BlkioWeight": 300, "CpusetCpus": "0"})
    assert res == {"memory": {"limit": 64 << 20, "swap": 128 << 20},
                   "cpu": {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0"},
                   "pids": {"limit": 10}, "blockIO": {"weight": 300}}
    assert specs.resources({}) == {}


@pytest.mark.parametrize("host_config", [
    {"Memory": -1}, {"Memory": 1024}, {"Memory": "x"}, {"BlkioWeight": 5},
    {"RestartPolicy": {"Name": "sometimes"}},
    {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}},
    {"RestartPolicy": {"Name": "always"}, "AutoRemove": True},
    {"NanoCpus": 1, "CpuQuota": 1000},
    {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]},
])
def test_bad_host_config(host_config: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(errors.InvalidArgument):
        specs.validate_host_config(host_config)


def test_caps() -> None:
    assert specs.capabilities({"CapDrop": ["ALL"]}) == []
    caps = specs.capabilities({"CapAdd": ["net_admin"], "CapDrop": ["CHOWN"]})
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps
    with pytest.raises(errors.InvalidArgument):
        specs.capabilities({"CapAdd": ["NOT_A_CAP"]})


def test_mount_plan() -> None:
    plan = specs.plan_mounts({"Volumes": {"/anon": {}}},
                             {"Binds": ["/host:/in:ro", "named:/data"],
                              "Tmpfs": {"/t": "size=1m"}})
    by_dest = {p["Destination"]: p for p in plan}
    assert by_dest["/anon"]["Type"] == "volume" and by_dest["/anon"]["Name"] == ""
    assert by_dest["/in"] == {"Type": "bind", "Source": "/host", "Destination": "/in",
                              "Mode": "ro", "RW": False, "Propagation": "rprivate"}
    assert by_dest["/data"]["Name"] == "named"
    assert by_dest["/t"]["TmpfsOptions"] == ["size=1m"]
    with pytest.raises(errors.InvalidArgument):
        specs.plan_mounts({}, {"Binds": ["relative:path:ro:extra"]})


def test_spec_from_host_config() -> None:
    spec = _spec({"ShmSize": 1 << 20, "Sysctls": {"net.ipv4.ip_forward": "1"},
                  "Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2}], "Init": True,
                  "SecurityOpt": ["no-new-privileges:true", "seccomp=unconfined"],
                  "GroupAdd": ["7"], "ReadonlyRootfs": True},
                 [{"Type": "bind", "Source": "/s", "Destination": "/d", "RW": False}])
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert f"size={1 << 20}" in shm["options"]
    # Docker's two defaults stay; the container's own are added to them.
    assert spec["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1",
                                       "net.ipv4.ip_unprivileged_port_start": "0",
                                       "net.ipv4.ping_group_range": "0 2147483647"}
    assert spec["linux"]["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 2, "soft": 1}]
    assert spec["annotations"]["io.berth.init"] == "true"
    assert spec["process"]["noNewPrivileges"] is True
    assert "seccomp" not in spec["linux"]
    assert spec["process"]["user"]["additionalGids"] == [7]
    assert spec["root"]["readonly"] is True
    assert spec["linux"]["cgroupsPath"] == "berth/" + "c" * 64
    assert {"destination": "/d", "type": "bind", "source": "/s",
            "options": ["rbind", "rprivate", "ro"]} in spec["mounts"]
