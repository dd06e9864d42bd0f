"""The CLI stays light: --help and --version import nothing daemon-side, and verbs load lazily."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from berth.cli.dispatch import COMMANDS, MANAGEMENT, SUBCOMMANDS

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("asyncio", "sqlite3", "berth.daemon", "berth.api", "berth.container",
             "berth.image", "berth.shim", "berth.runtime", "h11", "httpx")

_PROBE = """
import json, sys
from berth.cli.main import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def _modules_after(*args: str) -> set[str]:
    env = dict(os.environ, BERTH_HOST="unix:///nonexistent/berth.sock")
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=30)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["-v"], ["ps", "--help"],
                                  ["run", "--help"], ["ps"], ["images"], ["cp", "--help"],
                                  ["stats", "--no-stream"], ["exec", "x", "true"],
                                  ["volume", "ls"], ["system", "prune", "-f"],
                                  ["attach", "x"], ["events", "--help"]])
def test_no_daemon_side_imports(args: list[str]) -> None:
    loaded = _modules_after(*args)
    bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert bad == []


def _modules_after_nothing() -> set[str]:
    proc = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps("
                           "sorted(sys.modules)))"], capture_output=True, text=True, timeout=30)
    return set(json.loads(proc.stdout))


def test_help_imports_no_verb_module() -> None:
    loaded = _modules_after("--help")
    assert not [m for m in loaded if m.startswith("berth.cli.commands")]
    assert "argparse" not in loaded
    assert "berth.http.client" not in loaded


def test_version_fast_path_imports_almost_nothing() -> None:
    loaded = _modules_after("--version")
    assert {m for m in loaded if m.startswith("berth")} <= {"berth", "berth.cli",
                                                             "berth.cli.main"}
    assert "argparse" not in loaded
    assert "typing" not in loaded or "typing" in _modules_after_nothing()


def test_a_verb_imports_only_its_own_module() -> None:
    loaded = _modules_after("ps", "--help")
    verbs = {m for m in loaded if m.startswith("berth.cli.commands.")}
    assert verbs == {"berth.cli.commands.ps"}


def test_console_script_version_output() -> None:
    proc = subprocess.run([sys.executable, "-m", "berth.cli.main", "--version"],
                          capture_output=True, text=True, timeout=30)
    from berth import __version__

    assert proc.returncode == 0
    assert proc.stdout == f"berth version {__version__}\n"


def test_version_is_quick() -> None:
    """Median of a few runs; generous bound so a loaded machine does not flake (target 60 ms)."""
    runs = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "berth.cli.main", "--version"],
                       capture_output=True, timeout=30, check=True)
        runs.append(time.perf_counter() - start)
    assert sorted(runs)[len(runs) // 2] < 0.25


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_verb_module_loads_and_has_help(verb: str) -> None:
    import io

    from berth.cli.main import main

    out, err = io.BytesIO(), io.BytesIO()
    assert main([verb, "--help"], stdout=out, stderr=err, environ={}) == 0
    text = out.getvalue().decode()
    assert text.startswith(f"Usage:  berth {verb}")
    assert COMMANDS[verb][1] in text


def test_management_aliases_point_to_real_verbs() -> None:
    for _group, (_summary, subs) in MANAGEMENT.items():
        for verb in subs.values():
            assert verb in COMMANDS or verb in SUBCOMMANDS


@pytest.mark.parametrize("verb", sorted(SUBCOMMANDS))
def test_every_management_only_verb_has_help(verb: str) -> None:
    import io

    from berth.cli.main import main

    out, err = io.BytesIO(), io.BytesIO()
    assert main([*verb.split(), "--help"], stdout=out, stderr=err, environ={}) == 0
    text = out.getvalue().decode()
    assert text.startswith(f"Usage:  berth {verb}")
    assert SUBCOMMANDS[verb][1] in text


def test_management_alias_keeps_its_own_name_in_help() -> None:
    import io

    from berth.cli.main import main

    out = io.BytesIO()
    assert main(["volume", "list", "--help"], stdout=out, stderr=io.BytesIO(), environ={}) == 0
    assert out.getvalue().decode().startswith("Usage:  berth volume list [OPTIONS]")


@pytest.mark.parametrize("args", [["run", "--help"], ["exec", "--help"], ["cp", "--help"],
                                  ["start", "--help"], ["stats", "--help"]])
def test_verbs_leave_heavy_stdlib_modules_alone(args: list[str]) -> None:
    """dataclasses (it imports inspect, ~10 ms) and tarfile only when a copy runs."""
    loaded = _modules_after(*args)
    assert not loaded & {"dataclasses", "inspect", "tarfile", "asyncio"}


_BARE_PROBE = """
import sys
from berth.cli.main import main
main(sys.argv[1:])
sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
"""
_HEAVY = ("argparse", "gettext", "locale", "typing", "re", "enum", "json", "contextlib",
          "threading", "shutil", "urllib.parse", "ipaddress", "dataclasses", "inspect",
          "importlib", "signal", "socket", "collections")


def _bare_modules(*args: str) -> set[str]:
    env = dict(os.environ, BERTH_HOST="unix:///nonexistent/berth.sock")
    proc = subprocess.run([sys.executable, "-c", _BARE_PROBE, *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=30)
    line = proc.stderr.rsplit("MODULES ", 1)[1]
    return set(line.split())


@pytest.mark.parametrize("args", [["run", "--rm", "-e", "A=1", "busybox", "true"],
                                  ["create", "--name", "x", "busybox:1.36"], ["--version"]])
def test_run_path_leaves_slow_stdlib_modules_alone(args: list[str]) -> None:
    """What ``berth run`` loads beyond the interpreter's own start: none of the modules that
    made up most of its start-up (argparse with gettext/locale, typing, re/enum through json,
    contextlib, threading, dataclasses ...)."""
    nothing = subprocess.run([sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
                             capture_output=True, text=True, timeout=30, check=True)
    loaded = _bare_modules(*args) - set(nothing.stdout.split())
    assert sorted(loaded & set(_HEAVY)) == []
