"""User namespaces: root inside is an unprivileged id outside, with the spec's maps.
Needs root."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth import runtime
from berth.errors import InvalidArgument
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness, wait_exit

harness = support.harness
subreaper = support.subreaper
pytestmark = pytest.mark.root

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.fixture(autouse=True)
def traversable(tmp_path: Path) -> Iterator[None]:
    """The mapped root is an unprivileged host user: it must be able to reach the rootfs
    (pytest's base directory is 0700). Search permission only, restored afterwards."""
    saved = []
    for d in [tmp_path, *tmp_path.parents]:
        if str(d) in ("/", "/tmp"):
            break
        saved.append((d, d.stat().st_mode & 0o7777))
        d.chmod(saved[-1][1] | 0o011)
    yield
    for d, mode in saved:
        with contextlib.suppress(OSError):
            d.chmod(mode)


def userns_bundle(harness: Harness, args: list[str], *, maps: bool = True) -> Path:
    b = harness.bundle(args)
    spec = json.loads((b / "config.json").read_text())
    spec["linux"]["namespaces"].append({"type": "user"})
    if maps:
        spec["linux"]["uidMappings"] = MAP
        spec["linux"]["gidMappings"] = MAP
    spec["linux"]["cgroupsPath"] = harness.cgroup_path("userns")
    # Group ids in the range must be mapped in the namespace (dockerd narrows it too).
    spec["linux"]["sysctl"]["net.ipv4.ping_group_range"] = "0 65535"
    (b / "config.json").write_text(json.dumps(spec))
    return b


def test_root_inside_is_mapped_outside(harness: Harness) -> None:
    b = userns_bundle(harness, ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map; "
                                "hostname; ls /dev/null /dev/pts/ptmx; exec sleep 100"])
    state_dir = harness.state_dir()
    pid = runtime.create("u", str(b), state_dir)
    runtime.start(state_dir)
    import time

    time.sleep(0.3)
    with open(f"/proc/{pid}/status") as f:
        uids = next(ln for ln in f if ln.startswith("Uid:")).split()[1:]
    assert uids == ["100000"] * 4
    assert pid in runtime.container_pids(state_dir)
    runtime.kill(state_dir, signal.SIGKILL)
    assert wait_exit(pid) == 137
    runtime.delete(state_dir)


def test_output_inside(harness: Harness) -> None:
    code, out, err = harness.run(userns_bundle(
        harness, ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map; touch /tmp/x && "
                  "echo wrote"]))
    lines = out.split("\n")
    assert code == 0, err
    assert lines[0] == "0" and lines[1] == "0"
    assert lines[2].split() == ["0", "100000", "65536"]
    assert "wrote" in out


def test_a_new_user_namespace_needs_maps(harness: Harness) -> None:
    with pytest.raises(InvalidArgument, match="Mappings"):
        runtime.create("u", str(userns_bundle(harness, ["true"], maps=False)),
                       harness.state_dir())
