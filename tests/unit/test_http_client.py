"""berth.http.client against a fake daemon (h11 on the server side) and raw-socket peers."""

from __future__ import annotations

import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_cli_fakedaemon import FakeDaemon, Reply, error_reply, fake_daemon, json_reply

from berth.http.client import (
    APIError,
    Client,
    DaemonUnavailable,
    ProtocolError,
    _encode_params,
    parse_host,
)
from berth.http.frames import STDOUT, FrameDecoder, encode_frame

__all__ = ["fake_daemon"]  # the fixture, re-exported for pytest


def test_parse_host() -> None:
    assert parse_host("unix:///run/berth/berth.sock") == (socket.AF_UNIX, "/run/berth/berth.sock")
    assert parse_host("tcp://127.0.0.1:2375") == (socket.AF_INET, ("127.0.0.1", 2375))
    assert parse_host("tcp://[::1]:2376") == (socket.AF_INET6, ("::1", 2376))
    assert parse_host("tcp://example.com") == (socket.AF_INET, ("example.com", 2375))
    with pytest.raises(Exception, match="invalid daemon address"):
        parse_host("ftp://x")


def test_encode_params_follows_docker_conventions() -> None:
    assert _encode_params({"all": True, "size": False, "limit": None}) == "?all=1&size=0"
    assert _encode_params({"changes": ["CMD [\"sh\"]", "ENV A=1"]}) == \
        "?changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3D1"
    assert _encode_params({"filters": {"label": ["a=b"]}}) == \
        "?filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
    assert _encode_params({}) == ""


def test_get_json_uses_version_prefix(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/json", json_reply([{"Id": "abc"}]))
    client = Client(fake_daemon.host)
    assert client.get_json("/containers/json", {"all": True}) == [{"Id": "abc"}]
    req = fake_daemon.last("GET", "/containers/json")
    assert req.arg("all") == "1"
    assert req.headers["user-agent"].startswith("berth-cli/")


def test_raw_target_has_version(fake_daemon: FakeDaemon) -> None:
    seen: list[str] = []

    def grab(sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        seen.append(data.split(b" ", 2)[1].decode())
        sock.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    with _raw_server(grab) as path:
        Client(f"unix://{path}").request("POST", "/containers/x/start").close()
    assert seen == ["/v1.44/containers/x/start"]


def test_post_json_body(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/containers/create", lambda r: json_reply(
        {"Id": "c1", "Warnings": [], "echo": r.json()}, 201))
    result = Client(fake_daemon.host).post_json("/containers/create", {"name": "web"},
                                                 {"Image": "busybox"})
    assert result["echo"] == {"Image": "busybox"}
    req = fake_daemon.last("POST", "/containers/create")
    assert req.arg("name") == "web"
    assert req.headers["content-type"] == "application/json"


def test_error_status_raises_api_error(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/nope/json", error_reply(404, "No such container: nope"))
    with pytest.raises(APIError) as info:
        Client(fake_daemon.host).get_json("/containers/nope/json")
    assert info.value.status == 404
    assert info.value.message == "No such container: nope"
    assert info.value.is_not_found


def test_error_without_json_body(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/x", Reply(500, b"boom\n"))
    fake_daemon.route("GET", "/y", Reply(503, b""))
    client = Client(fake_daemon.host)
    with pytest.raises(APIError, match="^boom$"):
        client.get_json("/x")
    with pytest.raises(APIError, match="503"):
        client.get_json("/y")


def test_check_false_returns_error_response(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/x", error_reply(409, "conflict"))
    with Client(fake_daemon.host).request("GET", "/x", check=False) as r:
        assert r.status == 409
        assert r.json() == {"message": "conflict"}


def test_missing_socket_is_a_clear_error(tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/nope.sock"
    with pytest.raises(DaemonUnavailable) as info:
        Client(host).get_json("/info")
    assert str(info.value) == f"Cannot connect to the berth daemon at {host}. Is berthd running?"


def test_refused_socket_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # bound, never listened: connect() is refused
    with pytest.raises(DaemonUnavailable, match="Is berthd running"):
        Client(f"unix://{path}").get_json("/info")


def test_streamed_chunked_response(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/events", Reply(200, iter([b"one\ntw", b"o\n", b"three"])))
    with Client(fake_daemon.host).request("GET", "/events") as r:
        assert r.headers["transfer-encoding"] == "chunked"
        assert list(r.iter_lines()) == [b"one\n", b"two\n", b"three"]


def test_streamed_chunks_arrive_before_the_end(fake_daemon: FakeDaemon) -> None:
    release = threading.Event()

    def slow() -> Iterator[bytes]:
        yield b"first"
        release.wait(5)
        yield b"second"

    fake_daemon.route("GET", "/logs", lambda r: Reply(200, slow()))
    with Client(fake_daemon.host).request("GET", "/logs") as r:
        chunks = r.iter_chunks()
        assert next(chunks) == b"first"
        release.set()
        assert b"".join(chunks) == b"second"


def test_chunked_upload_from_iterable(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/images/load", lambda r: json_reply({"got": len(r.body)}))
    parts = [b"a" * 100_000, b"", b"b" * 5]
    with Client(fake_daemon.host).request("POST", "/images/load", body=iter(parts)) as r:
        assert r.json() == {"got": 100_005}
    assert fake_daemon.last("POST", "/images/load").headers["transfer-encoding"] == "chunked"


def test_file_upload_has_content_length(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    blob = bytes(range(256)) * 4096
    path = tmp_path / "image.tar"
    path.write_bytes(blob)
    fake_daemon.route("POST", "/images/load", lambda r: json_reply({"ok": r.body == blob}))
    with open(path, "rb") as f, Client(fake_daemon.host).request(
            "POST", "/images/load", body=f) as r:
        assert r.json() == {"ok": True}
    assert fake_daemon.last("POST", "/images/load").headers["content-length"] == str(len(blob))


def test_pipe_upload_is_chunked(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/images/load", lambda r: json_reply({"body": r.body.decode()}))
    rfd, wfd = socket.socketpair()
    wfd.sendall(b"from a pipe")
    wfd.close()
    with rfd.makefile("rb") as f, Client(fake_daemon.host).request(
            "POST", "/images/load", body=f) as r:
        assert r.json() == {"body": "from a pipe"}


def test_hijack_returns_socket_and_buffered_bytes(fake_daemon: FakeDaemon) -> None:
    def attach(sock: socket.socket, buffered: bytes) -> None:
        # Output sent with the head arrives in the client's buffer: it must not be lost.
        sock.sendall(encode_frame(STDOUT, b"early\n"))
        data = buffered
        while chunk := sock.recv(4096):
            data += chunk
        sock.sendall(encode_frame(STDOUT, b"echo:" + data))
        sock.close()

    fake_daemon.route("POST", r"/containers/(\w+)/attach", Reply(hijack=attach))
    client = Client(fake_daemon.host)
    with client.hijack("POST", "/containers/c1/attach", params={"stream": True}) as h:
        assert h.status == 101
        h.sock.sendall(b"typed input")
        h.close_write()
        data = h.buffered
        while chunk := h.sock.recv(4096):
            data += chunk
    frames = FrameDecoder().feed(data)
    assert frames == [(STDOUT, b"early\n"), (STDOUT, b"echo:typed input")]
    req = fake_daemon.last("POST", "/containers/c1/attach")
    assert req.headers["upgrade"] == "tcp"
    assert req.headers["connection"].lower() == "upgrade"


def test_hijack_error_raises(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", r"/containers/(\w+)/attach", error_reply(404, "No such container"))
    with pytest.raises(APIError, match="No such container"):
        Client(fake_daemon.host).hijack("POST", "/containers/x/attach")


def test_send_then_wait_response(fake_daemon: FakeDaemon) -> None:
    exited = threading.Event()
    fake_daemon.route("POST", r"/containers/(\w+)/wait",
                      lambda r: (exited.wait(5), json_reply({"StatusCode": 3}))[1])
    client = Client(fake_daemon.host)
    pending = client.send("POST", "/containers/c1/wait", params={"condition": "next-exit"})
    # The request is with the daemon before we ask for the answer.
    for _ in range(100):
        if fake_daemon.calls():
            break
        threading.Event().wait(0.01)
    assert fake_daemon.calls() == ["POST /containers/c1/wait"]
    exited.set()
    with pending.wait_response() as r:
        assert r.json() == {"StatusCode": 3}


def test_ping_unversioned(fake_daemon: FakeDaemon) -> None:
    headers = Client(fake_daemon.host).ping()
    assert headers["api-version"] == "1.44"
    assert fake_daemon.calls() == ["GET /_ping"]


# -- raw peers for framing corner cases --------------------------------------------------------

class _raw_server:
    """A one-shot unix socket server running ``handler(conn)`` in a thread."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="berth-raw-")
        self.path = str(Path(self._tmp.name) / "s.sock")
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.bind(self.path)
        self._sock.listen(1)
        self._handler = handler
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            self._handler(conn)

    def __enter__(self) -> str:
        self._thread.start()
        return self.path

    def __exit__(self, *exc: object) -> None:
        self._thread.join(5)
        self._sock.close()
        self._tmp.cleanup()


def _answer(raw: bytes) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        conn.sendall(raw)

    return handler


def _get(path: str) -> bytes:
    with Client(f"unix://{path}").request("GET", "/x") as r:
        return r.read()


def test_body_until_close() -> None:
    with _raw_server(_answer(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")) \
            as path:
        assert _get(path) == b"all of it"


def test_continue_then_response_with_trailers() -> None:
    raw = (b"HTTP/1.1 100 Continue\r\n\r\n"
           b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: y\r\n\r\n")
    with _raw_server(_answer(raw)) as path:
        assert _get(path) == b"hello"


def test_truncated_body_is_a_protocol_error() -> None:
    server = _raw_server(_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"))
    with server as path, pytest.raises(ProtocolError):
        _get(path)


def test_garbage_status_line_is_a_protocol_error() -> None:
    server = _raw_server(_answer(b"SSH-2.0-OpenSSH\r\n\r\n"))
    with server as path, pytest.raises(ProtocolError, match="malformed status line"):
        _get(path)


def test_hijack_accepts_200_from_older_servers() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
           + encode_frame(STDOUT, b"hi\n"))
    server = _raw_server(_answer(raw))
    with server as path, Client(f"unix://{path}").hijack("POST", "/containers/x/attach") as h:
        data = h.buffered
        while chunk := h.sock.recv(4096):
            data += chunk
    assert FrameDecoder().feed(data) == [(STDOUT, b"hi\n")]


def test_path_is_escaped(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/images/(.+)/json", lambda r: json_reply({"p": r.path}))
    client = Client(fake_daemon.host)
    assert client.get_json("/images/localhost:5000/a b@sha256:00/json") == {
        "p": "/images/localhost:5000/a%20b@sha256:00/json"}
    assert client.get_json("/images/what?#/json") == {"p": "/images/what%3F%23/json"}


def test_response_as_a_file(fake_daemon: FakeDaemon) -> None:
    import tarfile
    from io import BytesIO

    buf = BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("f")
        info.size = 5
        tar.addfile(info, BytesIO(b"hello"))
    data = buf.getvalue()
    fake_daemon.route("GET", "/containers/x/archive",
                      lambda req: Reply(200, iter([data[:100], data[100:700], data[700:]])))
    with Client(fake_daemon.host).request("GET", "/containers/x/archive") as r:
        f = r.fileobj()
        assert f.read(3) == data[:3]
        assert f.read() == data[3:]
        assert f.read() == b""
    with Client(fake_daemon.host).request("GET", "/containers/x/archive") as r, \
            tarfile.open(fileobj=r.fileobj(), mode="r|") as tar:
        member = tar.next()
        assert member is not None and member.name == "f"
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == b"hello"


def test_head_request_has_no_body(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("HEAD", "/containers/x/archive", Reply(200, b"", {
        "X-Docker-Container-Path-Stat": "e30="}))
    with Client(fake_daemon.host).request("HEAD", "/containers/x/archive") as r:
        assert r.headers["x-docker-container-path-stat"] == "e30="
        assert r.read() == b""
