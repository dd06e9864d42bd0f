"""Fixtures and helpers shared by the runtime and shim integration tests (no tests here).

Every test gets a ``Harness`` that builds busybox bundles under its ``tmp_path`` and, at the
end, kills and reaps whatever it started and checks that nothing leaked: no process rooted
in or naming the test's directory, no mount left in our mount namespace.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth import linux, runtime
from berth.runtime import cgroups

REPO = Path(__file__).resolve().parents[2]
_ROOTFS_TAR: list[bytes] = []


def rootfs_tar() -> bytes:
    """The busybox rootfs tar, built once per test session."""
    if not _ROOTFS_TAR:
        sys.path.insert(0, str(REPO / "scripts"))
        try:
            import busybox_rootfs  # type: ignore[import-not-found]
        finally:
            sys.path.pop(0)
        buf = io.BytesIO()
        busybox_rootfs.write_tar(buf)
        _ROOTFS_TAR.append(buf.getvalue())
    return _ROOTFS_TAR[0]


def extract_rootfs(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=rootfs_tar(), check=True)
    return dest


CGROUP_ROOT = "/sys/fs/cgroup"


def berth_cgroups() -> set[str]:
    """Cgroup directories named like berth's, in every v1 hierarchy (two levels deep)."""
    found: set[str] = set()
    with contextlib.suppress(OSError):
        for ctrl in os.listdir(CGROUP_ROOT):
            top = os.path.join(CGROUP_ROOT, ctrl)
            with contextlib.suppress(OSError):
                for name in os.listdir(top):
                    if "berth" in name and os.path.isdir(os.path.join(top, name)):
                        found.add(os.path.join(top, name))
                        for sub in os.listdir(os.path.join(top, name)):
                            if os.path.isdir(os.path.join(top, name, sub)):
                                found.add(os.path.join(top, name, sub))
    return found


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def _processes_under(marker: str) -> list[int]:
    """Processes whose root or cwd is under ``marker``, or whose command line names it."""
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        try:
            links = [os.readlink(f"/proc/{pid}/root"), os.readlink(f"/proc/{pid}/cwd")]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{pid}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        if st[st.rindex(b")") + 2:][:1] == b"Z":
            continue
        if any(link.startswith(marker) for link in links) or marker in cmd:
            found.append(pid)
    return found


def reap_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state_dirs: list[str] = []
        self.cgroup_paths: list[str] = []
        self._n = 0

    def bundle(self, args: list[str], *, spec: dict[str, Any] | None = None,
               rootfs: bool = True, **process: Any) -> Path:
        """A bundle running ``args`` with Docker's defaults; ``process`` keys override."""
        self._n += 1
        b = self.tmp / f"bundle{self._n}"
        (b / "rootfs").mkdir(parents=True)
        if rootfs:
            extract_rootfs(b / "rootfs")
        doc = spec or runtime.default_spec(args)
        doc["process"].update(process)
        doc.setdefault("hostname", "")
        (b / "config.json").write_text(json.dumps(doc))
        return b

    def cgroup_path(self, name: str) -> str:
        """A cgroupsPath for this test (``berth-test-<n>/<name>``), removed at cleanup."""
        path = f"berth-test-{os.getpid()}-{id(self)}/{name}"
        self.cgroup_paths.append(path)
        return path

    def owns_cgroup(self, path: str) -> bool:
        """Whether a cgroup directory is one this test's containers may have made."""
        tail = "/".join(path.split("/")[4:])
        return any(tail == p or p.startswith(tail + "/") or tail.startswith(p)
                   for p in self.cgroup_paths)

    def state_dir(self) -> str:
        self._n += 1
        path = str(self.tmp / f"state{self._n}")
        self.state_dirs.append(path)
        return path

    def run(self, bundle: Path, *, stdin: bytes | None = None,
            rootfs_mounts: list[dict[str, Any]] | None = None,
            timeout: float = 20.0) -> tuple[int, str, str]:
        """create + start + wait through the library: (exit code, stdout, stderr)."""
        state_dir = self.state_dir()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if stdin is not None else (None, None)
        try:
            pid = runtime.create("t", str(bundle), state_dir, stdio=(in_r, out_w, err_w),
                                 rootfs_mounts=rootfs_mounts)
        finally:
            for fd in (out_w, err_w, in_r):
                if fd is not None:
                    os.close(fd)
        try:
            runtime.start(state_dir)
            if in_w is not None:
                assert stdin is not None
                os.write(in_w, stdin)
                os.close(in_w)
                in_w = None
            out, err = _drain(out_r, err_r, timeout)
            code = wait_exit(pid, timeout)
        finally:
            for fd in (out_r, err_r, in_w):
                if fd is not None:
                    os.close(fd)
        runtime.delete(state_dir)
        return code, out.decode(), err.decode()

    def cleanup(self) -> None:
        marker = str(self.tmp)
        state_dirs = set(self.state_dirs)
        # Shims' and CLI's state directories too: deleting them removes their cgroups.
        state_dirs |= {str(p.parent) for p in self.tmp.rglob("state.json")}
        for state_dir in sorted(state_dirs):
            with contextlib.suppress(Exception):
                runtime.delete(state_dir, force=True)
        for path in self.cgroup_paths:
            # Other runtimes (runc) also make it in the named and unified hierarchies.
            top = path.split("/")[0]
            for hierarchy in os.listdir(CGROUP_ROOT):
                base = os.path.join(CGROUP_ROOT, hierarchy, top)
                for d, _, _ in sorted(os.walk(base), reverse=True):
                    with contextlib.suppress(OSError):
                        os.rmdir(d)
            cg = cgroups.Cgroup.for_path(path)
            for _ in range(100):
                for pid in cg.pids():
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    if cg.is_frozen():
                        cg.thaw()
                reap_children()
                try:
                    cg.destroy(timeout=0.05)
                    break
                except OSError:
                    time.sleep(0.02)
            for hierarchy in os.listdir(CGROUP_ROOT):
                base = os.path.join(CGROUP_ROOT, hierarchy, top)
                for d, _, _ in sorted(os.walk(base), reverse=True):
                    with contextlib.suppress(OSError):
                        os.rmdir(d)
        for _ in range(250):
            pids = _processes_under(marker)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
            reap_children()
        reap_children()
        for state_dir in sorted(state_dirs):
            with contextlib.suppress(Exception):
                runtime.delete(state_dir, force=True)


def _drain(out_fd: int, err_fd: int, timeout: float) -> tuple[bytes, bytes]:
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    open_fds = set(bufs)
    deadline = time.monotonic() + timeout
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("container output did not end")
        ready, _, _ = select.select(list(open_fds), [], [], left)
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                bufs[fd] += data
            else:
                open_fds.discard(fd)
    return bytes(bufs[out_fd]), bytes(bufs[err_fd])


def wait_exit(pid: int, timeout: float = 20.0) -> int:
    """Reap ``pid`` (ours as a subreaper) and return its Docker-style exit code."""
    deadline = time.monotonic() + timeout
    while True:
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} did not exit")
        time.sleep(0.002)


@pytest.fixture(scope="session")
def subreaper() -> None:
    """Containers' inits are reparented to this test process, so tests can reap them."""
    linux.set_child_subreaper(True)


@pytest.fixture
def harness(tmp_path: Path, subreaper: None) -> Iterator[Harness]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    before = _mounts()
    cgroups_before = berth_cgroups()
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        h.cleanup()
        leaked = _processes_under(str(tmp_path))
        # Only this test's: other work on the machine mounts and unmounts meanwhile.
        new_mounts = {m for m in _mounts() - before if m.startswith(str(tmp_path))}
        new_cgroups = {c for c in berth_cgroups() - cgroups_before if h.owns_cgroup(c)}
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert not leaked, f"processes left behind: {leaked}"
    assert not new_mounts, f"mounts left behind: {new_mounts}"
    assert not new_cgroups, f"cgroups left behind: {new_cgroups}"
