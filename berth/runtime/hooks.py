"""OCI lifecycle hooks: where each runs, and running one.

======================  ===============================  ==================================
hook                    run by, where                    when
======================  ===============================  ==================================
prestart (deprecated),  the creator, runtime namespace   init has its namespaces and mounts,
createRuntime                                            before pivot_root (init waits)
createContainer         init, container's namespaces     right after, still before pivot_root
startContainer          init, inside the container       after ``start``, before exec
poststart               ``start``'s caller               once the command has exec'd
poststop                ``delete``                       once the container is gone
======================  ===============================  ==================================

Each hook gets the container's state JSON on stdin. A failing hook before exec fails the
create (or start), and everything is cleaned up; a failing poststart kills the container; a
failing poststop is only reported, as runc does.
"""

from __future__ import annotations

import os

from berth.errors import InvalidArgument, RuntimeFailure
from berth.util.jsonlite import dumps

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    from typing import Any

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")


def parse(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The spec's ``hooks``, checked: each has an absolute ``path``."""
    raw = spec.get("hooks") or {}
    if not isinstance(raw, dict):
        raise InvalidArgument("hooks: must be an object")
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, entries in raw.items():
        if kind not in KINDS:
            raise InvalidArgument(f"hooks: unknown hook kind {kind!r}")
        checked = []
        for i, hook in enumerate(entries or ()):
            path = hook.get("path") if isinstance(hook, dict) else None
            if not isinstance(path, str) or not os.path.isabs(path):
                raise InvalidArgument(f"hooks.{kind}[{i}]: path must be an absolute path")
            timeout = hook.get("timeout")
            if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
                raise InvalidArgument(f"hooks.{kind}[{i}]: timeout must be a positive integer")
            checked.append(hook)
        if checked:
            out[kind] = checked
    return out


def run(hooks: list[dict[str, Any]], state: dict[str, Any], kind: str) -> None:
    """Run ``hooks`` in order with ``state`` on stdin; the first failure raises
    ``RuntimeFailure`` naming the hook."""
    import subprocess

    data = dumps(state).encode()
    for i, hook in enumerate(hooks):
        args = hook.get("args") or [hook["path"]]
        env = dict(e.split("=", 1) for e in hook.get("env") or () if "=" in e)
        try:
            result = subprocess.run(args, executable=hook["path"], env=env, input=data,
                                    capture_output=True, timeout=hook.get("timeout"),
                                    close_fds=True)
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(f"{kind} hook #{i} ({hook['path']}) timed out after "
                                 f"{hook.get('timeout')}s") from None
        except OSError as e:
            raise RuntimeFailure(f"{kind} hook #{i} ({hook['path']}): {e.strerror}") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise RuntimeFailure(f"{kind} hook #{i} ({hook['path']}) exited with "
                                 f"{result.returncode}: {detail[-500:]}")
