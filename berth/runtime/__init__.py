"""berth's OCI runtime: a bundle in, an isolated process out (what runc does).

It knows nothing of images, the database or asyncio. ``create`` runs the init stages
(``init``) and leaves the container blocked before exec; ``start`` releases it. See
``container`` for the state directory and who reaps init, ``sync`` for the messages between
the stages, ``spec`` for Docker's defaults.

Names load lazily (PEP 562): the daemon uses ``spec`` and ``user`` and should not carry the
whole create path in its memory; the launcher loads it by running its warm-up container.
"""

from __future__ import annotations

from berth.util import lazy_exports

_EXPORTS = {
    "container_pids": "container",
    "create": "container",
    "delete": "container",
    "kill": "container",
    "oom_killed": "container",
    "pause": "container",
    "resume": "container",
    "start": "container",
    "state": "container",
    "stats": "container",
    "update": "container",
    "default_spec": "spec",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
