"""``io.berth.init``: PID 1 is a reaper that runs the command, forwards signals, reaps
orphans and exits with the command's status. Needs root."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from berth import runtime
from tests.integration import test_runtime_support as support
from tests.integration.test_runtime_support import Harness, wait_exit

harness = support.harness
subreaper = support.subreaper
pytestmark = pytest.mark.root


def with_init(harness: Harness, args: list[str]) -> Path:
    b = harness.bundle(args)
    spec = json.loads((b / "config.json").read_text())
    spec["annotations"] = {"io.berth.init": "true"}
    (b / "config.json").write_text(json.dumps(spec))
    return b


def test_command_is_not_pid1_and_status_passes_through(harness: Harness) -> None:
    code, out, _ = harness.run(with_init(harness, ["sh", "-c", "echo $$; exit 4"]))
    assert code == 4 and int(out) > 1


def test_orphans_are_reaped(harness: Harness) -> None:
    # An orphaned child that exits becomes a zombie unless PID 1 reaps it.
    script = ("sh -c 'sleep 0.2 & exit 0'; sleep 0.6; "
              "ps -o stat,comm | grep -c '^Z' || true")
    code, out, _ = harness.run(with_init(harness, ["sh", "-c", script]))
    assert code == 0 and out.split()[-1] == "0"


def test_signals_are_forwarded(harness: Harness) -> None:
    b = with_init(harness, ["sleep", "100"])
    state_dir = harness.state_dir()
    pid = runtime.create("i", str(b), state_dir)
    runtime.start(state_dir)
    time.sleep(0.1)
    # A command that is not PID 1 gets the kernel's default action: SIGTERM kills it.
    runtime.kill(state_dir, signal.SIGTERM)
    assert wait_exit(pid) == 143
    runtime.delete(state_dir)


def test_missing_command_is_127(harness: Harness) -> None:
    from berth.errors import RuntimeFailure

    b = with_init(harness, ["no-such-command"])
    state_dir = harness.state_dir()
    with pytest.raises(RuntimeFailure) as err:
        runtime.create("i", str(b), state_dir)
    assert err.value.exit_code == 127
    assert not os.path.exists(state_dir)
