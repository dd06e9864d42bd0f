#!/usr/bin/env python3
"""Write a busybox root filesystem tar from Debian's busybox-static, for `berth import`.

Why a script of our own: nothing can be pulled from Docker Hub here, so the base image every
quick-start, test and benchmark uses is made from the distribution's static busybox. The tar is
built in memory with uid/gid 0 entries, so it needs no root and no temporary tree.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import time

BUSYBOX = "/bin/busybox"
DIRS = ["bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "usr/bin",
        "usr/sbin", "sbin", "var", "var/spool", "var/spool/mail", "var/www"]
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/home:/bin/false\n")
GROUP = "root:x:0:\nnobody:x:65534:\n"


def applets(busybox: str = BUSYBOX) -> list[str]:
    out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def write_tar(out: io.BufferedIOBase, busybox: str = BUSYBOX) -> None:
    mtime = int(time.time())

    def info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.uid, ti.gid = kind, mode, mtime, 0, 0
        ti.uname = ti.gname = "root"
        return ti

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for d in DIRS:
            mode = 0o1777 if d == "tmp" else 0o700 if d == "root" else 0o755
            tar.addfile(info(d, tarfile.DIRTYPE, mode))
        with open(busybox, "rb") as f:
            data = f.read()
        ti = info("bin/busybox", tarfile.REGTYPE, 0o755)
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
        for path in applets(busybox):
            if path == "bin/busybox" or path.startswith("linuxrc"):
                continue
            ti = info(path, tarfile.SYMTYPE, 0o777)
            ti.linkname = ("busybox" if path.startswith("bin/")
                           else "../" * path.count("/") + "bin/busybox")
            tar.addfile(ti)
        for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
            raw = text.encode()
            ti = info(name, tarfile.REGTYPE, 0o644)
            ti.size = len(raw)
            tar.addfile(ti, io.BytesIO(raw))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", default="-", help="tar file to write (- for stdout)")
    parser.add_argument("--busybox", default=BUSYBOX)
    args = parser.parse_args()
    if args.output == "-":
        write_tar(sys.stdout.buffer, args.busybox)
    else:
        with open(args.output, "wb") as f:
            write_tar(f, args.busybox)


if __name__ == "__main__":
    main()
