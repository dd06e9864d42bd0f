"""A berthd of its own for each test: temp data and exec roots, a seeded busybox image, and a
teardown that leaves nothing behind (processes, mounts, files)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"  # beside the checkout, in CI as in a developer's tree
FIXTURES = SHARED / "fixtures" / "images"
SPECS = SHARED / "specs"
sys.path.insert(0, str(REPO / "scripts"))

import busybox_rootfs  # noqa: E402

_BUSYBOX_TAR: bytes | None = None


def busybox_tar() -> bytes:
    global _BUSYBOX_TAR
    if _BUSYBOX_TAR is None:
        import io

        buf = io.BytesIO()
        busybox_rootfs.write_tar(buf)
        _BUSYBOX_TAR = buf.getvalue()
    return _BUSYBOX_TAR


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class Berthd:
    """A running daemon and the ways a test talks to it."""

    def __init__(self, root: str, extra_args: list[str] | None = None) -> None:
        self.root = root
        self.data_root = os.path.join(root, "d")
        self.exec_root = os.path.join(root, "r")
        self.socket = os.path.join(root, "berth.sock")
        self.host = f"unix://{self.socket}"
        self.log_path = os.path.join(root, "berthd.log")
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    # -- process ---------------------------------------------------------------------------

    def start(self, timeout: float = 20) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "berth.daemon.main", "-H", self.host, "--data-root",
             self.data_root, "--exec-root", self.exec_root, "--log-level", "debug",
             *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berthd exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if self.request("GET", "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"berthd did not answer within {timeout}s:\n{self.logs()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def logs(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    # -- API -------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None,
                timeout: float = 60) -> tuple[int, bytes, dict[str, str]]:
        conn = _UnixConnection(self.socket, timeout)
        try:
            if query:
                path = path + "?" + urllib.parse.urlencode(query, doseq=True)
            data = body
            hdrs = dict(headers or {})
            if body is not None and not isinstance(body, bytes | bytearray):
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, data, _ = self.request(method, path, body, **kw)
        assert 200 <= status < 300, (status, data)
        return json.loads(data) if data.strip() else None

    def seed_busybox(self, name: str = "busybox:latest") -> None:
        repo, _, tag = name.partition(":")
        status, data, _ = self.request(
            "POST", "/v1.44/images/create", busybox_tar(),
            query={"fromSrc": "-", "repo": repo, "tag": tag or "latest",
                   "changes": 'CMD ["sh"]'},
            headers={"Content-Type": "application/x-tar"})
        assert status == 200, (status, data, self.logs())

    def env(self) -> dict[str, str]:
        """Environment for the docker CLI and ``berth`` pointed at this daemon."""
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env["BERTH_HOST"] = self.host
        env["DOCKER_CONFIG"] = os.path.join(self.root, "docker-config")
        env["DOCKER_CLI_HINTS"] = "false"
        env.pop("DOCKER_CONTEXT", None)
        return env


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def _mounts_under(root: str) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(root):
                found.append(point)
    return found


CGROUP_ROOT = "/sys/fs/cgroup"


def _container_ids(root: str) -> set[str]:
    ids: set[str] = set()
    for sub in ("d/containers", "r/containers"):
        with contextlib.suppress(OSError):
            ids.update(name for name in os.listdir(os.path.join(root, sub)) if len(name) == 64)
    return ids


def _ids_mentioned(root: str) -> set[str]:
    """12-digit id prefixes this root's daemon ever wrote in its log or event history: its
    containers, even removed ones, and never those of another engine running beside it."""
    import re

    found: set[str] = set()
    for name in ("berthd.log", "d/events.jsonl"):
        with contextlib.suppress(OSError), open(os.path.join(root, name), "rb") as f:
            found.update(m.decode() for m in re.findall(rb"(?<![0-9a-f])[0-9a-f]{12}", f.read()))
    return found


def _cgroup_dirs(container_ids: set[str] | None = None) -> list[str]:
    """Container cgroups under every hierarchy's ``berth`` parent (only these ids if given)."""
    found = []
    with contextlib.suppress(OSError):
        for hierarchy in os.listdir(CGROUP_ROOT):
            base = os.path.join(CGROUP_ROOT, hierarchy, "berth")
            with contextlib.suppress(OSError):
                for cid in os.listdir(base):
                    path = os.path.join(base, cid)
                    if (container_ids is None or cid in container_ids) and os.path.isdir(path):
                        found.append(path)
    return found


def _remove_cgroup(path: str) -> None:
    with contextlib.suppress(OSError), open(os.path.join(path, "cgroup.procs")) as f:
        for pid in f.read().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def remove_empty_cgroup_parents() -> None:
    """The shared parents of every hierarchy (the daemon's ``berth``, ``berth-runtime``'s own)
    go once no container uses them."""
    with contextlib.suppress(OSError):
        for hierarchy in os.listdir(CGROUP_ROOT):
            for parent in ("berth", "berth-runtime"):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(CGROUP_ROOT, hierarchy, parent))


def cleanup_root(root: str, cgroups_before: set[str] | None = None) -> list[str]:
    """Kill what still runs from this root, unmount what is mounted under it and remove its
    containers' cgroups (those of its containers, and any of its own that appeared since
    ``cgroups_before``, removed containers included); return what had to be cleaned, so a
    test can assert the engine left nothing."""
    leaks = []
    container_ids = _container_ids(root)
    for pid in _processes_mentioning(root):
        leaks.append(f"process {pid}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        leaks.append(f"mount {point}")
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    stale = set(_cgroup_dirs(container_ids))
    if cgroups_before is not None:
        mentioned = _ids_mentioned(root)
        stale |= {path for path in set(_cgroup_dirs()) - cgroups_before
                  if os.path.basename(path)[:12] in mentioned}
    for path in sorted(stale):
        leaks.append(f"cgroup {path}")
        _remove_cgroup(path)
    remove_empty_cgroup_parents()
    shutil.rmtree(root, ignore_errors=True)
    return leaks


@contextlib.contextmanager
def running_berthd(seed: bool = True, extra_args: list[str] | None = None) -> Iterator[Berthd]:
    # Short roots: unix socket paths are limited to 108 bytes, and shim sockets live at
    # EXEC_ROOT/containers/<64 hex>/shim.sock.
    root = tempfile.mkdtemp(prefix="bt", dir="/tmp")
    daemon = Berthd(root, extra_args)
    cgroups_before = set(_cgroup_dirs())
    leaks: list[str] = []
    try:
        daemon.start()
        if seed:
            daemon.seed_busybox()
        yield daemon
    finally:
        daemon.stop()
        time.sleep(0.1)
        leaks = cleanup_root(root, cgroups_before)
    assert not leaks, f"the engine left behind: {leaks}"
