#!/usr/bin/env python3
"""OCI runtimes side by side in one run, and what a running container's shim costs.

1. ``run`` of one busybox bundle (Docker's defaults from ``berth.runtime.spec``, cgroups
   included) running ``true``, by ``berth-runtime``, ``runc`` and
   ``crun --cgroup-manager=disabled``, interleaved round by round so the machine's load
   drifts over all of them alike; medians, and ratios to runc and crun.
2. Phases (``--phases N``): where ``create``/``start``/``delete`` spend their time, in this
   process, as medians over N containers: spans around the runtime's steps in the creator,
   and in init between its clone and its "ready" (init sends its spans back through a pipe
   it inherits). The spans are taken by wrapping module functions, which adds a few
   microseconds to each call.
3. Memory: N containers running ``sleep`` through the launcher; each shim's PSS (from
   /proc/PID/smaps_rollup) and RSS, and the launcher's, and whether any runtime process is
   left behind a running container (there must be none but the shim).

The machines are shared and noisy: compare within one run, never across runs.
Usage: ``sudo .venv/bin/python bench/runtime_start.py [--runs 30] [--phases 30]
[--containers 10]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VENV_BIN = REPO / ".venv" / "bin"
CGROUP_PREFIX = f"berth-bench-{os.getpid()}"


def busybox_bundle(root: Path, args: list[str]) -> Path:
    sys.path.insert(0, str(REPO / "scripts"))
    import busybox_rootfs  # type: ignore[import-not-found]

    from berth.runtime.spec import default_spec

    bundle = root / f"bundle-{args[0]}"
    (bundle / "rootfs").mkdir(parents=True)
    buf = io.BytesIO()
    busybox_rootfs.write_tar(buf)
    subprocess.run(["tar", "-x", "-C", str(bundle / "rootfs")], input=buf.getvalue(),
                   check=True)
    spec = default_spec(args)
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def with_cgroup(bundle: Path, name: str) -> None:
    spec = json.loads((bundle / "config.json").read_text())
    spec["linux"]["cgroupsPath"] = f"{CGROUP_PREFIX}/{name}"
    (bundle / "config.json").write_text(json.dumps(spec))


def one_run(argv: list[str], root: Path, bundle: Path, cid: str) -> float:
    start = time.perf_counter()
    result = subprocess.run([*argv, "--root", str(root), "run", "--bundle", str(bundle), cid],
                            capture_output=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    subprocess.run([*argv, "--root", str(root), "delete", "--force", cid],
                   capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace").strip()[-300:])
    return elapsed


def compare_runs(work: Path, runs: int) -> dict[str, list[float] | str]:
    bundle = busybox_bundle(work, ["true"])
    with_cgroup(bundle, "run")
    runtimes = {
        "berth-runtime": [str(VENV_BIN / "berth-runtime")],
        # The same code through an interpreter without site (what an installed entry
        # point with ``python -I -S`` and an explicit path would cost).
        "berth-runtime -I -S": [sys.executable, "-I", "-S", "-c",
                                f"import sys; sys.path.insert(0, {str(REPO)!r}); "
                                "from berth.runtime.cli import main; main()"],
        "runc": ["runc"] if shutil.which("runc") else None,
        "crun": ["crun", "--cgroup-manager=disabled"] if shutil.which("crun") else None,
    }
    results: dict[str, list[float] | str] = {}
    for name, argv in runtimes.items():
        if argv is None:
            results[name] = "not installed"
            continue
        try:  # warm-up (byte-compiles), and a check that it works here at all
            one_run(argv, work / f"root-{name}", bundle, f"bench-{name}-warm")
            results[name] = []
        except RuntimeError as e:
            results[name] = f"fails on this host: {e}"
    for i in range(runs):
        for name, argv in runtimes.items():
            samples = results[name]
            if isinstance(samples, list) and argv is not None:
                samples.append(one_run(argv, work / f"root-{name}", bundle,
                                       f"bench-{name}-{i}"))
    return results


# (module, attribute, label): the steps timed by ``phase_breakdown``, in the order they run.
CREATOR_STEPS = [
    ("berth.runtime.container", "load_spec", "read config.json"),
    ("berth.runtime.config", "from_spec", "validate the spec"),
    ("berth.runtime.seccomp", "compile_section", "seccomp program (cached)"),
    ("berth.runtime.cgroups", "Cgroup.for_path", "cgroup paths"),
    ("berth.runtime.cgroups", "Cgroup.create", "cgroup mkdir"),
    ("berth.linux", "clone", "clone (new namespaces)"),
    ("berth.runtime.cgroups", "Cgroup.apply", "cgroup limits (during init's work)"),
    ("berth.runtime.cgroups", "Cgroup.join", "move init into cgroups (during init's work)"),
    ("berth.runtime.sync", "recv", "wait for init's messages"),
    ("berth.runtime.container", "_write_file", "write state.json"),
    ("berth.runtime.cgroups", "Cgroup.destroy", "cgroup rmdir (delete)"),
]
INIT_STEPS = [
    ("berth.runtime.init", "_reset_process_state", "reset signals"),
    ("berth.runtime.init", "_take_stdio", "stdio, close-on-exec"),
    ("berth.runtime.rootfs", "prepare_root", "rootfs bind"),
    ("berth.runtime.rootfs", "mount_entry", "spec mounts"),
    ("berth.runtime.rootfs", "setup_dev", "/dev nodes"),
    ("berth.runtime.rootfs", "pivot", "pivot_root"),
    ("berth.linux", "link_up", "lo up"),
    ("berth.runtime.rootfs", "readonly_path", "read-only paths"),
    ("berth.runtime.rootfs", "mask_path", "masked paths"),
    ("berth.runtime.init", "load_seccomp", "load seccomp"),
    ("berth.runtime.init", "_set_user_and_caps", "user, capabilities"),
    ("berth.runtime.init", "_find_executable", "find the command"),
]


def phase_breakdown(work: Path, runs: int) -> list[tuple[str, float]]:
    """(phase, median ms) of create, start and delete of the cgroup'd busybox bundle."""
    import importlib

    from berth import linux
    from berth.runtime import container, sync

    spans: dict[str, int] = {}
    now = time.perf_counter_ns

    def timed(label: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = now()
            try:
                return fn(*args, **kwargs)
            finally:
                spans[label] = spans.get(label, 0) + now() - t0
        return wrapper

    originals: list[tuple[Any, str, Any]] = []
    for side, steps in (("creator", CREATOR_STEPS), ("init", INIT_STEPS)):
        for module, attr, label in steps:
            owner: Any = importlib.import_module(module)
            if "." in attr:
                cls_name, attr = attr.split(".")
                owner = getattr(owner, cls_name)
            fn = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
            originals.append((owner, attr, fn))
            if isinstance(fn, classmethod):
                setattr(owner, attr, classmethod(timed(f"{side}: {label}", fn.__func__)))
            else:
                setattr(owner, attr, timed(f"{side}: {label}", fn))
    creator = os.getpid()
    report_fd = -1
    clone_started = 0
    send = sync.send
    clone = linux.clone

    def clone_timed(flags: int) -> int:
        nonlocal clone_started
        clone_started = now()
        return clone(flags)

    def send_reporting(sock: Any, msg_type: str, **fields: Any) -> None:
        if msg_type == sync.MSG_READY and os.getpid() != creator:
            spans["init: clone → ready, in all"] = now() - clone_started
            os.write(report_fd, json.dumps(
                {k: v for k, v in spans.items() if k.startswith("init")}).encode())
        send(sock, msg_type, **fields)

    linux.clone = clone_timed
    sync.send = send_reporting
    bundle = work / "bundle-true"
    rows: dict[str, list[int]] = {}
    linux.set_child_subreaper()
    try:
        for i in range(runs + 1):  # the first run fills caches, as a launcher's warm-up
            spans.clear()
            r, report_fd = os.pipe()
            state_dir = str(work / "phases" / f"p{i}")
            t0 = now()
            pid = container.create(f"phase-{i}", str(bundle), state_dir)
            t1 = now()
            container.start(state_dir)
            t2 = now()
            os.waitpid(pid, 0)
            t3 = now()
            container.delete(state_dir)
            t4 = now()
            os.close(report_fd)
            with os.fdopen(r, "rb") as f:
                from_init = json.loads(f.read() or b"{}")
            sample = {k: v for k, v in spans.items() if k.startswith("creator")}
            sample.update(from_init)
            sample.update({"create, in all": t1 - t0, "start, in all": t2 - t1,
                           "the command runs and exits": t3 - t2, "delete, in all": t4 - t3})
            if i:
                for k, v in sample.items():
                    rows.setdefault(k, []).append(v)
    finally:
        sync.send = send
        linux.clone = clone
        for owner, attr, fn in originals:
            setattr(owner, attr, fn)
    order = ["create, in all", *[f"creator: {s[2]}" for s in CREATOR_STEPS],
             "init: clone → ready, in all", *[f"init: {s[2]}" for s in INIT_STEPS],
             "start, in all", "the command runs and exits", "delete, in all"]
    return [(k, statistics.median(rows[k]) / 1e6) for k in order if k in rows]


def pss_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of ``pid`` in KiB."""
    pss = rss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    return pss, rss


def shim_memory(work: Path, count: int) -> dict[str, object]:
    from berth import linux
    from berth.shim import client

    linux.set_child_subreaper()
    exec_root = work / "exec"
    launcher = client.start_launcher(str(exec_root))
    bundle = busybox_bundle(work, ["sleep", "1000"])
    shims: list[client.ShimClient] = []
    try:
        t0 = time.perf_counter()
        for i in range(count):
            with_cgroup(bundle, f"m{i}")
            state_dir = str(exec_root / f"m{i}")
            client.spawn_via_launcher(str(exec_root), {
                "id": f"m{i}", "bundle": str(bundle), "state_dir": state_dir,
                "log_path": str(work / f"m{i}.log"), "stdin": False, "tty": False})
            shim = client.ShimClient(state_dir)
            shim.start()
            shims.append(shim)
        spawn_s = time.perf_counter() - t0
        time.sleep(0.5)
        inits: dict[int, set[int]] = {}  # monitor pid -> its containers' inits
        for shim in shims:
            st = shim.state()
            inits.setdefault(st["shim_pid"], set()).add(st["init_pid"])
        rows = [pss_kib(pid) for pid in inits]
        leftovers = []
        for pid, ours in inits.items():
            # A monitor's children: only its containers' inits may be there.
            kids = [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
            leftovers += [k for k in kids if k not in ours]
        pss = [r[0] for r in rows]
        rss = [r[1] for r in rows]
        return {"containers": count, "spawn+start each (ms)": round(1000 * spawn_s / count, 1),
                "monitor processes": len(rows),
                "monitor PSS per container (KiB)": round(sum(pss) / count),
                "monitor PSS total (KiB)": sum(pss),
                "monitor RSS median (KiB)": statistics.median(rss),
                "launcher PSS/RSS (KiB)": pss_kib(launcher),
                "runtime processes left behind": leftovers}
    finally:
        for shim in shims:
            try:
                shim.kill(signal.SIGKILL)
                shim.wait(timeout=10)
                shim.shutdown()
            except Exception as e:  # noqa: BLE001 - clean up the rest anyway
                print(f"cleanup: {e}", file=sys.stderr)
        os.kill(launcher, signal.SIGTERM)
        time.sleep(0.3)


def cleanup_cgroups() -> None:
    for ctrl in os.listdir("/sys/fs/cgroup"):
        top = Path("/sys/fs/cgroup") / ctrl / CGROUP_PREFIX
        if top.is_dir():
            for sub in top.iterdir():
                if sub.is_dir():
                    sub.rmdir()
            top.rmdir()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--containers", type=int, default=10)
    ap.add_argument("--phases", type=int, default=0, metavar="N",
                    help="also time create/start/delete step by step in-process, N times")
    args = ap.parse_args()
    # Byte-compiled, as scripts/install-deps.sh leaves an installation (the environment
    # may forbid writing bytecode on import).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "berth")],
                   check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    try:
        results = compare_runs(work, args.runs)
        print(f"run of a busybox bundle running `true` ({args.runs} runs each, interleaved):")
        medians = {}
        for name, samples in results.items():
            if isinstance(samples, str):
                print(f"  {name:<20} {samples}")
                continue
            medians[name] = statistics.median(samples) * 1000
            print(f"  {name:<20} median {medians[name]:6.1f} ms   "
                  f"min {min(samples) * 1000:6.1f}   max {max(samples) * 1000:6.1f}")
        for mine in ("berth-runtime", "berth-runtime -I -S"):
            for other in ("runc", "crun"):
                if mine in medians and other in medians:
                    print(f"  {mine} / {other}: {medians[mine] / medians[other]:.2f}")
        if args.phases:
            print(f"in-process phases, median ms of {args.phases} (cgroups included):")
            for name, ms in phase_breakdown(work, args.phases):
                indent = "    " if ": " in name and not name.endswith("in all") else "  "
                print(f"{indent}{name:<52} {ms:6.2f}")
        print("shims:")
        for key, value in shim_memory(work, args.containers).items():
            print(f"  {key}: {value}")
    finally:
        cleanup_cgroups()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
