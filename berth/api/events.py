"""``/events``: past events from the bus's ring (``since``/``until``), then live ones."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from berth import errors
from berth.api.containers import parse_filters
from berth.events.bus import matches
from berth.http.server import Request, Router, StreamResponse

__all__ = ["register"]


def _timestamp(text: str | None) -> float | None:
    """Docker's forms: unix seconds (with a fraction) or RFC 3339."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise errors.InvalidArgument(f"invalid timestamp: {text!r}") from None


def register(router: Router, services: Any) -> None:
    bus = services.events

    async def events(request: Request) -> StreamResponse:
        filters = parse_filters(request)
        since = _timestamp(request.arg("since"))
        until = _timestamp(request.arg("until"))
        queue = bus.subscribe() if until is None or until > time.time() else None
        past = [e for e in bus.history()
                if since is not None and e["timeNano"] / 1e9 >= since
                and (until is None or e["timeNano"] / 1e9 <= until) and matches(e, filters)]

        async def chunks() -> AsyncIterator[bytes]:
            try:
                if past:
                    yield b"".join(json.dumps(e).encode() + b"\n" for e in past)
                if queue is None:
                    return
                while True:
                    timeout = None if until is None else max(until - time.time(), 0)
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        return
                    if event is None:
                        return
                    if until is not None and event["timeNano"] / 1e9 > until:
                        return
                    if matches(event, filters):
                        yield json.dumps(event).encode() + b"\n"
            finally:
                if queue is not None:
                    bus.unsubscribe(queue)

        return StreamResponse(chunks())

    router.add("GET", "/events", events)
