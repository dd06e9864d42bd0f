"""The event bus (ring, persistence, filters) and the local volume driver, without a daemon."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from berth import errors
from berth.events.bus import EventBus, matches
from berth.volume import VolumeService


def test_ring_is_bounded_and_survives_a_restart(tmp_path: Path) -> None:
    bus = EventBus(str(tmp_path), capacity=10)
    for i in range(35):
        bus.emit("container", "start", f"id{i}", {"name": f"n{i}"})
    assert [e["Actor"]["ID"] for e in bus.history()] == [f"id{i}" for i in range(25, 35)]
    with open(tmp_path / "events.jsonl") as f:
        assert sum(1 for _ in f) <= 20
    again = EventBus(str(tmp_path), capacity=10)
    assert [e["Actor"]["ID"] for e in again.history()] == [f"id{i}" for i in range(25, 35)]


def test_filters() -> None:
    event = EventBus().emit("container", "die", "abc123", {"name": "web", "image": "busybox",
                                                          "tier": "front", "exitCode": "1"})
    assert matches(event, {"type": ["container"], "event": ["die"]})
    assert matches(event, {"container": ["web"], "label": ["tier=front"]})
    assert matches(event, {"container": ["abc"], "image": ["busybox"]})
    assert not matches(event, {"type": ["volume"]})
    assert not matches(event, {"label": ["tier=back"]})
    health = EventBus().emit("container", "health_status: healthy", "x", {})
    assert matches(health, {"event": ["health_status"]})


def test_live_subscribers() -> None:
    async def main() -> list[str]:
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        queue = bus.subscribe()
        await asyncio.to_thread(bus.emit, "volume", "create", "v1", {})
        bus.emit("volume", "destroy", "v1", {})
        got = [await asyncio.wait_for(queue.get(), 2) for _ in range(2)]
        bus.unsubscribe(queue)
        return [e["Action"] for e in got if e]

    assert asyncio.run(main()) == ["create", "destroy"]


def test_volumes(tmp_path: Path) -> None:
    users: dict[str, list[str]] = {}
    emitted: list[tuple[str, str]] = []
    vols = VolumeService(str(tmp_path), in_use=lambda n: users.get(n, []),
                         emit=lambda action, name, attrs: emitted.append((action, name)))
    vol, created = vols.create("data", labels={"a": "b"})
    assert created and vol["Mountpoint"] == str(tmp_path / "volumes" / "data" / "_data")
    assert vols.create("data")[1] is False
    anon, _ = vols.create()
    assert len(anon["Name"]) == 64 and vols.is_anonymous(anon["Name"])
    assert [v["Name"] for v in vols.list({"label": ["a=b"]})] == ["data"]
    users["data"] = ["c1"]
    with pytest.raises(errors.Conflict):
        vols.remove("data")
    assert vols.prune()["VolumesDeleted"] == [anon["Name"]]
    assert vols.prune({"all": ["true"]})["VolumesDeleted"] == []
    users.clear()
    vols.remove("data")
    assert not os.path.exists(tmp_path / "volumes" / "data")
    with pytest.raises(errors.NotFound):
        vols.inspect("data")
    with pytest.raises(errors.InvalidArgument):
        vols.create("../escape")
    assert emitted[0] == ("create", "data") and emitted[-1] == ("destroy", "data")
