"""Loads, commits, deletes and GC at the same time: the slow parts of a load run without the
service lock, so GC must leave alone whatever an operation in flight relies on."""

from __future__ import annotations

import hashlib
import io
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.image import ImageService
from berth.metadata import MetadataStore
from tests.conformance.layers import FIXTURES, make_tar

pytestmark = pytest.mark.root


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    db = MetadataStore(str(tmp_path / "berth.db"))
    service = ImageService(str(tmp_path / "root"), db)
    yield service
    service.snapshots.close()
    db.close()


def archive(tag: str, seed: int, shared: bytes) -> bytes:
    rng = random.Random(seed)
    own = make_tar([{"name": f"own{seed}/f{i}", "data": rng.randbytes(50_000)}
                    for i in range(20)])
    layers = [shared, own]
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
    config = json.dumps({"os": "linux", "architecture": "amd64", "created": f"2024-01-0{seed}"
                         "T00:00:00Z", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    manifest = json.dumps([{"Config": "c.json", "RepoTags": [tag],
                            "Layers": ["s.tar", "o.tar"]}])
    return make_tar([{"name": "c.json", "data": config.encode()},
                     {"name": "s.tar", "data": shared}, {"name": "o.tar", "data": own},
                     {"name": "manifest.json", "data": manifest.encode()}])


def check(svc: ImageService) -> None:
    db = svc.db.read()
    committed = {i.key for i in svc.snapshots.walk() if i.kind.value == "committed"}
    for (chain,) in db.execute("SELECT chain_id FROM layers"):
        assert chain in committed, f"layer {chain} lost its snapshot"
    refs = {r[0] for r in db.execute("SELECT id FROM images")}
    refs |= {r[0] for r in db.execute("SELECT digest FROM layer_blobs")}
    for d in refs:
        assert svc.content.exists(d), f"blob {d} referenced but missing"


def test_loads_deletes_and_gc_race(svc: ImageService) -> None:
    shared = make_tar([{"name": "shared/f", "data": random.Random(0).randbytes(400_000)}])
    archives = [archive(f"race/img:{i}", i + 1, shared) for i in range(4)]
    with open(FIXTURES / "busybox-docker-save.tar", "rb") as f:
        list(svc.load(f))
    errors: list[BaseException] = []
    stop = threading.Event()

    def loader(n: int) -> None:
        try:
            for round_ in range(4):
                list(svc.load(io.BytesIO(archives[(n + round_) % len(archives)])))
        except BaseException as e:  # handed to the test
            errors.append(e)

    def reaper() -> None:
        try:
            while not stop.is_set():
                for image in svc.list():
                    for tag in image["RepoTags"]:
                        if tag.startswith("race/"):
                            try:
                                svc.delete(tag)
                            except Exception:  # noqa: BLE001 - gone meanwhile
                                pass
                svc.collect()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=loader, args=(n,)) for n in range(4)]
    reap = threading.Thread(target=reaper)
    reap.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    reap.join()
    assert not errors, errors
    check(svc)
    for a in archives:  # everything still loads and resolves afterwards
        list(svc.load(io.BytesIO(a)))
    check(svc)
    assert len([i for i in svc.list() if i["RepoTags"][0].startswith("race/")]) == 4
    svc.collect()
    check(svc)
