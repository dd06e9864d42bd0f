"""The Engine API spoken directly: headers, versions, and bad input that must not hurt."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.daemon_fixture import FIXTURES, Berthd

pytestmark = pytest.mark.root


def _images(daemon: Berthd) -> list[str]:
    return sorted(i["Id"] for i in daemon.json("GET", "/images/json", query={"all": "1"}))


def test_ping_headers_and_versions(berthd: Berthd) -> None:
    for method in ("GET", "HEAD"):
        status, body, headers = berthd.request(method, "/_ping")
        assert status == 200
        assert body == (b"OK" if method == "GET" else b"")
        assert headers["api-version"] == "1.44"
        assert headers["ostype"] == "linux"
        assert headers["server"].startswith("berth/")
    assert berthd.json("GET", "/v1.44/version")["ApiVersion"] == "1.44"
    assert berthd.json("GET", "/version")["MinAPIVersion"] == "1.24"
    status, body, _ = berthd.request("GET", "/v1.99/version")
    assert status == 400 and b"too new" in body


def test_error_shapes(berthd: Berthd) -> None:
    status, body, _ = berthd.request("GET", "/containers/nope/json")
    assert status == 404 and json.loads(body) == {"message": "No such container: nope"}
    status, body, _ = berthd.request("POST", "/containers/create", {"Image": "nosuch"})
    assert status == 404
    assert json.loads(body)["message"] == "No such image: nosuch:latest"
    status, body, _ = berthd.request("GET", "/images/nosuch/json")
    assert status == 404 and b"No such image" in body


def test_bad_create_bodies(berthd: Berthd) -> None:
    status, body, _ = berthd.request("POST", "/containers/create", b"{not json",
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and "message" in json.loads(body)
    status, body, _ = berthd.request("POST", "/containers/create",
                                     {"Image": "busybox", "Cmd": 42})
    assert status == 400 and b"Cmd" in body
    status, body, _ = berthd.request("POST", "/containers/create",
                                     {"Image": "busybox", "Env": ["A=1", 2]})
    assert status == 400
    status, body, _ = berthd.request("POST", "/containers/create", {"Image": "busybox"},
                                     query={"name": "bad name!"})
    assert status == 400 and b"Invalid container name" in body
    assert berthd.json("GET", "/containers/json", query={"all": "1"}) == []


def test_duplicate_name_is_409(berthd: Berthd) -> None:
    first = berthd.json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]},
                        query={"name": "twin"})
    status, body, _ = berthd.request("POST", "/containers/create",
                                     {"Image": "busybox", "Cmd": ["true"]},
                                     query={"name": "twin"})
    assert status == 409
    assert first["Id"] in json.loads(body)["message"]
    assert len(berthd.json("GET", "/containers/json", query={"all": "1"})) == 1
    berthd.request("DELETE", f"/containers/{first['Id']}")


@pytest.mark.parametrize("body", [
    b"",
    b"this is not a tar archive at all" * 10,
    (FIXTURES / "multilayer-docker-save.tar").read_bytes()[:150_000],
])
def test_bad_load_bodies_leave_the_store_alone(berthd: Berthd, body: bytes) -> None:
    before = _images(berthd)
    status, data, _ = berthd.request("POST", "/images/load", body,
                                     headers={"Content-Type": "application/x-tar"})
    assert status == 400, (status, data)
    assert json.loads(data)["message"]
    assert _images(berthd) == before
    assert berthd.request("GET", "/_ping")[0] == 200


def test_load_of_a_tar_without_manifest(berthd: Berthd) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    before = _images(berthd)
    status, data, _ = berthd.request("POST", "/images/load", buf.getvalue())
    assert status == 400
    assert _images(berthd) == before


def test_wait_headers_come_at_once(berthd: Berthd) -> None:
    import socket

    cid = berthd.json("POST", "/containers/create",
                      {"Image": "busybox", "Cmd": ["sleep", "2"]})["Id"]
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(berthd.socket)
    sock.sendall(f"POST /v1.44/containers/{cid}/wait?condition=next-exit HTTP/1.1\r\n"
                 "Host: x\r\nContent-Length: 0\r\n\r\n".encode())
    head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200")
    assert berthd.request("POST", f"/containers/{cid}/start")[0] == 204
    data = head
    while b'"StatusCode"' not in data:
        data += sock.recv(4096)
    assert b'"StatusCode": 0' in data
    sock.close()
    berthd.request("DELETE", f"/containers/{cid}")
