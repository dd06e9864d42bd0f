"""The isolation suite: a probe runs inside a container with Docker's defaults and reports
what the kernel let it do; the same bundle runs under berth-runtime and under runc (when
installed), and both must give the same answers. ``--privileged`` lifts the refusals.

The probe is a small static C program compiled for the test (busybox has no way to call
kexec_load, keyctl or pivot_root directly); the test is skipped without a C compiler.
Needs root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from berth.runtime.spec import privileged_spec_changes
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness

harness = support.harness
subreaper = support.subreaper
pytestmark = pytest.mark.root

DOCKER_CAPS = "00000000a80425fb"

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/reboot.h>

static const char *res(long r) {
    static char buf[64];
    if (r >= 0) return "ok";
    switch (errno) {
    case EPERM: return "EPERM"; case EACCES: return "EACCES"; case EROFS: return "EROFS";
    case EINVAL: return "EINVAL"; case ENOENT: return "ENOENT"; case EBADF: return "EBADF";
    case ENOSYS: return "ENOSYS"; case EFAULT: return "EFAULT"; case EBUSY: return "EBUSY";
    }
    snprintf(buf, sizeof buf, "errno%d", errno);
    return buf;
}

int main(int argc, char **argv) {
    int privileged = argc > 1 && strcmp(argv[1], "privileged") == 0;
    mkdir("/mnt", 0755);
    printf("mount=%s\n", res(mount("none", "/mnt", "tmpfs", 0, NULL)));
    if (privileged) umount("/mnt");
    fflush(stdout);
    if (fork() == 0) {  /* a child: a new user namespace would change what follows */
        printf("unshare_user=%s\n", res(unshare(CLONE_NEWUSER)));
        fflush(stdout);
        _exit(0);
    }
    wait(NULL);
    printf("swapoff=%s\n", res(swapoff("/dev/null")));
    /* CAD_OFF is harmless even where allowed (EINVAL in a child PID namespace). */
    printf("reboot=%s\n", res(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                                      LINUX_REBOOT_CMD_CAD_OFF, NULL)));
    if (!privileged)
        printf("kexec_load=%s\n", res(syscall(SYS_kexec_load, 0, 0, NULL, 0)));
    printf("keyctl=%s\n", res(syscall(SYS_keyctl, 0, -3, 0)));
    printf("finit_module=%s\n", res(syscall(SYS_finit_module, -1, "", 0)));
    int fd = open("/proc/sysrq-trigger", O_WRONLY);
    printf("sysrq_open=%s\n", res(fd));
    if (fd >= 0) close(fd);
    fd = open("/proc/kcore", O_RDONLY);
    if (fd < 0) printf("kcore=%s\n", res(fd));
    else {
        char c;
        long n = read(fd, &c, 1);
        printf("kcore=%s\n", n == 0 ? "empty" : res(n));
        close(fd);
    }
    struct statvfs sv;
    statvfs("/sys", &sv);
    printf("sys=%s\n", (sv.f_flag & ST_RDONLY) ? "ro" : "rw");
    unlink("/tmp/sda");
    long m = mknod("/tmp/sda", S_IFBLK | 0600, makedev(8, 0));
    printf("mknod_disk=%s\n", res(m));
    if (m == 0) {
        fd = open("/tmp/sda", O_RDONLY);
        printf("open_disk=%s\n", res(fd));
        if (fd >= 0) close(fd);
    }
    printf("pivot_root=%s\n", res(syscall(SYS_pivot_root, "/", "/")));
    fd = open("/tmp/f", O_CREAT | O_WRONLY, 0644);
    close(fd);
    printf("chown=%s\n", res(chown("/tmp/f", 1000, 1000)));
    fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    printf("raw_socket=%s\n", res(fd));
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "Seccomp:", 8)) {
            line[strcspn(line, "\n")] = 0;
            char *v = strchr(line, ':'); *v = 0; v++; while (*v == ' ' || *v == '\t') v++;
            printf("%s=%s\n", line, v);
        }
    return 0;
}
"""

EXPECTED_DEFAULT = {
    "mount": "EPERM", "unshare_user": "EPERM", "swapoff": "EPERM", "reboot": "EPERM",
    "kexec_load": "EPERM", "keyctl": "EPERM", "finit_module": "EPERM",
    "sysrq_open": "EROFS", "kcore": "empty", "sys": "ro", "mknod_disk": "ok",
    "open_disk": "EPERM", "pivot_root": "EPERM", "chown": "ok", "raw_socket": "ok",
    "CapEff": DOCKER_CAPS, "Seccomp": "2",
}


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the probe")
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(PROBE_C)
    out = d / "probe"
    r = subprocess.run([cc, "-static", "-O1", "-o", str(out), str(d / "probe.c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build a static probe: {r.stderr[-300:]}")
    return out


def probe_bundle(harness: Harness, probe: Path, *, privileged: bool = False) -> Path:
    b = harness.bundle(["/probe", "privileged" if privileged else "default"])
    shutil.copy(probe, b / "rootfs" / "probe")
    spec = json.loads((b / "config.json").read_text())
    spec["linux"]["cgroupsPath"] = harness.cgroup_path(f"iso{id(b) % 100000}")
    if privileged:
        privileged_spec_changes(spec)
    (b / "config.json").write_text(json.dumps(spec))
    return b


def parse(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def run_berth(harness: Harness, b: Path) -> dict[str, str]:
    code, out, err = harness.run(b)
    assert code == 0, err
    return parse(out)


def run_runc(harness: Harness, b: Path, name: str) -> dict[str, Any]:
    root = harness.tmp / "runc-root"
    r = subprocess.run(["runc", "--root", str(root), "run", "--bundle", str(b), name],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    subprocess.run(["runc", "--root", str(root), "delete", "-f", name], capture_output=True,
                   timeout=60)
    assert r.returncode == 0, r.stderr
    return parse(r.stdout)


def test_docker_defaults_refuse_what_docker_refuses(harness: Harness, probe: Path) -> None:
    got = run_berth(harness, probe_bundle(harness, probe))
    expected = dict(EXPECTED_DEFAULT)
    # Some kernels have neither file; then there is nothing to refuse.
    if not os.path.exists("/proc/sysrq-trigger"):
        expected["sysrq_open"] = "ENOENT"
    if not os.path.exists("/proc/kcore"):
        expected["kcore"] = "ENOENT"
    assert got == expected


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_same_answers_as_runc(harness: Harness, probe: Path) -> None:
    b = probe_bundle(harness, probe)
    assert run_berth(harness, b) == run_runc(harness, b, f"iso-{os.getpid()}")


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_privileged_same_answers_as_runc(harness: Harness, probe: Path) -> None:
    b = probe_bundle(harness, probe, privileged=True)
    assert run_berth(harness, b) == run_runc(harness, b, f"isop-{os.getpid()}")


def test_privileged_lifts_the_refusals(harness: Harness, probe: Path) -> None:
    got = run_berth(harness, probe_bundle(harness, probe, privileged=True))
    assert got["mount"] == "ok"
    assert got["unshare_user"] == "ok"
    assert got["sys"] == "rw"
    assert got["Seccomp"] == "0"
    assert got["open_disk"] != "EPERM"
    assert got["pivot_root"] != "EPERM"
    assert got["keyctl"] != "EPERM"
    with open("/proc/self/status") as f:
        mine = next(ln for ln in f if ln.startswith("CapBnd:")).split()[1]
    assert got["CapEff"] == mine  # every capability we hold, none we lack


def test_privileged_gets_the_host_devices(harness: Harness) -> None:
    b = harness.bundle(["sh", "-c", "ls /dev"])
    spec = json.loads((b / "config.json").read_text())
    spec["linux"]["cgroupsPath"] = harness.cgroup_path("privdev")
    privileged_spec_changes(spec)
    (b / "config.json").write_text(json.dumps(spec))
    code, out, err = harness.run(b)
    assert code == 0, err
    host = {n for n in os.listdir("/dev")
            if not os.path.isdir(os.path.join("/dev", n)) and n != "console"
            and (os.path.exists(os.path.join("/dev", n)))}
    chars = {n for n in host if os.stat(os.path.join("/dev", n)).st_mode & 0o020000}
    assert chars <= set(out.split())


def test_ping_works_with_net_raw(harness: Harness) -> None:
    code, out, err = harness.run(harness.bundle(["ping", "-c", "1", "-W", "2", "127.0.0.1"]))
    assert code == 0, out + err
    assert "1 packets received" in out


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
