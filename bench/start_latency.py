#!/usr/bin/env python3
"""Container start latency, side by side in one run: `run --rm busybox true` end to end.

Measures, each N times after a warm-up, and prints medians and ratios:
- `berth run --rm busybox true` and `docker run --rm busybox true` against a berthd of its own;
- `docker run --rm busybox true` against dockerd, and `podman run`, when they are installed
  (`--install` apt-installs docker.io and podman first; dockerd is started for this run only,
  with its own data root and socket, and stopped at the end);
- `berth-runtime run`, `runc run` and `crun run` of one busybox bundle running `true`;
- `berth --version` (the CLI's start-up).
The machines are shared and noisy: compare within one run, never across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.daemon_fixture import FIXTURES, busybox_tar, running_berthd  # noqa: E402

DOCKER_CLI = "/usr/local/bin/docker"
VENV_BIN = REPO / ".venv" / "bin"


def timed(argv: list[str], runs: int, env: dict[str, str] | None = None,
          warmup: int = 2) -> list[float]:
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        result = subprocess.run(argv, env=env, capture_output=True)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): "
                               f"{result.stderr.decode()[-500:]}")
        if i >= warmup:
            samples.append(elapsed)
    return samples


def busybox_bundle(root: Path) -> Path:
    bundle = root / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    import io

    with tarfile.open(fileobj=io.BytesIO(busybox_tar())) as tar:
        tar.extractall(rootfs, filter="fully_trusted")
    subprocess.run([str(VENV_BIN / "berth-runtime"), "spec", "--bundle", str(bundle)],
                   check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["true"]
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def runtime_runs(name: str, argv: list[str], bundle: Path, runs: int) -> list[float]:
    state = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        samples = []
        for i in range(runs + 2):
            cid = f"bench-{name}-{i}"
            start = time.perf_counter()
            result = subprocess.run([*argv, "--root", str(state), "run", "--bundle",
                                     str(bundle), cid], capture_output=True)
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                raise RuntimeError(f"{name} run failed: {result.stderr.decode()[-500:]}")
            subprocess.run([*argv, "--root", str(state), "delete", "--force", cid],
                           capture_output=True)
            if i >= 2:
                samples.append(elapsed)
        return samples
    finally:
        shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def dockerd() -> Iterator[dict[str, str] | None]:
    binary = shutil.which("dockerd")
    if binary is None:
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="bench-dockerd-"))
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "wb")
    proc = subprocess.Popen([binary, "--data-root", str(root / "data"), "--exec-root",
                             str(root / "exec"), "--pidfile", str(root / "pid"),
                             "-H", f"unix://{sock}", "--bridge", "none", "--iptables=false"],
                            stdout=log, stderr=subprocess.STDOUT)
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}",
               DOCKER_CONFIG=str(root / "config"))
    try:
        for _ in range(300):
            ready = subprocess.run([DOCKER_CLI, "version"], env=env, capture_output=True)
            if ready.returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run([DOCKER_CLI, "load", "-i", str(FIXTURES / "busybox-docker-save.tar")],
                       env=env, check=True, capture_output=True)
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        subprocess.run(["umount", "-R", str(root)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def podman_runs(runs: int) -> list[float] | None:
    binary = shutil.which("podman")
    if binary is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="bench-podman-"))
    base = [binary, "--root", str(root / "root"), "--runroot", str(root / "run")]
    try:
        subprocess.run([*base, "load", "-i", str(FIXTURES / "busybox-docker-save.tar")],
                       check=True, capture_output=True)
        # Root here lacks CAP_SYS_RESOURCE: podman's default rlimits cannot be applied.
        return timed([*base, "run", "--rm", "--network", "none", "--ulimit", "host", "busybox",
                      "true"], runs)
    except RuntimeError as exc:
        print(f"skipped podman: {exc}", file=sys.stderr)
        return None
    finally:
        subprocess.run([*base, "system", "reset", "-f"], capture_output=True)
        subprocess.run(["umount", "-R", str(root)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def install_anchors() -> None:
    """apt-get install the engines we compare with, without letting their services start:
    a policy-rc.d that says no keeps the package from launching a system-wide dockerd."""
    policy = Path("/usr/sbin/policy-rc.d")
    had_policy = policy.exists()
    if not had_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker.io", "podman", "runc", "crun"],
                       check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    finally:
        if not had_policy:
            policy.unlink()


def report(results: dict[str, list[float]], anchor: str | None) -> None:
    anchor_median = statistics.median(results[anchor]) if anchor in results else None
    print(f"{'what':58} {'median':>9} {'p90':>9} {'ratio':>8}")
    for name, samples in results.items():
        med = statistics.median(samples)
        p90 = sorted(samples)[int(0.9 * (len(samples) - 1))]
        ratio = f"{med / anchor_median:.2f}x" if anchor_median else "-"
        print(f"{name:58} {med * 1000:8.1f}ms {p90 * 1000:8.1f}ms {ratio:>8}")
    if anchor_median:
        print(f"(ratios against: {anchor})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--install", action="store_true",
                        help="apt-get install docker.io podman runc crun first")
    parser.add_argument("--json", type=Path, help="also write the samples here")
    args = parser.parse_args()
    if args.install:
        install_anchors()
    results: dict[str, list[float]] = {}
    # As installed: byte-compiled (with PYTHONDONTWRITEBYTECODE set, a source edited since the
    # last compile would be compiled again on every start, and measured as start-up).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "berth")],
                   check=True, stdout=subprocess.DEVNULL)

    with running_berthd() as daemon:
        env = daemon.env()
        results["berth --version"] = timed([str(VENV_BIN / "berth"), "--version"], args.runs)
        results["berth run --rm busybox true (berthd)"] = timed(
            [str(VENV_BIN / "berth"), "run", "--rm", "busybox", "true"], args.runs, env)
        results["docker run --rm busybox true (berthd)"] = timed(
            [DOCKER_CLI, "run", "--rm", "busybox", "true"], args.runs, env)
    with dockerd() as docker_env:
        if docker_env is not None:
            results["docker run --rm busybox true (dockerd)"] = timed(
                [DOCKER_CLI, "run", "--rm", "busybox", "true"], args.runs, docker_env)
    podman = podman_runs(args.runs)
    if podman:
        results["podman run --rm --network none busybox true"] = podman
    work = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    try:
        bundle = busybox_bundle(work)
        results["berth-runtime run (bundle, true)"] = runtime_runs(
            "berth", [str(VENV_BIN / "berth-runtime")], bundle, args.runs)
        # crun refuses cgroup v1/v2 hybrid hosts unless told to leave cgroups alone.
        others = {"runc": [], "crun": ["--cgroup-manager=disabled"]}
        for name, flags in others.items():
            binary = shutil.which(name)
            if binary:
                try:
                    results[f"{name} run (bundle, true)"] = runtime_runs(
                        name, [binary, *flags], bundle, args.runs)
                except RuntimeError as exc:
                    print(f"skipped {name}: {exc}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    anchor = "docker run --rm busybox true (dockerd)"
    report(results, anchor if anchor in results else None)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
