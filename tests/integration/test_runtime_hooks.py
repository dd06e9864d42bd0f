"""OCI hooks: each kind runs where and when the spec says, with the state on stdin; a
failing hook fails the create and leaves nothing behind. Needs root."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from berth import runtime
from berth.errors import RuntimeFailure
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness, wait_exit

harness = support.harness
subreaper = support.subreaper
pytestmark = pytest.mark.root


def recorder(out: Path, kind: str) -> dict[str, Any]:
    """A host hook that saves its stdin (the state) and its mount namespace."""
    return {"path": "/bin/sh", "args": ["sh", "-c",
                                        f"cat > {out}/{kind}.json; "
                                        f"readlink /proc/self/ns/mnt > {out}/{kind}.ns"]}


def with_hooks(harness: Harness, args: list[str], hooks: dict[str, Any]) -> Path:
    b = harness.bundle(args)
    spec = json.loads((b / "config.json").read_text())
    spec["hooks"] = hooks
    (b / "config.json").write_text(json.dumps(spec))
    return b


def test_every_hook_runs_with_the_state(harness: Harness, tmp_path: Path) -> None:
    out = tmp_path / "hooks"
    out.mkdir()
    hooks = {k: [recorder(out, k)] for k in ("prestart", "createRuntime", "createContainer",
                                             "poststart", "poststop")}
    # startContainer runs inside the container: its path is the container's.
    hooks["startContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c",
                                                            "cat > /tmp/start.json"]}]
    b = with_hooks(harness, ["true"], hooks)
    state_dir = harness.state_dir()
    pid = runtime.create("h", str(b), state_dir)
    for kind in ("prestart", "createRuntime", "createContainer"):
        st = json.loads((out / f"{kind}.json").read_text())
        assert st["id"] == "h" and st["pid"] == pid and st["bundle"] == str(b)
    host_ns = os.readlink("/proc/self/ns/mnt")
    assert (out / "createRuntime.ns").read_text().strip() == host_ns
    assert (out / "createContainer.ns").read_text().strip() != host_ns
    assert not (out / "poststart.json").exists()
    runtime.start(state_dir)
    assert json.loads((b / "rootfs/tmp/start.json").read_text())["id"] == "h"
    assert json.loads((out / "poststart.json").read_text())["status"] == "running"
    wait_exit(pid)
    runtime.delete(state_dir)
    assert json.loads((out / "poststop.json").read_text())["status"] == "stopped"


@pytest.mark.parametrize("kind", ["createRuntime", "createContainer"])
def test_a_failing_hook_fails_create_and_leaves_nothing(harness: Harness, kind: str) -> None:
    b = with_hooks(harness, ["true"], {kind: [{"path": "/bin/sh",
                                               "args": ["sh", "-c", "echo nope >&2; exit 3"]}]})
    state_dir = harness.state_dir()
    with pytest.raises(RuntimeFailure, match="nope"):
        runtime.create("h", str(b), state_dir)
    assert not os.path.exists(state_dir)


def test_hook_with_a_relative_path_is_refused(harness: Harness) -> None:
    from berth.errors import InvalidArgument

    b = with_hooks(harness, ["true"], {"poststop": [{"path": "sh"}]})
    with pytest.raises(InvalidArgument, match="hooks.poststop"):
        runtime.create("h", str(b), harness.state_dir())


def test_failing_start_container_hook_fails_start(harness: Harness) -> None:
    b = with_hooks(harness, ["true"], {"startContainer": [{"path": "/bin/false"}]})
    state_dir = harness.state_dir()
    pid = runtime.create("h", str(b), state_dir)
    with pytest.raises(RuntimeFailure, match="startContainer"):
        runtime.start(state_dir)
    assert wait_exit(pid) == 1
    runtime.delete(state_dir)
