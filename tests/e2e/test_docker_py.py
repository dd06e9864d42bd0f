"""docker-py (the Python SDK) against berthd: the same flows as the CLI."""

from __future__ import annotations

import time

import pytest

from tests.daemon_fixture import FIXTURES, Berthd

docker = pytest.importorskip("docker")
pytestmark = pytest.mark.root


@pytest.fixture
def client(berthd: Berthd):  # type: ignore[no-untyped-def]
    c = docker.DockerClient(base_url=berthd.host, version="1.44", timeout=60)
    yield c
    c.close()


def test_ping_version_info(client) -> None:  # type: ignore[no-untyped-def]
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.44"
    assert client.info()["OSType"] == "linux"


def test_run_and_remove(client) -> None:  # type: ignore[no-untyped-def]
    out = client.containers.run("busybox", ["echo", "hello"], remove=True)
    assert out == b"hello\n"
    assert client.containers.list(all=True) == []


def test_exit_status_and_logs(client) -> None:  # type: ignore[no-untyped-def]
    container = client.containers.run("busybox", ["sh", "-c", "echo a; echo b >&2; exit 4"],
                                      detach=True)
    result = container.wait(timeout=30)
    assert result["StatusCode"] == 4
    assert container.logs(stdout=True, stderr=False) == b"a\n"
    assert container.logs(stdout=False, stderr=True) == b"b\n"
    container.reload()
    assert container.status == "exited"
    container.remove()


def test_detached_stop_and_force_remove(client) -> None:  # type: ignore[no-untyped-def]
    container = client.containers.run("busybox", ["sleep", "300"], detach=True, name="napper")
    assert client.containers.get("napper").status == "running"
    assert [c.name for c in client.containers.list()] == ["napper"]
    started = time.monotonic()
    container.stop(timeout=1)
    assert time.monotonic() - started < 8
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 137
    container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("napper")


def test_attach_socket_with_stdin(client) -> None:  # type: ignore[no-untyped-def]
    created = client.api.create_container("busybox", ["cat"], stdin_open=True)
    container = client.containers.get(created["Id"])
    sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1,
                                                          "stream": 1})
    container.start()
    sock._sock.sendall(b"ping\n")
    data = b""
    deadline = time.monotonic() + 10
    while not data.endswith(b"ping\n") and time.monotonic() < deadline:
        data += sock._sock.recv(4096)
    assert data == b"\x01\x00\x00\x00\x00\x00\x00\x05ping\n"  # one stdout frame
    container.kill()
    assert container.wait(timeout=10)["StatusCode"] == 137
    sock.close()
    container.remove()


def test_images_load_tag_remove(client) -> None:  # type: ignore[no-untyped-def]
    with open(FIXTURES / "multilayer-docker-save.tar", "rb") as f:
        loaded = client.images.load(f.read())
    assert [t for image in loaded for t in image.tags] == ["fixture/multilayer:1"]
    image = client.images.get("fixture/multilayer:1")
    assert image.attrs["Config"]["WorkingDir"] == "/data"
    image.tag("example/copy", "v2")
    assert "example/copy:v2" in client.images.get("example/copy:v2").tags
    client.images.remove("example/copy:v2")
    out = client.containers.run("fixture/multilayer:1", remove=True)
    assert out == b"one\n"


def test_missing_image_and_container(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nosuch:tag")
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("nosuch")
