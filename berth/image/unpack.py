"""Apply a layer in a worker process: ``python -m berth.image.unpack`` (JSON in, JSON out).

Why a process: the tar parsing in ``berth.archive`` is Python and holds the GIL for most of
a layer, so unpacking in one of the daemon's threads would stall the API's event loop for
seconds on a big layer. A child process has a GIL of its own; the daemon waits on a pipe.

Protocol: one JSON object on stdin, ``{"blob", "dest", "diff_id", "max_bytes"}``; one on
stdout, ``{"ok": true, "diff_id", "tar_size", "entries"}`` or ``{"ok": false, "kind",
"message"}`` where ``kind`` names a ``berth.errors`` class (anything else is an OSError).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from berth import errors

__all__ = ["apply_in_worker"]


def apply_in_worker(blob: str, dest: str, diff_id: str | None,
                    max_bytes: int | None) -> dict[str, Any]:
    """Unpack ``blob`` into ``dest`` in a child process; raise what it raised."""
    request = json.dumps({"blob": blob, "dest": dest, "diff_id": diff_id,
                          "max_bytes": max_bytes}).encode()
    proc = subprocess.run([sys.executable, "-m", "berth.image.unpack"], input=request,
                          capture_output=True, check=False)
    try:
        reply = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise OSError(f"layer unpacker exited with {proc.returncode}: "
                      f"{proc.stderr.decode(errors='replace')[-2000:]}") from None
    if reply.get("ok"):
        return reply
    kind = getattr(errors, str(reply.get("kind")), None)
    if isinstance(kind, type) and issubclass(kind, errors.BerthError):
        raise kind(reply.get("message") or "layer unpack failed")
    raise OSError(reply.get("errno") or 0, reply.get("message") or "layer unpack failed")


def _main() -> int:
    from berth.archive import Limits, WhiteoutMode, apply_layer

    req = json.loads(sys.stdin.buffer.read())
    try:
        limits = Limits(max_bytes=req.get("max_bytes"))
        with open(req["blob"], "rb") as f:
            result = apply_layer(f, req["dest"], whiteouts=WhiteoutMode.OVERLAY,
                                 expected_diff_id=req.get("diff_id"), limits=limits)
        reply: dict[str, Any] = {"ok": True, "diff_id": result.diff_id,
                                 "tar_size": result.tar_size, "entries": result.entries,
                                 "compression": result.compression.value}
    except errors.BerthError as e:
        reply = {"ok": False, "kind": type(e).__name__, "message": e.message}
    except OSError as e:
        reply = {"ok": False, "kind": "OSError", "errno": e.errno, "message": str(e)}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    os._exit(0)  # nothing to clean up: skip the interpreter's teardown


if __name__ == "__main__":
    raise SystemExit(_main())
