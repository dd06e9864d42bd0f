"""The import arrows of DESIGN.md, enforced: lower layers never import higher ones."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BERTH = Path(__file__).resolve().parents[2] / "berth"

LAYER = {
    "errors": 0, "oci": 0, "util": 0,
    "linux": 1, "archive": 1, "http": 1,
    "content": 2, "snapshot": 2, "metadata": 2, "events": 2, "runtime": 2,
    "shim": 3,
    "image": 4, "distribution": 4, "network": 4, "volume": 4,
    "container": 5, "build": 5,
    "api": 6, "daemon": 6,
    "cli": 7,
}
# Stores of one layer stay independent of each other.
SIBLINGS_APART = {"content", "snapshot", "metadata", "events", "runtime"}
# The CLI talks HTTP only: it may use these and nothing else of berth.
CLI_MAY_IMPORT = {"cli", "http", "errors", "util", "oci"}


def _package_of(path: Path) -> str:
    rel = path.relative_to(BERTH)
    return rel.parts[0].removesuffix(".py") if rel.parts[0] != "__init__.py" else ""


def _berth_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module + "." + alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "berth" and len(parts) > 1 and parts[1] in LAYER:
                found.add(parts[1])
    return found


def _modules() -> list[Path]:
    return sorted(p for p in BERTH.rglob("*.py") if _package_of(p) in LAYER)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(BERTH)))
def test_imports_point_down(path: Path) -> None:
    own = _package_of(path)
    for other in _berth_imports(path) - {own}:
        assert LAYER[other] <= LAYER[own], f"{own} (layer {LAYER[own]}) imports {other}"
        if own in SIBLINGS_APART and LAYER[other] == LAYER[own]:
            raise AssertionError(f"{own} imports its sibling {other}")
        if own == "cli":
            assert other in CLI_MAY_IMPORT, f"the CLI imports daemon-side {other}"


def test_cli_help_stays_light() -> None:
    code = ("import sys, contextlib, io\n"
            "from berth.cli import main as m\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    m.main(['--help'])\n"
            "heavy = [n for n in ('asyncio', 'sqlite3', 'h11', 'berth.daemon', 'berth.api',\n"
            "         'berth.container', 'berth.image', 'berth.runtime') if n in sys.modules]\n"
            "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
