"""cgroups from ``linux.resources``: limits enforced, OOM reported, freezer, stats, live
update, device rules, and nothing left behind. Needs root and cgroup v1 hierarchies."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from berth import runtime
from berth.runtime import cgroups
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness, wait_exit

harness = support.harness
subreaper = support.subreaper
pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"),
                                 reason="needs the cgroup v1 memory hierarchy")]


def limited(harness: Harness, args: list[str], resources: dict[str, Any],
            name: str = "c") -> tuple[Path, str]:
    b = harness.bundle(args)
    spec = json.loads((b / "config.json").read_text())
    spec["linux"]["resources"].update(resources)
    path = harness.cgroup_path(name)
    spec["linux"]["cgroupsPath"] = path
    (b / "config.json").write_text(json.dumps(spec))
    return b, path


def test_memory_limit_oom_kill_is_137_and_reported(harness: Harness) -> None:
    mib = 1 << 20
    b, _ = limited(harness, ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                   {"memory": {"limit": 32 * mib, "swap": 32 * mib}})
    state_dir = harness.state_dir()
    pid = runtime.create("oom", str(b), state_dir)
    runtime.start(state_dir)
    assert wait_exit(pid) == 137
    assert runtime.oom_killed(state_dir)
    runtime.delete(state_dir)


def test_no_oom_without_pressure(harness: Harness) -> None:
    b, _ = limited(harness, ["true"], {"memory": {"limit": 64 << 20}})
    state_dir = harness.state_dir()
    pid = runtime.create("c", str(b), state_dir)
    runtime.start(state_dir)
    assert wait_exit(pid) == 0
    assert not runtime.oom_killed(state_dir)
    runtime.delete(state_dir)


def test_limits_visible_inside_and_cgroup_removed_on_delete(harness: Harness) -> None:
    b, path = limited(harness, ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                                "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares "
                                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us; "
                                "touch /sys/fs/cgroup/x 2>&1 | grep -c Read-only"],
                      {"memory": {"limit": 100 << 20, "reservation": 50 << 20},
                       "pids": {"limit": 20}, "cpu": {"shares": 512, "quota": 20000,
                                                        "period": 100000}})
    state_dir = harness.state_dir()
    pid = runtime.create("c", str(b), state_dir)
    cg = cgroups.Cgroup.for_path(path)
    assert os.path.isdir(cg.dirs["memory"])
    assert cg.pids() == [pid]  # init is in its cgroup before it execs
    with open(os.path.join(cg.dirs["memory"], "memory.soft_limit_in_bytes")) as f:
        assert int(f.read()) == 50 << 20
    runtime.start(state_dir)
    assert wait_exit(pid) == 0
    runtime.delete(state_dir)
    assert not any(os.path.exists(d) for d in cg.dirs.values())
    # The parent stays, as runc leaves it: others may be placing containers under it.
    assert all(os.path.isdir(os.path.dirname(d)) for d in cg.dirs.values())


def test_limits_inside_output(harness: Harness) -> None:
    b, _ = limited(harness, ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                             "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares; "
                             "touch /sys/fs/cgroup/memory/x"],
                   {"memory": {"limit": 100 << 20}, "pids": {"limit": 20},
                    "cpu": {"shares": 512}})
    code, out, err = harness.run(b)
    assert out.split() == [str(100 << 20), "20", "512"]
    assert "Read-only file system" in err and code == 1


def test_pids_limit_stops_a_fork_loop(harness: Harness) -> None:
    # The loop runs in a subshell the failed fork ends; read and echo are builtins.
    script = ("(for i in $(seq 40); do sleep 30 & done); "
              "read n < /sys/fs/cgroup/pids/pids.current; echo $n")
    b, _ = limited(harness, ["sh", "-c", script], {"pids": {"limit": 10}})
    code, out, err = harness.run(b)
    assert code == 0
    assert 8 <= int(out.split()[-1]) <= 10  # the limit was hit: forks failed
    assert "fork" in err.lower() or "resource temporarily unavailable" in err.lower()


def test_cpuset_pins(harness: Harness) -> None:
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        pytest.skip("needs two CPUs")
    b, _ = limited(harness, ["grep", "Cpus_allowed_list", "/proc/self/status"],
                   {"cpu": {"cpus": "1"}})
    code, out, _ = harness.run(b)
    assert code == 0 and out.split()[-1] == "1"


def test_cpu_quota_half_a_core(harness: Harness) -> None:
    b, path = limited(harness, ["sh", "-c", "while :; do :; done"],
                      {"cpu": {"quota": 50000, "period": 100000}})
    state_dir = harness.state_dir()
    pid = runtime.create("c", str(b), state_dir)
    runtime.start(state_dir)
    before = runtime.stats(state_dir)["cpu_stats"]["cpu_usage"]["total_usage"]
    t0 = time.monotonic()
    time.sleep(5)
    used = runtime.stats(state_dir)["cpu_stats"]["cpu_usage"]["total_usage"] - before
    elapsed = time.monotonic() - t0
    runtime.kill(state_dir, signal.SIGKILL)
    wait_exit(pid)
    runtime.delete(state_dir)
    share = used / (elapsed * 1e9)
    assert 0.3 < share <= 0.55, share


def test_device_rules_refuse_a_disk(harness: Harness) -> None:
    b, _ = limited(harness, ["sh", "-c", "mknod /tmp/sda b 8 0 && echo made; "
                             "head -c1 /tmp/sda; echo x > /dev/null && echo null-ok"], {})
    code, out, err = harness.run(b)
    assert out.split() == ["made", "null-ok"]
    assert "Operation not permitted" in err


def test_resources_without_device_rules_still_deny_disks(harness: Harness) -> None:
    b, _ = limited(harness, ["sh", "-c", "mknod /tmp/sda b 8 0; head -c1 /tmp/sda"], {})
    spec = json.loads((b / "config.json").read_text())
    spec["linux"]["resources"] = {"memory": {"limit": 64 << 20}}  # no devices at all
    (b / "config.json").write_text(json.dumps(spec))
    _, _, err = harness.run(b)
    assert "Operation not permitted" in err


def test_pause_resume_stats_update_pids(harness: Harness) -> None:
    b, path = limited(harness, ["sh", "-c", "sleep 100 & while :; do sleep 0.01; done"],
                      {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}})
    state_dir = harness.state_dir()
    pid = runtime.create("c", str(b), state_dir)
    runtime.start(state_dir)
    deadline = time.monotonic() + 5
    while len(runtime.container_pids(state_dir)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pids = runtime.container_pids(state_dir)
    assert pids[0] == pid and len(pids) >= 2
    runtime.pause(state_dir)
    assert runtime.state(state_dir)["status"] == "paused"
    with open(f"/proc/{pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in ("D", "S", "T")
    runtime.resume(state_dir)
    assert runtime.state(state_dir)["status"] == "running"
    st = runtime.stats(state_dir)
    assert st["memory_stats"]["limit"] == 64 << 20
    assert st["memory_stats"]["usage"] > 0 and "cache" in st["memory_stats"]["stats"]
    assert st["pids_stats"]["current"] >= 2 and st["pids_stats"]["limit"] == 50
    assert st["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert st["cpu_stats"]["system_cpu_usage"] > 0 and st["cpu_stats"]["online_cpus"] >= 1
    assert set(st["cpu_stats"]["throttling_data"]) == {"periods", "throttled_periods",
                                                        "throttled_time"}
    assert isinstance(st["blkio_stats"]["io_service_bytes_recursive"], list)
    runtime.update(state_dir, {"memory": {"limit": 128 << 20}, "pids": {"limit": 60}})
    st = runtime.stats(state_dir)
    assert st["memory_stats"]["limit"] == 128 << 20 and st["pids_stats"]["limit"] == 60
    runtime.pause(state_dir)
    runtime.delete(state_dir, force=True)  # a paused container is killed and thawed
    assert wait_exit(pid) == 137


def test_failed_create_removes_its_cgroup(harness: Harness) -> None:
    b, path = limited(harness, ["no-such-command"], {"memory": {"limit": 64 << 20}})
    state_dir = harness.state_dir()
    from berth.errors import RuntimeFailure

    with pytest.raises(RuntimeFailure) as err:
        runtime.create("c", str(b), state_dir)
    assert err.value.exit_code == 127
    cg = cgroups.Cgroup.for_path(path)
    assert not any(os.path.exists(d) for d in cg.dirs.values())


def test_device_rule_lines() -> None:
    assert cgroups.device_rule({"allow": False, "access": "rwm"}) == "a"
    assert cgroups.device_rule({"type": "c", "major": 136, "access": "rwm"}) == "c 136:* rwm"
    assert cgroups.device_rule({"type": "b", "major": 8, "minor": 0, "access": "r"}) == "b 8:0 r"
