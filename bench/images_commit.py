#!/usr/bin/env python3
"""``docker commit`` of 100 MB in 1,000 files, and ``docker diff``: berthd against dockerd.

Both engines are started for this run with their own roots (dockerd only when installed;
``--install`` apt-installs docker.io without starting its service). In each, one stopped
container has written 1,000 files of 100 KB of random bytes; then ``docker diff`` and
``docker commit`` of it are timed through the same docker CLI, alternating engines run by
run. Reported: medians, and berth's time relative to dockerd's (<= 1.0 is the target).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.start_latency import DOCKER_CLI, dockerd, install_anchors  # noqa: E402
from tests.daemon_fixture import running_berthd  # noqa: E402

WRITER = ("mkdir /data && i=0; while [ $i -lt 1000 ]; do "
          "head -c 100000 /dev/urandom > /data/f$i; i=$((i+1)); done")


def docker(env: dict[str, str], *args: str) -> str:
    r = subprocess.run([DOCKER_CLI, *args], env=env, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {r.stderr.decode()[-400:]}")
    return r.stdout.decode()


def timed(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    docker(env, *args)
    return time.perf_counter() - start


@contextlib.contextmanager
def berth_env() -> Iterator[dict[str, str]]:
    with running_berthd() as daemon:
        yield daemon.env()


def prepare(env: dict[str, str]) -> None:
    docker(env, "run", "--name", "writer", "busybox", "sh", "-c", WRITER)
    lines = docker(env, "diff", "writer").splitlines()
    assert sum(1 for line in lines if line.startswith("A /data/f")) == 1000, lines[:5]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--install", action="store_true", help="apt-get install docker.io first")
    args = ap.parse_args()
    if args.install:
        install_anchors()
    results: dict[str, list[float]] = {}
    with berth_env() as benv, dockerd() as denv:
        engines = {"berthd": benv}
        if denv is not None:
            engines["dockerd"] = denv
        for env in engines.values():
            prepare(env)
        for run in range(args.runs):
            for name, env in engines.items():
                results.setdefault(f"{name} diff", []).append(timed(env, "diff", "writer"))
                results.setdefault(f"{name} commit", []).append(
                    timed(env, "commit", "writer", f"bench/commit:{run}"))
    print(f"{'what':18} {'median s':>9} {'min s':>8} {'vs dockerd':>11}")
    for name, samples in results.items():
        engine, op = name.split()
        anchor = results.get(f"dockerd {op}")
        ratio = statistics.median(samples) / statistics.median(anchor) if anchor else float("nan")
        print(f"{name:18} {statistics.median(samples):9.3f} {min(samples):8.3f} {ratio:11.2f}")


if __name__ == "__main__":
    main()
