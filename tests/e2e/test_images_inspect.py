"""``docker image inspect`` and ``docker history`` through berthd, against what Docker wrote
for the same image; and the API stays responsive while a big layer unpacks."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.layers import make_tar
from tests.daemon_fixture import FIXTURES, Berthd

pytestmark = pytest.mark.root

DOCKER = "/usr/local/bin/docker"
# API 1.44 dropped VirtualSize (the fixture was written by an older engine).
NOT_IN_144 = {"VirtualSize"}


def run_ok(daemon: Berthd, *args: str) -> str:
    r = subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, timeout=300)
    assert r.returncode == 0, (args, r.stderr.decode(), daemon.logs()[-3000:])
    return r.stdout.decode()


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def test_inspect_matches_dockers(berthd: Berthd) -> None:
    # The docker-save archive: its config is the one Docker inspected (the OCI copy's config
    # was rewritten by skopeo, so its ID and fields differ, in Docker too).
    run_ok(berthd, "load", "-i", str(FIXTURES / "multilayer-docker-save.tar"))
    got = json.loads(run_ok(berthd, "image", "inspect", "fixture/multilayer:1"))[0]
    want = json.loads((FIXTURES / "multilayer-docker-inspect.json").read_text())[0]
    for key in NOT_IN_144:
        want.pop(key)
    assert list(got) == list(want)
    want_shape, got_shape = shape(want), shape(got)
    # A local build had a parent image; a loaded image has none, as in Docker.
    want_shape["Parent"] = got_shape["Parent"] = "str"
    assert got_shape == want_shape
    for key in ("Id", "Comment", "Created", "Container", "ContainerConfig", "DockerVersion",
                "Author", "Config", "Architecture", "Os", "Size", "RootFS"):
        assert got[key] == want[key], key
    assert got["RepoTags"] == ["fixture/multilayer:1"]
    assert got["GraphDriver"]["Name"] == "overlay2"
    history = json.loads(run_ok(berthd, "history", "--format", "json", "--no-trunc",
                                "fixture/multilayer:1").splitlines()[0])
    assert history["ID"] == want["Id"] and "CMD" in history["CreatedBy"]


def test_api_answers_while_a_big_layer_unpacks(berthd: Berthd, tmp_path: Path) -> None:
    rng = random.Random(7)
    layer = make_tar([{"name": f"d/f{i}", "data": rng.randbytes(2000)} for i in range(40_000)])
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"os": "linux", "architecture": "amd64", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["big:1"],
                            "Layers": ["l.tar"]}]).encode()
    path = tmp_path / "big.tar"
    path.write_bytes(make_tar([{"name": "c.json", "data": config},
                               {"name": "l.tar", "data": layer},
                               {"name": "manifest.json", "data": manifest}]))
    done = threading.Event()
    result: list[str] = []

    def load() -> None:
        result.append(run_ok(berthd, "load", "-q", "-i", str(path)))
        done.set()

    t = threading.Thread(target=load)
    t.start()
    worst = 0.0
    pings = 0
    while not done.is_set():
        start = time.perf_counter()
        status, _, _ = berthd.request("GET", "/_ping", timeout=30)
        assert status == 200
        worst = max(worst, time.perf_counter() - start)
        pings += 1
        time.sleep(0.02)
    t.join()
    assert result == ["Loaded image: big:1\n"]
    assert pings >= 5, "the load ended before it could be observed"
    assert worst < 0.5, f"a ping took {worst:.3f}s during the load"
