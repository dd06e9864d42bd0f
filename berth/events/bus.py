"""The in-process event bus: what ``/events`` streams, kept for a bounded span.

Publishers call :meth:`EventBus.emit` from the event loop or from a worker thread; each event
is appended to a ring (the last ``capacity`` events) and to ``DATA_ROOT/events.jsonl``, which is
rewritten down to the ring when it grows past twice its size, so history survives a restart
without growing without bound. Subscribers get an ``asyncio.Queue`` each; a subscriber that
falls ``QUEUE_LIMIT`` events behind is dropped rather than slowing publishers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import threading
import time
from typing import Any

__all__ = ["EventBus", "matches"]

QUEUE_LIMIT = 10000


class EventBus:
    def __init__(self, data_root: str | None = None, capacity: int = 1000) -> None:
        self.capacity = capacity
        self.ring: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._path = os.path.join(data_root, "events.jsonl") if data_root else None
        self._lines = 0
        self._file: Any = None
        if self._path:
            self._load()

    def _load(self) -> None:
        assert self._path is not None
        try:
            with open(self._path, "rb") as f:
                for line in f:
                    try:
                        self.ring.append(json.loads(line))
                    except ValueError:
                        continue
                    self._lines += 1
        except FileNotFoundError:
            pass

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def emit(self, kind: str, action: str, actor_id: str,
             attributes: dict[str, str] | None = None) -> dict[str, Any]:
        """Record and publish one event (Docker's message shape, with the legacy fields)."""
        now = time.time_ns()
        event: dict[str, Any] = {"Type": kind, "Action": action,
                                 "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
                                 "scope": "local", "time": now // 1_000_000_000,
                                 "timeNano": now}
        if kind == "container":
            event.update({"status": action, "id": actor_id,
                          "from": (attributes or {}).get("image", "")})
        elif kind == "image":
            event.update({"status": action, "id": actor_id})
        with self._lock:
            self.ring.append(event)
            self._persist(event)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                self._publish(event)
            else:
                loop.call_soon_threadsafe(self._publish, event)
        return event

    def _persist(self, event: dict[str, Any]) -> None:
        """Append to the history file, kept open: an open per event cost more than the write."""
        if not self._path:
            return
        try:
            if self._lines >= 2 * self.capacity:
                self._close_file()
                tmp = self._path + ".tmp"
                with open(tmp, "w") as f:
                    f.writelines(json.dumps(e) + "\n" for e in self.ring)
                os.replace(tmp, self._path)
                self._lines = len(self.ring)
                return
            if self._file is None:
                self._file = open(self._path, "a")
            self._file.write(json.dumps(event) + "\n")
            self._file.flush()
            self._lines += 1
        except OSError:
            self._close_file()  # history is best effort; live subscribers still get the event

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def close(self) -> None:
        with self._lock:
            self._close_file()

    def _publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.qsize() >= QUEUE_LIMIT:
                self._subscribers.discard(queue)
                queue.put_nowait(None)
                continue
            queue.put_nowait(event)

    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.ring)

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)


def matches(event: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Docker's ``/events`` filters: each key must match one of its values."""
    attrs = event["Actor"]["Attributes"]
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = event["Type"] in values
        elif key == "event":
            ok = event["Action"] in values or event["Action"].split(":")[0] in values
        elif key in ("container", "volume", "network"):
            ok = event["Type"] == key and any(
                event["Actor"]["ID"].startswith(v) or attrs.get("name") == v for v in values)
        elif key == "image":
            ok = any(v in (attrs.get("image"), attrs.get("name"), event["Actor"]["ID"])
                     for v in values)
        elif key == "label":
            ok = all(_label_ok(attrs, v) for v in values)
        elif key == "scope":
            ok = "local" in values
        elif key == "daemon":
            ok = event["Type"] == "daemon"
        else:
            ok = True
        if not ok:
            return False
    return True


def _label_ok(attrs: dict[str, str], want: str) -> bool:
    key, eq, value = want.partition("=")
    return key in attrs and (not eq or attrs[key] == value)
