"""berth's OCI runtime: a bundle in, an isolated process out (what runc does).

It knows nothing of images, the database or asyncio. ``create`` runs the init stages
(``init``) and leaves the container blocked before exec; ``start`` releases it. See
``container`` for the state directory and who reaps init, ``sync`` for the messages between
the stages, ``spec`` for Docker's defaults.
"""

from berth.runtime.container import (
    container_pids,
    create,
    delete,
    kill,
    oom_killed,
    pause,
    resume,
    start,
    state,
    stats,
    update,
)
from berth.runtime.spec import default_spec

__all__ = ["container_pids", "create", "default_spec", "delete", "kill", "oom_killed", "pause",
           "resume", "start", "state", "stats", "update"]
