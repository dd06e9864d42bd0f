"""``docker events`` with since/until and filters, and restart policies with their counts."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import DOCKER, docker, run_ok

pytestmark = pytest.mark.root


def _wait_for(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_events_since_until_and_filters(berthd: Berthd) -> None:
    since = str(int(time.time()) - 1)
    run_ok(berthd, "run", "--name", "ev", "--label", "team=a", "busybox", "true")
    run_ok(berthd, "volume", "create", "evvol")
    run_ok(berthd, "rm", "ev")
    until = str(int(time.time()) + 1)
    out = run_ok(berthd, "events", "--since", since, "--until", until, "--format",
                 "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    lines = out.splitlines()
    assert lines[:4] == ["container create ev", "container start ev", "container die ev",
                         "volume create "] or "container create ev" in lines
    for want in ("container create ev", "container start ev", "container die ev",
                 "container destroy ev"):
        assert want in lines
    out = run_ok(berthd, "events", "--since", since, "--until", until, "--filter",
                 "type=container", "--filter", "event=die", "--format", "{{json .}}")
    (event,) = [json.loads(line) for line in out.splitlines()]
    assert event["Actor"]["Attributes"]["exitCode"] == "0"
    assert event["Actor"]["Attributes"]["team"] == "a"
    out = run_ok(berthd, "events", "--since", since, "--until", until, "--filter",
                 "label=team=b")
    assert out == ""


def test_events_stream_live(berthd: Berthd) -> None:
    proc = subprocess.Popen([DOCKER, "events", "--filter", "event=start", "--format",
                             "{{.Actor.Attributes.name}}"], env=berthd.env(),
                            stdout=subprocess.PIPE)
    try:
        time.sleep(0.5)
        run_ok(berthd, "run", "--rm", "--name", "live", "busybox", "true")
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"live\n"
    finally:
        proc.terminate()
        proc.wait()


def test_events_survive_a_daemon_restart(berthd: Berthd) -> None:
    since = str(int(time.time()) - 1)
    run_ok(berthd, "run", "--rm", "--name", "before", "busybox", "true")
    berthd.stop()
    berthd.start()
    out = run_ok(berthd, "events", "--since", since, "--until", str(int(time.time()) + 1),
                 "--filter", "event=destroy", "--format", "{{.Actor.Attributes.name}}")
    assert out.split() == ["before"]


def _inspect(berthd: Berthd, ref: str) -> dict:  # type: ignore[type-arg]
    return json.loads(run_ok(berthd, "inspect", ref))[0]


def test_restart_on_failure_counts(berthd: Berthd) -> None:
    run_ok(berthd, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox",
           "sh", "-c", "exit 4")
    _wait_for(lambda: _inspect(berthd, "flaky")["RestartCount"] == 2 and
              _inspect(berthd, "flaky")["State"]["Status"] == "exited")
    time.sleep(1)
    info = _inspect(berthd, "flaky")
    assert info["RestartCount"] == 2 and info["State"]["ExitCode"] == 4
    run_ok(berthd, "rm", "flaky")


def test_restart_always_until_stopped(berthd: Berthd) -> None:
    run_ok(berthd, "run", "-d", "--name", "again", "--restart", "always", "busybox",
           "sh", "-c", "sleep 0.2")
    _wait_for(lambda: _inspect(berthd, "again")["RestartCount"] >= 2)
    run_ok(berthd, "stop", "-t", "1", "again")
    count = _inspect(berthd, "again")["RestartCount"]
    time.sleep(1.5)
    info = _inspect(berthd, "again")
    assert info["RestartCount"] == count and not info["State"]["Running"]
    run_ok(berthd, "rm", "-f", "again")
    result = docker(berthd, "run", "--rm", "--restart", "always", "busybox", "true")
    assert result.returncode != 0


def test_image_events(berthd: Berthd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.daemon_fixture import busybox_tar

    time.sleep(0.05)  # the fixture's seeding import is not part of this
    since = str(time.time())
    image_id = run_ok(berthd, "inspect", "-f", "{{.Id}}", "busybox").strip()
    run_ok(berthd, "tag", "busybox", "evimg:1")
    saved = str(tmp_path / "saved.tar")
    run_ok(berthd, "save", "-o", saved, "evimg:1")
    run_ok(berthd, "rmi", "evimg:1")
    run_ok(berthd, "load", "-i", saved)
    imported = subprocess.run([DOCKER, "import", "-", "evimported:2"], input=busybox_tar(),
                              env=berthd.env(), capture_output=True, check=True)
    imported_id = imported.stdout.decode().strip()
    run_ok(berthd, "rmi", "evimported:2")
    run_ok(berthd, "image", "prune", "-f")
    until = str(time.time() + 0.5)
    out = run_ok(berthd, "events", "--since", since, "--until", until, "--filter",
                 "type=image", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} "
                 "{{.Actor.Attributes.name}}")
    assert out.splitlines() == [
        f"image tag {image_id} evimg:1",
        f"image save {image_id} {image_id}",
        f"image untag {image_id} {image_id}",
        f"image load {image_id} {image_id}",
        f"image import {imported_id} {imported_id}",
        f"image untag {imported_id} {imported_id}",
        f"image delete {imported_id} {imported_id}",
        "image prune  <no value>",
    ]
    # Only image events, and the image filter narrows them to one image.
    out = run_ok(berthd, "events", "--since", since, "--until", until, "--filter",
                 f"image={imported_id}", "--format", "{{.Action}}")
    assert out.split() == ["import", "untag", "delete"]

    import docker as docker_py

    client = docker_py.DockerClient(base_url=berthd.host, version="1.44")
    try:
        events = list(client.events(since=float(since), until=float(until),
                                    filters={"type": "image", "event": "tag"}, decode=True))
    finally:
        client.close()
    assert [(e["Type"], e["Action"], e["Actor"]["Attributes"]["name"]) for e in events] == [
        ("image", "tag", "evimg:1")]
    assert events[0]["status"] == "tag" and events[0]["id"] == image_id
