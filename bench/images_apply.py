#!/usr/bin/env python3
"""Layer apply throughput: berth's ``apply_layer`` against ``tar -xzf``, in one run.

The layer: ~200 MB uncompressed, gzip, many small files (20,000 of 1-8 KB, half text, half
random) and a few big ones (4 x 25 MB). Each engine unpacks it into a fresh directory on the
same disk; runs alternate so both see the same page cache and noise. Reported: the median
time and throughput (uncompressed MB/s) of each, and berth's ratio to tar (target >= 0.8).

berth is measured twice: in this process (``apply_layer``) and as the image service runs it,
in a worker process (``apply_in_worker``, which adds the interpreter start).
"""

from __future__ import annotations

import argparse
import gzip
import io
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from berth.archive import WhiteoutMode, apply_layer  # noqa: E402
from berth.image.unpack import apply_in_worker  # noqa: E402


def make_layer(path: Path, small: int, big: int, big_size: int) -> int:
    rng = random.Random(42)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
             for _ in range(500)]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in range(200):
            ti = tarfile.TarInfo(f"usr/share/d{d:03}")
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(ti)
        for i in range(small):
            size = rng.randint(1024, 8192)
            if i % 2:
                data = rng.randbytes(size)
            else:
                data = b" ".join(rng.choice(words) for _ in range(size // 6))[:size]
            ti = tarfile.TarInfo(f"usr/share/d{i % 200:03}/f{i:05}")
            ti.size, ti.mode = len(data), 0o644
            tar.addfile(ti, io.BytesIO(data))
        for i in range(big):
            data = rng.randbytes(big_size // 2) + b"\0" * (big_size // 2)
            ti = tarfile.TarInfo(f"opt/big{i}.bin")
            ti.size, ti.mode = len(data), 0o644
            tar.addfile(ti, io.BytesIO(data))
    size = raw.tell()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw.getvalue(), compresslevel=6))
    return size


def fresh(root: Path, name: str) -> Path:
    d = root / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    return d


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    subprocess.run(["sync"], check=False)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--big", type=int, default=4)
    ap.add_argument("--big-size", type=int, default=25 << 20)
    ap.add_argument("--dir", default=None, help="where to unpack (default: a temp dir in /tmp)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-apply-", dir=args.dir))
    try:
        layer = root / "layer.tar.gz"
        size = make_layer(layer, args.small, args.big, args.big_size)
        print(f"layer: {size / 1e6:.0f} MB uncompressed, {layer.stat().st_size / 1e6:.0f} MB gzip,"
              f" {args.small} small + {args.big} big files")
        results: dict[str, list[float]] = {"tar -xzf": [], "berth apply_layer": [],
                                           "berth worker process": []}
        def tar(d: Path) -> None:
            subprocess.run(["tar", "-xzf", str(layer), "-C", str(d)], check=True)

        def berth_apply(d: Path) -> None:
            with open(layer, "rb") as f:
                apply_layer(f, str(d), whiteouts=WhiteoutMode.OVERLAY)

        def berth_worker(d: Path) -> None:
            apply_in_worker(str(layer), str(d), None, None)

        engines = {"tar -xzf": tar, "berth apply_layer": berth_apply,
                   "berth worker process": berth_worker}
        for _ in range(args.runs):
            for name, fn in engines.items():
                d = fresh(root, "out")
                results[name].append(timed(lambda fn=fn, d=d: fn(d)))
        anchor = statistics.median(results["tar -xzf"])
        print(f"{'what':24} {'median s':>9} {'MB/s':>8} {'vs tar':>7}")
        for name, samples in results.items():
            med = statistics.median(samples)
            print(f"{name:24} {med:9.3f} {size / 1e6 / med:8.0f} {anchor / med:7.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
