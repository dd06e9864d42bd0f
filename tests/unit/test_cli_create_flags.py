"""``run``/``create`` flags → the create request, and their errors, as the docker CLI builds them.

The expected bodies and messages were captured from docker 28 against the fake daemon; the
parity test at the end repeats that comparison live when the docker CLI is installed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_cli_fakedaemon import FakeDaemon, fake_daemon, json_reply
from test_cli_verbs import CID, berth

from berth.cli.options import go_duration_ns, nano_cpus, parse_mount, parse_ulimit

__all__ = ["fake_daemon"]


def _create(daemon: FakeDaemon, *flags: str) -> dict[str, Any]:
    daemon.route("POST", "/containers/create", json_reply({"Id": CID, "Warnings": []}, 201))
    r = berth(daemon, "create", *flags, "busybox")
    assert (r.code, r.err) == (0, ""), r.err
    body: dict[str, Any] = daemon.last("POST", "/containers/create").json()
    return body


def test_resources(fake_daemon: FakeDaemon) -> None:
    body = _create(fake_daemon, "--memory", "512m", "--memory-reservation", "256m",
                   "--memory-swap", "-1", "--cpus", "1.5", "--cpu-shares", "512",
                   "--cpu-quota", "5000", "--cpu-period", "10000", "--cpuset-cpus", "0-1",
                   "--cpuset-mems", "0", "--pids-limit", "100", "--blkio-weight", "300",
                   "--ulimit", "nofile=1024:2048", "--ulimit", "core=0", "--oom-kill-disable",
                   "--shm-size", "64m", "--memory-swappiness", "10")
    host = body["HostConfig"]
    assert {k: host[k] for k in (
        "Memory", "MemoryReservation", "MemorySwap", "NanoCpus", "CpuShares", "CpuQuota",
        "CpuPeriod", "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight", "Ulimits",
        "OomKillDisable", "ShmSize", "MemorySwappiness")} == {
        "Memory": 536870912, "MemoryReservation": 268435456, "MemorySwap": -1,
        "NanoCpus": 1500000000, "CpuShares": 512, "CpuQuota": 5000, "CpuPeriod": 10000,
        "CpusetCpus": "0-1", "CpusetMems": "0", "PidsLimit": 100, "BlkioWeight": 300,
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                    {"Name": "core", "Soft": 0, "Hard": 0}],
        "OomKillDisable": True, "ShmSize": 67108864, "MemorySwappiness": 10}


def test_lifecycle_health_and_logging(fake_daemon: FakeDaemon) -> None:
    body = _create(fake_daemon, "--restart", "unless-stopped", "--stop-signal", "SIGINT",
                   "--stop-timeout", "5", "--init", "--health-cmd", "true",
                   "--health-interval", "1m30s", "--health-retries", "3",
                   "--health-timeout", "500ms", "--health-start-period", "2s",
                   "--log-driver", "json-file", "--log-opt", "max-size=10m",
                   "--log-opt", "max-file=3")
    host = body["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert (body["StopSignal"], body["StopTimeout"], host["Init"]) == ("SIGINT", 5, True)
    assert body["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 90_000_000_000,
                                   "Timeout": 500_000_000, "StartPeriod": 2_000_000_000,
                                   "Retries": 3}
    assert host["LogConfig"] == {"Type": "json-file",
                                 "Config": {"max-size": "10m", "max-file": "3"}}
    body = _create(fake_daemon, "--no-healthcheck")
    assert body["Healthcheck"] == {"Test": ["NONE"]}
    assert "Init" not in body["HostConfig"]  # only when the flag is given, as docker


def test_mounts_security_and_network(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    profile = tmp_path / "sec.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": []}')
    labels = tmp_path / "labels"
    labels.write_text("a=1\n# c\nb\n")
    body = _create(
        fake_daemon, "-v", "/tmp:/x:ro", "-v", "vol:/y", "-v", "/anon", "-v", "./rel:/z",
        "--mount", "type=bind,source=/tmp,target=/m,readonly",
        "--mount", "type=volume,src=v2,dst=/n,volume-nocopy",
        "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777",
        "--tmpfs", "/run:rw,size=1m", "-p", "8080:80", "-p", "127.0.0.1::53/udp",
        "--add-host", "a:1.2.3.4", "--add-host", "b=::1", "--dns", "8.8.8.8",
        "--security-opt", "no-new-privileges", "--security-opt", f"seccomp={profile}",
        "--sysctl", "net.ipv4.ip_forward=1", "--group-add", "10", "--cap-add", "net_admin",
        "--cap-drop", "all", "--cap-drop", "chown", "--label-file", str(labels), "-l", "x=y",
        "--network", "host", "--read-only", "--privileged", "-a", "stdout")
    host = body["HostConfig"]
    assert host["Binds"] == ["/tmp:/x:ro", "vol:/y", f"{os.getcwd()}/rel:/z"]
    assert body["Volumes"] == {"/anon": {}}
    assert host["Mounts"] == [
        {"Type": "bind", "Source": "/tmp", "Target": "/m", "ReadOnly": True},
        {"Type": "volume", "Source": "v2", "Target": "/n",
         "VolumeOptions": {"NoCopy": True, "DriverConfig": {}}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576,
                                                           "Mode": 0o1777}}]
    assert host["Tmpfs"] == {"/run": "rw,size=1m"}
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                    "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert host["ExtraHosts"] == ["a:1.2.3.4", "b:::1"]
    assert host["Dns"] == ["8.8.8.8"]
    assert host["SecurityOpt"] == [
        "no-new-privileges", 'seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}']
    assert host["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert (host["GroupAdd"], host["CapAdd"], host["CapDrop"]) == (
        ["10"], ["CAP_NET_ADMIN"], ["ALL", "CAP_CHOWN"])
    assert body["Labels"] == {"a": "1", "x": "y"}
    assert (host["NetworkMode"], host["ReadonlyRootfs"], host["Privileged"]) == (
        "host", True, True)
    assert (body["AttachStdin"], body["AttachStdout"], body["AttachStderr"]) == (
        False, True, False)


@pytest.mark.parametrize(("flags", "error"), [
    (["--cpus", "abc"], 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a '
                        "rational number"),
    (["--cpus", "0.0000000001"], 'invalid argument "0.0000000001" for "--cpus" flag: value is '
                                 "too precise"),
    (["--ulimit", "foo=1"], 'invalid argument "foo=1" for "--ulimit" flag: invalid ulimit '
                            "type: foo"),
    (["--ulimit", "nofile=2:1"], 'invalid argument "nofile=2:1" for "--ulimit" flag: ulimit '
                                 "soft limit must be less than or equal to hard limit: 2 > 1"),
    (["--health-interval", "30"], 'invalid argument "30" for "--health-interval" flag: time: '
                                  'missing unit in duration "30"'),
    (["--memory-swap", "x"], "invalid argument \"x\" for \"--memory-swap\" flag: invalid "
                             "size: 'x'"),
    (["--blkio-weight", "70000"], 'invalid argument "70000" for "--blkio-weight" flag: '
                                  'strconv.ParseUint: parsing "70000": value out of range'),
    (["--pids-limit", "x"], 'invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: '
                            'parsing "x": invalid syntax'),
    (["--mount", "source=/x"], 'invalid argument "source=/x" for "--mount" flag: target is '
                               "required"),
    (["--mount", "target"], "invalid argument \"target\" for \"--mount\" flag: invalid field "
                            "'target' must be a key=value pair"),
    (["--add-host", "bad"], 'invalid argument "bad" for "--add-host" flag: bad format for '
                            'add-host: "bad"'),
    (["--dns", "x"], 'invalid argument "x" for "--dns" flag: IP address is not correctly '
                     "formatted: x"),
    (["--sysctl", "foo"], "invalid argument \"foo\" for \"--sysctl\" flag: sysctl 'foo' is "
                          "not allowed"),
])
def test_flag_errors_as_pflag_words_them(fake_daemon: FakeDaemon, flags: list[str],
                                         error: str) -> None:
    r = berth(fake_daemon, "create", *flags, "busybox")
    assert r.code == 125
    assert r.err.startswith(error + "\n\nUsage:  berth create [OPTIONS] IMAGE")
    assert fake_daemon.calls() == []


@pytest.mark.parametrize(("flags", "error"), [
    (["--security-opt", "bad"], 'Invalid --security-opt: "bad"'),
    (["--no-healthcheck", "--health-cmd=x"], "--no-healthcheck conflicts with --health-* "
                                             "options"),
    (["--log-driver", "none", "--log-opt", "a=b"], "invalid logging opts for driver none"),
    (["--memory-swappiness", "200"], "invalid value: 200. Valid memory swappiness range is "
                                     "0-100"),
    (["--health-timeout", "-1s"], "--health-timeout cannot be negative"),
])
def test_option_errors_as_docker_words_them(fake_daemon: FakeDaemon, flags: list[str],
                                            error: str) -> None:
    r = berth(fake_daemon, "run", *flags, "busybox")
    assert (r.code, r.err) == (125, f"berth: {error}\n\nRun 'berth run --help' for more "
                                    "information\n")


@pytest.mark.parametrize(("text", "nanos"), [
    ("1.5", 1_500_000_000), ("0.001", 1_000_000), ("2", 2_000_000_000), ("3/2", 1_500_000_000)])
def test_nano_cpus(text: str, nanos: int) -> None:
    assert nano_cpus(text) == nanos


@pytest.mark.parametrize(("text", "nanos"), [
    ("0", 0), ("1m30s", 90_000_000_000), ("1.5h", 5_400_000_000_000), ("10ms", 10_000_000),
    ("-2s", -2_000_000_000), ("1h1us", 3_600_000_001_000)])
def test_go_duration(text: str, nanos: int) -> None:
    assert go_duration_ns(text) == nanos


@pytest.mark.parametrize(("text", "message"), [
    ("30", 'time: missing unit in duration "30"'), ("x", 'time: invalid duration "x"'),
    ("3d", 'time: unknown unit "d" in duration "3d"'), ("", 'time: invalid duration ""')])
def test_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        go_duration_ns(text)


def test_ulimit_and_mount_parsers() -> None:
    assert parse_ulimit("nproc=10") == {"Name": "nproc", "Soft": 10, "Hard": 10}
    assert parse_mount("target=/data") == {"Type": "volume", "Target": "/data"}
    assert parse_mount("type=bind,source=/a,destination=/b,ro=false,bind-propagation=rshared"
                       ) == {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": False,
                             "BindOptions": {"Propagation": "rshared"}}


def test_negative_values_after_flags(fake_daemon: FakeDaemon) -> None:
    body = _create(fake_daemon, "-c", "-5", "--pids-limit", "-1", "--oom-score-adj", "-500")
    assert body["HostConfig"]["CpuShares"] == -5
    assert body["HostConfig"]["PidsLimit"] == -1
    assert body["HostConfig"]["OomScoreAdj"] == -500


def test_run_pull_always_and_cidfile(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    from test_cli_verbs import Container

    Container(fake_daemon)
    cidfile = tmp_path / "cid"
    r = berth(fake_daemon, "run", "-d", "--pull", "always", "-q", "--cidfile", str(cidfile),
              "busybox")
    assert r.code == 0, r.err
    assert fake_daemon.calls()[0] == "POST /images/create"
    assert cidfile.read_text() == CID
    r = berth(fake_daemon, "run", "-d", "--cidfile", str(cidfile), "busybox")
    assert r.code == 125
    assert "container ID file found" in r.err
    r = berth(fake_daemon, "run", "--pull", "sometimes", "busybox")
    assert r.code == 125


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI to compare")
def test_create_body_matches_docker(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    """The docker CLI and berth against the same fake: every field berth sends is docker's."""
    fake_daemon.route("POST", "/containers/create", json_reply({"Id": CID, "Warnings": []}, 201))
    flags = ["--memory", "1g", "--cpus", "0.25", "--restart", "on-failure:2", "--init",
             "--ulimit", "nofile=10:20", "--health-cmd", "true", "--health-interval", "5s",
             "-v", "/tmp:/x", "--tmpfs", "/run", "-p", "80", "--cap-add", "sys_admin",
             "--log-opt", "max-size=1m", "-e", "A=1", "-l", "k=v", "-w", "/w", "-u", "1",
             "--stop-timeout", "3", "--shm-size", "1m", "--pids-limit", "9", "--read-only"]
    proc = subprocess.run(["docker", "-H", fake_daemon.host, "create", *flags, "busybox", "sh"],
                          capture_output=True, timeout=30,
                          env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]})
    assert proc.returncode == 0, proc.stderr
    docker_body = fake_daemon.last("POST", "/containers/create").json()
    out = io.BytesIO()
    from berth.cli.main import main

    assert main(["-H", fake_daemon.host, "create", *flags, "busybox", "sh"], stdout=out,
                stderr=io.BytesIO(), environ={}) == 0
    ours = fake_daemon.last("POST", "/containers/create").json()

    def same(a: Any, b: Any, where: str) -> None:
        if isinstance(a, dict):
            for key, value in a.items():
                assert key in b, f"{where}.{key} not sent by docker"
                if key == "EndpointsConfig":
                    continue
                same(value, b[key], f"{where}.{key}")
        else:
            assert a == b, f"{where}: {a!r} != docker's {b!r}"

    same(ours, docker_body, "body")
    assert json.dumps(ours)  # serialisable as sent


def test_namespaces_devices_and_more(fake_daemon: FakeDaemon) -> None:
    body = _create(
        fake_daemon, "--annotation", "a=b", "--cgroup-parent", "cg", "--cgroupns", "private",
        "--cpu-rt-period", "1000", "--cpu-rt-runtime", "500", "--device", "/dev/null",
        "--device", "/dev/zero:/dev/z:r", "--device", "/dev/full:rw",
        "--device-cgroup-rule", "c 1:3 mr", "--dns-option", "ndots:2", "--dns-search",
        "example.com", "--domainname", "dom", "--ipc", "private", "--pid", "host", "--uts",
        "host", "--userns", "host", "--runtime", "runc", "--storage-opt", "size=1G",
        "--volume-driver", "local", "--volumes-from", "other", "--link", "db:db",
        "--kernel-memory", "10m")
    host = body["HostConfig"]
    # Captured from docker 28 (which, like API 1.42+, drops the kernel memory limit).
    assert {k: host.get(k) for k in (
        "Annotations", "CgroupParent", "CgroupnsMode", "CpuRealtimePeriod",
        "CpuRealtimeRuntime", "Devices", "DeviceCgroupRules", "DnsOptions", "DnsSearch",
        "IpcMode", "PidMode", "UTSMode", "UsernsMode", "Runtime", "StorageOpt",
        "VolumeDriver", "VolumesFrom", "Links", "KernelMemory")} == {
        "Annotations": {"a": "b"}, "CgroupParent": "cg", "CgroupnsMode": "private",
        "CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 500,
        "Devices": [
            {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null",
             "CgroupPermissions": "rwm"},
            {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "r"},
            {"PathOnHost": "/dev/full", "PathInContainer": "/dev/full",
             "CgroupPermissions": "rw"}],
        "DeviceCgroupRules": ["c 1:3 mr"], "DnsOptions": ["ndots:2"],
        "DnsSearch": ["example.com"], "IpcMode": "private", "PidMode": "host",
        "UTSMode": "host", "UsernsMode": "host", "Runtime": "runc",
        "StorageOpt": {"size": "1G"}, "VolumeDriver": "local", "VolumesFrom": ["other"],
        "Links": ["db:db"], "KernelMemory": None}
    assert body["Domainname"] == "dom"


def test_network_endpoint(fake_daemon: FakeDaemon) -> None:
    body = _create(fake_daemon, "--network", "mynet", "--network-alias", "web", "--ip",
                   "10.0.0.5", "--ip6", "fd00::5", "--mac-address", "02:42:ac:11:00:02")
    assert body["HostConfig"]["NetworkMode"] == "mynet"
    assert body["NetworkingConfig"]["EndpointsConfig"] == {"mynet": {
        "Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.0.0.5", "IPv6Address": "fd00::5"},
        "MacAddress": "02:42:ac:11:00:02"}}
    assert _create(fake_daemon)["NetworkingConfig"]["EndpointsConfig"] == {"default": {}}
    assert _create(fake_daemon, "--network", "host")["NetworkingConfig"] == {
        "EndpointsConfig": {}}
    r = berth(fake_daemon, "run", "--network-alias", "x", "busybox")
    assert (r.code, r.err) == (125, "berth: network-scoped aliases are only supported for "
                                    "user-defined networks\n\nRun 'berth run --help' for more "
                                    "information\n")


def test_block_io_devices_and_gpus(fake_daemon: FakeDaemon) -> None:
    host = _create(fake_daemon, "--blkio-weight-device", "/dev/sda:200", "--device-read-bps",
                   "/dev/sda:1mb", "--device-write-bps", "/dev/sdb:10", "--device-read-iops",
                   "/dev/sda:1000", "--device-write-iops", "/dev/sda:5", "--gpus",
                   "capabilities=compute,driver=nvidia,count=1")["HostConfig"]
    assert {k: host[k] for k in ("BlkioWeightDevice", "BlkioDeviceReadBps",
                                 "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                                 "BlkioDeviceWriteIOps", "DeviceRequests")} == {
        "BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 200}],
        "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1048576}],
        "BlkioDeviceWriteBps": [{"Path": "/dev/sdb", "Rate": 10}],
        "BlkioDeviceReadIOps": [{"Path": "/dev/sda", "Rate": 1000}],
        "BlkioDeviceWriteIOps": [{"Path": "/dev/sda", "Rate": 5}],
        "DeviceRequests": [{"Driver": "nvidia", "Count": 1, "DeviceIDs": None,
                            "Capabilities": [["compute", "gpu"]], "Options": {}}]}
    gpus = _create(fake_daemon, "--gpus", '"device=0,1"')["HostConfig"]["DeviceRequests"]
    assert gpus[0]["DeviceIDs"] == ["0", "1"] and gpus[0]["Count"] == 0
    r = berth(fake_daemon, "create", "--device-read-bps", "/x/sda:1", "busybox")
    assert r.err.startswith('invalid argument "/x/sda:1" for "--device-read-bps" flag: bad '
                            "format for device path: /x/sda:1\n")


def test_windows_only_flags_refused(fake_daemon: FakeDaemon) -> None:
    r = berth(fake_daemon, "run", "--cpu-count", "2", "--io-maxiops", "100", "busybox")
    assert (r.code, r.err) == (1, '"--cpu-count" is only supported on a berth daemon running '
                                  "on windows, but the berth daemon is running on linux\n"
                                  '"--io-maxiops" is only supported on a berth daemon running '
                                  "on windows, but the berth daemon is running on linux\n")


def test_unknown_flag_with_a_space(fake_daemon: FakeDaemon) -> None:
    r = berth(fake_daemon, "create", "--gpus device=0,1", "busybox")
    assert r.code == 125 and r.err.startswith("unknown flag: --gpus device\n")
