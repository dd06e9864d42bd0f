"""Volumes through the docker CLI and docker-py: named, anonymous, copy-up, labels, prune."""

from __future__ import annotations

import json

import docker as docker_py
import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import docker, run_ok

pytestmark = pytest.mark.root


def test_named_volume_lifecycle(berthd: Berthd) -> None:
    assert run_ok(berthd, "volume", "create", "--label", "k=v", "data").strip() == "data"
    info = json.loads(run_ok(berthd, "volume", "inspect", "data"))[0]
    assert info["Driver"] == "local" and info["Labels"] == {"k": "v"}
    assert info["Mountpoint"].endswith("/volumes/data/_data")
    run_ok(berthd, "run", "--rm", "-v", "data:/v", "busybox", "sh", "-c", "echo kept > /v/f")
    assert run_ok(berthd, "run", "--rm", "-v", "data:/v:ro", "busybox", "cat", "/v/f") == \
        "kept\n"
    assert run_ok(berthd, "volume", "ls", "-q", "--filter", "label=k=v").split() == ["data"]
    cid = run_ok(berthd, "create", "-v", "data:/v", "busybox", "true").strip()
    result = docker(berthd, "volume", "rm", "data")
    assert result.returncode != 0 and b"volume is in use" in result.stderr
    assert run_ok(berthd, "ps", "-aq", "--filter", "volume=data").strip() == cid[:12]
    run_ok(berthd, "rm", cid)
    run_ok(berthd, "volume", "rm", "data")
    assert run_ok(berthd, "volume", "ls", "-q") == ""
    result = docker(berthd, "volume", "inspect", "data")
    assert result.returncode != 0 and b"no such volume" in result.stderr


def test_image_content_is_copied_into_a_new_volume(berthd: Berthd) -> None:
    out = run_ok(berthd, "run", "--rm", "-v", "etcvol:/etc", "busybox", "cat", "/etc/passwd")
    assert out.startswith("root:")
    out = run_ok(berthd, "run", "--rm", "-v", "etcvol:/mnt", "busybox", "ls", "/mnt")
    assert "passwd" in out.split()
    run_ok(berthd, "volume", "rm", "etcvol")


def test_anonymous_volumes_and_prune(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "-v", "/anon", "busybox", "sleep", "300").strip()
    (name,) = run_ok(berthd, "volume", "ls", "-q").split()
    assert len(name) == 64
    run_ok(berthd, "rm", "-f", "-v", cid)
    assert run_ok(berthd, "volume", "ls", "-q") == ""
    run_ok(berthd, "volume", "create", "keepme")
    run_ok(berthd, "run", "--rm", "-v", "/anon2", "busybox", "true")
    assert run_ok(berthd, "volume", "ls", "-q").split() == ["keepme"]
    run_ok(berthd, "run", "-v", "/anon3", "--name", "leaves", "busybox", "true")
    run_ok(berthd, "rm", "leaves")
    assert len(run_ok(berthd, "volume", "ls", "-q").split()) == 2
    out = run_ok(berthd, "volume", "prune", "-f")
    assert "keepme" not in out
    assert run_ok(berthd, "volume", "ls", "-q").split() == ["keepme"]
    run_ok(berthd, "volume", "prune", "-af")
    assert run_ok(berthd, "volume", "ls", "-q") == ""


def test_docker_py_volumes(berthd: Berthd) -> None:
    client = docker_py.DockerClient(base_url=berthd.host)
    try:
        vol = client.volumes.create("pyvol", labels={"a": "b"})
        assert vol.name == "pyvol" and vol.attrs["Labels"] == {"a": "b"}
        assert [v.name for v in client.volumes.list()] == ["pyvol"]
        out = client.containers.run("busybox", ["sh", "-c", "echo hi > /m/x; cat /m/x"],
                                    volumes={"pyvol": {"bind": "/m", "mode": "rw"}},
                                    remove=True)
        assert out == b"hi\n"
        vol.remove()
        with pytest.raises(docker_py.errors.NotFound):
            client.volumes.get("pyvol")
        with pytest.raises(docker_py.errors.APIError):
            client.volumes.create("bad/name")
    finally:
        client.close()
