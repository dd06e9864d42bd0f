"""The OCI runtime library on busybox bundles: isolation, Docker's defaults, exit codes,
failures, and the state machine. Needs root."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from berth import runtime
from berth.errors import Conflict, InvalidArgument, NotFound, RuntimeFailure
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness, extract_rootfs, wait_exit

harness = support.harness
subreaper = support.subreaper

pytestmark = pytest.mark.root

DOCKER_CAPS = "00000000a80425fb"


def test_pid1_hostname_and_only_lo(harness: Harness) -> None:
    b = harness.bundle(["sh", "-c", "echo $$; hostname; ls /sys/class/net; ps -o pid,comm; true"])
    spec = json.loads((b / "config.json").read_text())
    spec["hostname"] = "box"
    (b / "config.json").write_text(json.dumps(spec))
    code, out, err = harness.run(b)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "1"
    assert lines[1] == "box"
    assert lines[2] == "lo"
    pids = [ln.split()[0] for ln in lines[4:]]
    assert set(pids) <= {"1"} | {str(n) for n in range(2, 10)}, out  # no host processes
    assert len(pids) == 2  # sh and ps


def test_lo_is_up_and_usable(harness: Harness) -> None:
    code, out, _ = harness.run(harness.bundle(["cat", "/sys/class/net/lo/operstate",
                                               "/sys/class/net/lo/flags"]))
    assert code == 0
    assert int(out.split()[1], 16) & 1  # IFF_UP


def test_host_files_invisible(harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "host-secret").write_text("x")
    b = harness.bundle(["sh", "-c", f"ls {tmp_path}/host-secret; ls /; cat /proc/1/cmdline"])
    code, out, err = harness.run(b)
    assert code == 0
    assert "host-secret" not in out
    assert "No such file" in err
    assert "bin" in out.split()


def test_default_capabilities_are_dockers(harness: Harness) -> None:
    code, out, _ = harness.run(harness.bundle(["grep", "^Cap", "/proc/self/status"]))
    assert code == 0
    caps = dict(line.split(":\t") for line in out.splitlines())
    assert caps["CapEff"] == DOCKER_CAPS
    assert caps["CapPrm"] == DOCKER_CAPS
    assert caps["CapBnd"] == DOCKER_CAPS
    assert caps["CapInh"] == "0000000000000000"
    assert caps["CapAmb"] == "0000000000000000"


def test_masked_and_readonly_paths(harness: Harness) -> None:
    script = ("for p in /proc/kcore /proc/keys /proc/timer_list; do "
              "  [ -e $p ] && echo \"$p:$(wc -c < $p)\"; done; "
              "ls /sys/firmware | wc -l; "
              "echo 1 > /proc/sys/kernel/ns_last_pid && echo WROTE; "
              "grep -E ' /proc/(sys|keys) ' /proc/self/mountinfo")
    code, out, err = harness.run(harness.bundle(["sh", "-c", script]))
    lines = out.splitlines()
    for line in lines:
        if line.startswith("/proc/"):
            assert line.endswith(":0"), line  # masked: reads as empty
    assert "/proc/keys:0" in lines
    assert "0" in lines  # /sys/firmware is an empty tmpfs
    assert "WROTE" not in out
    assert "Read-only file system" in err
    sys_line = next(ln for ln in lines if " /proc/sys " in ln)
    assert " ro," in sys_line or " ro " in sys_line
    assert code == 0 or code == 1


def test_proc_kcore_masked_when_present(harness: Harness) -> None:
    if not os.path.exists("/proc/kcore"):
        pytest.skip("this kernel has no /proc/kcore")
    code, out, _ = harness.run(harness.bundle(["wc", "-c", "/proc/kcore"]))
    assert code == 0 and out.split()[0] == "0"


def test_exit_code(harness: Harness) -> None:
    code, _, _ = harness.run(harness.bundle(["sh", "-c", "exit 3"]))
    assert code == 3


def test_killed_by_sigkill_is_137(harness: Harness) -> None:
    b = harness.bundle(["sleep", "100"])
    state_dir = harness.state_dir()
    pid = runtime.create("k", str(b), state_dir)
    runtime.start(state_dir)
    assert runtime.state(state_dir)["status"] == "running"
    runtime.kill(state_dir, signal.SIGKILL)
    assert wait_exit(pid) == 137
    assert runtime.state(state_dir)["status"] == "stopped"
    runtime.delete(state_dir)
    assert not os.path.exists(state_dir)


def test_sigterm_to_pid1_without_handler_is_ignored_from_inside(harness: Harness) -> None:
    # The kernel protects a PID namespace's init from signals it has no handler for,
    # unless they come from outside: `kill` from the host works.
    b = harness.bundle(["sh", "-c", "kill -TERM 1; echo alive"])
    code, out, _ = harness.run(b)
    assert (code, out) == (0, "alive\n")


def test_missing_command_is_127_and_leaves_nothing(harness: Harness) -> None:
    b = harness.bundle(["nonexistent-cmd"])
    state_dir = harness.state_dir()
    with pytest.raises(RuntimeFailure) as info:
        runtime.create("m", str(b), state_dir)
    assert info.value.exit_code == 127
    assert "nonexistent-cmd" in str(info.value)
    assert "not found" in str(info.value)
    assert not os.path.exists(state_dir)


def test_not_executable_is_126(harness: Harness) -> None:
    b = harness.bundle(["/etc/passwd"])
    with pytest.raises(RuntimeFailure) as info:
        runtime.create("n", str(b), harness.state_dir())
    assert info.value.exit_code == 126


def test_absolute_missing_path_is_127(harness: Harness) -> None:
    with pytest.raises(RuntimeFailure) as info:
        runtime.create("n", str(harness.bundle(["/no/such"])), harness.state_dir())
    assert info.value.exit_code == 127


def test_setup_failure_names_the_step(harness: Harness, tmp_path: Path) -> None:
    spec = runtime.default_spec(["true"])
    spec["mounts"].append({"destination": "/data", "type": "bind",
                           "source": str(tmp_path / "missing"), "options": ["rbind"]})
    b = harness.bundle([], spec=spec)
    state_dir = harness.state_dir()
    with pytest.raises(RuntimeFailure) as info:
        runtime.create("f", str(b), state_dir)
    assert "/data" in str(info.value)
    assert "missing" in str(info.value)
    assert not os.path.exists(state_dir)


def test_overlay_snapshots_are_isolated(harness: Harness, tmp_path: Path) -> None:
    lower = extract_rootfs(tmp_path / "lower")
    mounts = []
    for name in ("a", "b"):
        (tmp_path / name / "upper").mkdir(parents=True)
        (tmp_path / name / "work").mkdir()
        mounts.append([{"type": "overlay", "source": "overlay", "options": [
            f"lowerdir={lower}", f"upperdir={tmp_path / name / 'upper'}",
            f"workdir={tmp_path / name / 'work'}"]}])
    writer = harness.bundle(["sh", "-c", "echo one > /written; cat /written"], rootfs=False)
    reader = harness.bundle(["sh", "-c", "cat /written"], rootfs=False)
    code, out, _ = harness.run(writer, rootfs_mounts=mounts[0])
    assert (code, out) == (0, "one\n")
    code, out, err = harness.run(reader, rootfs_mounts=mounts[1])
    assert code == 1 and "No such file" in err
    assert (tmp_path / "a" / "upper" / "written").read_text() == "one\n"
    assert not (tmp_path / "b" / "upper" / "written").exists()
    assert not (lower / "written").exists()
    assert not os.listdir(writer / "rootfs")  # the mount vanished with the container


def test_user_groups_umask_cwd_env_rlimits(harness: Harness) -> None:
    b = harness.bundle(
        ["sh", "-c", "id; umask; pwd; echo $GREETING; ulimit -n; grep CapEff /proc/self/status"],
        user={"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 0o027},
        cwd="/work/dir", env=["PATH=/bin", "GREETING=hello"],
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}])
    code, out, err = harness.run(b)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("uid=1000 gid=1001")
    assert "groups=5,7" in lines[0] or ("5" in lines[0] and "7" in lines[0])
    assert lines[1:5] == ["0027", "/work/dir", "hello", "321"]
    assert lines[5].split()[1] == "0000000000000000"


def test_readonly_root_and_no_new_privs(harness: Harness) -> None:
    spec = runtime.default_spec(["sh", "-c", "touch /x || echo RO; touch /tmp/y || echo TMPRO; "
                                 "grep NoNewPrivs /proc/self/status"])
    spec["root"]["readonly"] = True
    spec["process"]["noNewPrivileges"] = True
    code, out, _ = harness.run(harness.bundle([], spec=spec))
    assert "RO" in out.split()
    assert "NoNewPrivs:\t1" in out


def test_bind_mounts_files_and_readonly(harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "hostname").write_text("bound\n")
    data = tmp_path / "data"
    data.mkdir()
    spec = runtime.default_spec(["sh", "-c", "cat /etc/hostname; echo w > /data/f || echo DATARO;"
                                 " echo z > /etc/hostname || echo FILERO"])
    spec["mounts"] += [
        {"destination": "/etc/hostname", "type": "bind", "source": str(tmp_path / "hostname"),
         "options": ["rbind", "ro"]},
        {"destination": "/data", "type": "bind", "source": str(data),
         "options": ["rbind", "ro", "rprivate"]},
    ]
    code, out, _ = harness.run(harness.bundle([], spec=spec))
    assert out.split() == ["bound", "DATARO", "FILERO"]
    assert not (data / "f").exists()


def test_symlinked_destination_stays_inside_rootfs(harness: Harness, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    spec = runtime.default_spec(["ls", "/evil/in"])
    spec["mounts"].append({"destination": "/evil/in", "type": "tmpfs", "source": "tmpfs",
                           "options": []})
    b = harness.bundle([], spec=spec)
    os.symlink(str(outside), b / "rootfs" / "evil")  # absolute: means /<outside> in the rootfs
    code, out, _ = harness.run(b)
    assert code == 0
    assert not (outside / "in").exists()
    assert (b / "rootfs" / str(outside).lstrip("/") / "in").is_dir()


def test_stdin_reaches_the_container(harness: Harness) -> None:
    code, out, _ = harness.run(harness.bundle(["cat"]), stdin=b"through the pipe\n")
    assert (code, out) == (0, "through the pipe\n")


def test_state_machine(harness: Harness) -> None:
    b = harness.bundle(["sleep", "100"])
    state_dir = harness.state_dir()
    pid = runtime.create("sm", str(b), state_dir)
    st = runtime.state(state_dir)
    assert st["status"] == "created" and st["pid"] == pid and st["id"] == "sm"
    assert st["bundle"] == str(b)
    with pytest.raises(Exception):  # noqa: B017 - AlreadyExists
        runtime.create("sm", str(b), state_dir)
    runtime.start(state_dir)
    with pytest.raises(Conflict):
        runtime.start(state_dir)
    with pytest.raises(Conflict):
        runtime.delete(state_dir)
    runtime.delete(state_dir, force=True)
    assert wait_exit(pid) == 137
    with pytest.raises(NotFound):
        runtime.state(state_dir)


def test_delete_created_container_kills_it(harness: Harness) -> None:
    state_dir = harness.state_dir()
    pid = runtime.create("dc", str(harness.bundle(["true"])), state_dir)
    runtime.delete(state_dir)
    assert wait_exit(pid) == 137


def test_kill_all_reaches_every_process(harness: Harness) -> None:
    b = harness.bundle(["sh", "-c", "trap '' TERM; sleep 100 & sleep 100 & wait"])
    state_dir = harness.state_dir()
    pid = runtime.create("ka", str(b), state_dir)
    runtime.start(state_dir)
    deadline = time.monotonic() + 5
    while len(runtime.container_pids(state_dir)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    runtime.kill(state_dir, signal.SIGKILL, all=True)
    assert wait_exit(pid) == 137


def test_invalid_spec_is_rejected_before_forking(harness: Harness) -> None:
    spec = runtime.default_spec(["true"])
    spec["linux"]["namespaces"].append({"type": "bogus"})
    with pytest.raises(InvalidArgument, match="bogus"):
        runtime.create("x", str(harness.bundle([], spec=spec, rootfs=False)), harness.state_dir())


def test_create_start_latency(harness: Harness) -> None:
    b = harness.bundle(["true"])
    times = []
    for _ in range(10):
        state_dir = harness.state_dir()
        t0 = time.perf_counter()
        pid = runtime.create("lat", str(b), state_dir)
        runtime.start(state_dir)
        times.append(time.perf_counter() - t0)
        assert wait_exit(pid) == 0
        runtime.delete(state_dir)
    times.sort()
    median_ms = times[len(times) // 2] * 1000
    print(f"create+start of `true`: median {median_ms:.1f} ms")
    assert median_ms < 1000  # a guard against pathologies; the print is the measurement


def test_joining_another_containers_namespaces(harness: Harness) -> None:
    # A PID namespace to join takes the two-stage path (stage 1 joins, stage 2 is forked).
    first = harness.state_dir()
    pid = runtime.create("a", str(harness.bundle(["sleep", "100"])), first)
    runtime.start(first)
    spec = runtime.default_spec(["sh", "-c", "ps -o comm; hostname; true"])
    spec["linux"]["namespaces"] = [
        {"type": "mount"},
        {"type": "pid", "path": f"/proc/{pid}/ns/pid"},
        {"type": "uts", "path": f"/proc/{pid}/ns/uts"},
        {"type": "network", "path": f"/proc/{pid}/ns/net"},
    ]
    spec["hostname"] = ""
    code, out, err = harness.run(harness.bundle([], spec=spec))
    assert code == 0, err
    assert "sleep" in out.split()
    runtime.kill(first, signal.SIGKILL)
    assert wait_exit(pid) == 137


def test_two_stage_path_when_the_creator_has_threads(harness: Harness) -> None:
    import threading

    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        code, out, _ = harness.run(harness.bundle(["sh", "-c", "echo $$"]))
    finally:
        stop.set()
        t.join()
    assert (code, out) == (0, "1\n")


def test_user_name_resolved_inside_the_container(harness: Harness) -> None:
    spec = runtime.default_spec(["sh", "-c", "id -u; id -g; echo $HOME"])
    spec["annotations"] = {"io.berth.user": "nobody"}
    code, out, err = harness.run(harness.bundle([], spec=spec))
    assert (code, out.split()) == (0, ["65534", "65534", "/home"]), err
    spec["annotations"] = {"io.berth.user": "ghost"}
    with pytest.raises(RuntimeFailure, match="unable to find user ghost"):
        runtime.create("u", str(harness.bundle([], spec=spec)), harness.state_dir())


@pytest.mark.parametrize("propagation", ["rslave", "rshared"])
def test_rootfs_propagation_never_leaks_mounts_to_the_host(harness: Harness, tmp_path: Path,
                                                           propagation: str) -> None:
    from berth import linux

    # Put the bundle on a shared mount, as / is on systemd hosts.
    shared = tmp_path / "shared"
    shared.mkdir()
    linux.mount(str(shared), str(shared), None, linux.MS_BIND)
    try:
        linux.mount(None, str(shared), None, linux.MS_SHARED)
        harness.tmp = shared
        spec = runtime.default_spec(["sh", "-c", "mount | grep -c ' /proc '"])
        spec["linux"]["rootfsPropagation"] = propagation
        code, out, err = harness.run(harness.bundle([], spec=spec))
        assert code == 0, err
        with open("/proc/self/mountinfo") as f:
            leaked = [line for line in f if f"{shared}/" in line]
        assert not leaked
    finally:
        harness.tmp = tmp_path
        linux.umount2(str(shared), linux.MNT_DETACH)
