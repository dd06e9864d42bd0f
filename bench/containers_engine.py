#!/usr/bin/env python3
"""Container engine benchmarks, berthd and dockerd side by side in one run.

Measured against each engine (dockerd only when installed; ``--install`` apt-installs it,
started for this run with its own roots and stopped at the end):

- ``docker exec C true``: median latency;
- 50 ``sleep`` containers started with ``docker run -d``, sequentially and 10 at a time;
- ``docker ps`` with those 50 running: median latency;
- memory with the 50 running: the engine's total PSS (daemon, launcher or containerd, and the
  container monitors; the containers' own processes left out), per container, what each
  container added to the idle engine's, and the monitors' alone (berth's monitor processes,
  each serving up to 16 containers; containerd-shim-runc-v2, one per container) per
  container. How many containers still ran at that moment is printed too: on a shared
  machine something may have killed some;
- log throughput: a container writing 100 MB to stdout, attached, then ``docker logs`` of it.

The machines are shared and noisy: compare within one run, never across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.start_latency import DOCKER_CLI, dockerd, install_anchors  # noqa: E402
from tests.daemon_fixture import running_berthd  # noqa: E402

COUNT = 50
LOG_BYTES = 100 * 1024 * 1024
WRITER = ("yes 0123456789012345678901234567890123456789012345678901234567890123456789"
          f"0123456789012345678901234567 | head -c {LOG_BYTES}")


def docker(env: dict[str, str], *args: str, check: bool = True) -> str:
    result = subprocess.run([DOCKER_CLI, *args], env=env, capture_output=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.decode()[-400:]}")
    return result.stdout.decode()


def median_of(fn: Callable[[], None], runs: int, warmup: int = 2) -> float:
    samples = []
    for i in range(warmup + runs):
        started = time.perf_counter()
        fn()
        if i >= warmup:
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pids_matching(pred: Callable[[str], bool]) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pred(cmdline):
            out.append(int(entry))
    return out


def berth_engine_pids(exec_root: str, daemon_pid: int) -> list[int]:
    """The daemon, the launcher, then every monitor process (each serves up to
    ``--containers-per-monitor`` containers: counted once)."""
    return [daemon_pid, *berth_launcher_pid(exec_root), *berth_monitor_pids(exec_root)]


def berth_launcher_pid(exec_root: str) -> list[int]:
    with contextlib.suppress(OSError, ValueError), open(os.path.join(exec_root,
                                                                     "launcher.pid")) as f:
        return [int(f.read().strip())]
    return []


def berth_monitor_pids(exec_root: str, _daemon_pid: int = 0) -> list[int]:
    pids: set[int] = set()
    containers = os.path.join(exec_root, "containers")
    for cid in os.listdir(containers):
        with contextlib.suppress(OSError, ValueError, KeyError), open(
                os.path.join(containers, cid, "shim.json")) as f:
            pids.add(int(json.load(f)["shim_pid"]))
    return sorted(pids)


def docker_engine_pids(env: dict[str, str]) -> list[int]:
    root = env["DOCKER_HOST"].removeprefix("unix://").rsplit("/", 1)[0]
    return pids_matching(lambda c: root in c and ("dockerd" in c or "containerd" in c))


def docker_monitor_pids(env: dict[str, str]) -> list[int]:
    root = env["DOCKER_HOST"].removeprefix("unix://").rsplit("/", 1)[0]
    return pids_matching(lambda c: root in c and "containerd-shim" in c)


def measure(name: str, env: dict[str, str], engine_pids: Callable[[], list[int]],
            monitor_pids: Callable[[], list[int]]) -> dict[str, float]:
    results: dict[str, float] = {}
    cid = docker(env, "run", "-d", "busybox", "sleep", "600").strip()
    try:
        results["exec true (ms)"] = 1000 * median_of(
            lambda: docker(env, "exec", cid, "true"), 15)
    except RuntimeError as exc:
        print(f"{name}: exec unavailable: {exc}", file=sys.stderr)
    docker(env, "rm", "-f", cid)
    time.sleep(0.5)  # monitors of removed containers leave
    idle = sum(pss_kb(p) for p in engine_pids())

    started = time.perf_counter()
    for _ in range(COUNT):
        docker(env, "run", "-d", "--label", "bench=seq", "busybox", "sleep", "600")
    results[f"{COUNT} sleep sequential (s)"] = time.perf_counter() - started
    results["ps with 50 (ms)"] = 1000 * median_of(lambda: docker(env, "ps"), 15)
    running = len(docker(env, "ps", "-q").split())
    pids = engine_pids()
    total = sum(pss_kb(p) for p in pids)
    monitors = monitor_pids()
    results["running at the PSS sample"] = running
    results["engine PSS, 50 running (MB)"] = total / 1024
    results["engine PSS per container (MB)"] = total / 1024 / COUNT
    results["engine PSS idle (MB)"] = idle / 1024
    results["engine PSS added per container (MB)"] = (total - idle) / 1024 / max(running, 1)
    if monitors:
        # Per running container: berthd's monitors may each serve several.
        results["monitor processes"] = len(monitors)
        results["monitor PSS per container (MB)"] = (
            sum(pss_kb(p) for p in monitors) / 1024 / max(running, 1))
    if running != COUNT:
        print(f"{name}: only {running} of {COUNT} containers ran at the memory sample",
              file=sys.stderr)
    ids = docker(env, "ps", "-aq").split()
    docker(env, "rm", "-f", *ids)

    started = time.perf_counter()
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: docker(env, "run", "-d", "busybox", "sleep", "600"),
                      range(COUNT)))
    results[f"{COUNT} sleep parallel x10 (s)"] = time.perf_counter() - started
    ids = docker(env, "ps", "-aq").split()
    docker(env, "rm", "-f", *ids)

    started = time.perf_counter()
    # One big log file on both engines (berth rotates at 20 MB by default, dockerd never).
    out = subprocess.run([DOCKER_CLI, "run", "--name", "logbench", "--log-opt", "max-size=1g",
                          "busybox", "sh", "-c", WRITER], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    attached = time.perf_counter() - started
    if len(out.stdout) != LOG_BYTES:
        print(f"{name}: attached output {len(out.stdout)} bytes", file=sys.stderr)
    results["100 MB attached (MB/s)"] = 100 / attached
    started = time.perf_counter()
    logs = subprocess.run([DOCKER_CLI, "logs", "logbench"], env=env, stdout=subprocess.PIPE)
    results["docker logs of 100 MB (MB/s)"] = 100 / (time.perf_counter() - started)
    if len(logs.stdout) != LOG_BYTES:
        print(f"{name}: logs gave {len(logs.stdout)} bytes", file=sys.stderr)
    docker(env, "rm", "-f", "logbench")
    return results


@contextlib.contextmanager
def berth_env() -> Iterator[tuple[dict[str, str], Callable[[], list[int]],
                                  Callable[[], list[int]]]]:
    with running_berthd() as daemon:
        assert daemon.proc is not None
        pid = daemon.proc.pid
        yield (daemon.env(), lambda: berth_engine_pids(daemon.exec_root, pid),
               lambda: berth_monitor_pids(daemon.exec_root, pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--install", action="store_true", help="apt-get install docker.io")
    args = parser.parse_args()
    if args.install:
        install_anchors()
    table: dict[str, dict[str, float]] = {}
    try:
        with berth_env() as (env, pids, monitors):
            table["berthd"] = measure("berthd", env, pids, monitors)
            print(json.dumps(table["berthd"]), file=sys.stderr)
    except AssertionError as exc:
        # The fixture's teardown counts every container cgroup that appeared meanwhile,
        # other runs' on a shared machine too: say so, keep the figures.
        if "berthd" not in table:
            raise
        print(f"berthd teardown: {str(exc)[:300]}", file=sys.stderr)
    with dockerd() as docker_env:
        if docker_env is not None:
            table["dockerd"] = measure("dockerd", docker_env,
                                       lambda: docker_engine_pids(docker_env),
                                       lambda: docker_monitor_pids(docker_env))
    rows = sorted({k for r in table.values() for k in r}, key=lambda k: list(
        table["berthd"]).index(k) if k in table["berthd"] else 99)
    print(f"{'':34}" + "".join(f"{n:>12}" for n in table) + "       ratio")
    for row in rows:
        values = [table[n].get(row) for n in table]
        line = f"{row:34}" + "".join(f"{v:12.2f}" if v is not None else f"{'-':>12}"
                                     for v in values)
        if len(values) == 2 and values[0] and values[1]:
            line += f"{values[0] / values[1]:12.2f}"
        print(line)


if __name__ == "__main__":
    main()
