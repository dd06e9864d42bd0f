"""The ``berth`` verbs end to end at the HTTP seam: a fake daemon with canned Engine API answers.

Expected outputs were checked against the docker 28 CLI pointed at the same fake.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_cli_fakedaemon import FakeDaemon, Reply, error_reply, fake_daemon, json_reply

from berth.cli.main import main
from berth.http.frames import STDERR, STDOUT, encode_frame, encode_json_message

__all__ = ["fake_daemon"]

CID = "f" * 64


@dataclass
class Result:
    code: int
    out: str
    err: str


def berth(daemon: FakeDaemon, *args: str, stdin: bytes = b"",
          environ: dict[str, str] | None = None) -> Result:
    out, err = io.BytesIO(), io.BytesIO()
    code = main(["-H", daemon.host, *args], stdin=io.BytesIO(stdin), stdout=out, stderr=err,
                environ=environ or {})
    return Result(code, out.getvalue().decode(), err.getvalue().decode())


# -- run ---------------------------------------------------------------------------------------

class Container:
    """One container's lifecycle in the fake: attach parks until start, wait until exit."""

    def __init__(self, daemon: FakeDaemon, *, status: int = 0, start_error: str | None = None,
                 missing_image: bool = False, pull_error: str | None = None,
                 output: list[tuple[int, bytes]] | None = None) -> None:
        self.started = threading.Event()
        self.exited = threading.Event()
        self.stdin_seen = b""
        self.status = status
        self.output = output if output is not None else [(STDOUT, b"hi\n")]
        self.pulled = not missing_image
        self.created_body: dict[str, Any] | None = None
        self.start_error = start_error
        self.pull_error = pull_error
        daemon.route("POST", "/containers/create", self._create)
        daemon.route("POST", "/images/create", self._pull)
        daemon.route("POST", r"/containers/(\w+)/attach", lambda req: Reply(
            hijack=lambda sock, buf: self._attach(sock, buf, req.arg("stdin") == "1")))
        daemon.route("POST", r"/containers/(\w+)/start", self._start)
        daemon.route("POST", r"/containers/(\w+)/wait", self._wait)
        daemon.route("POST", r"/containers/(\w+)/kill", lambda r: Reply(204))

    def _create(self, req: Any) -> Reply:
        if not self.pulled:
            return error_reply(404, f"No such image: {req.json()['Image']}:latest")
        self.created_body = req.json()
        return json_reply({"Id": CID, "Warnings": []}, 201)

    def _pull(self, req: Any) -> Reply:
        if self.pull_error:
            return error_reply(404, self.pull_error)
        self.pulled = True
        return Reply(200, iter([
            encode_json_message({"status": "Pulling from library/busybox", "id": "latest"}),
            encode_json_message({"status": "Downloading", "progressDetail": {
                "current": 5, "total": 10}, "id": "abc"}),
            encode_json_message({"status": "Pull complete", "progressDetail": {}, "id": "abc"}),
            encode_json_message({"status": "Status: Downloaded newer image for busybox:latest"}),
        ]), {"Content-Type": "application/json"})

    def _attach(self, sock: socket.socket, buffered: bytes, want_stdin: bool) -> None:
        stdin = buffered
        if not self.started.wait(5):
            sock.close()
            return
        if self.start_error:
            sock.close()
            return
        sock.settimeout(2)
        try:
            while want_stdin and (chunk := sock.recv(4096)):
                stdin += chunk
        except TimeoutError:
            pass
        self.stdin_seen = stdin
        for stream, payload in self.output:
            sock.sendall(encode_frame(stream, payload))
        if stdin:
            sock.sendall(encode_frame(STDOUT, b"stdin:" + stdin))
        self.exited.set()
        sock.close()

    def _start(self, req: Any) -> Reply:
        self.started.set()
        if self.start_error:
            self.exited.set()
            return error_reply(400, self.start_error)
        return Reply(204)

    def _wait(self, req: Any) -> Reply:
        self.exited.wait(5)
        return json_reply({"StatusCode": self.status, "Error": None})


def test_run_attached_order_output_and_exit_code(fake_daemon: FakeDaemon) -> None:
    c = Container(fake_daemon, status=3, output=[(STDOUT, b"out\n"), (STDERR, b"err\n")])
    r = berth(fake_daemon, "run", "--rm", "busybox", "echo", "-n", "hi")
    assert (r.code, r.out, r.err) == (3, "out\n", "err\n")
    calls = [call.replace(CID, "ID") for call in fake_daemon.calls()]
    assert calls == ["POST /containers/create", "POST /containers/ID/attach",
                     "POST /containers/ID/wait", "POST /containers/ID/start"]
    assert fake_daemon.last("POST", r"/containers/\w+/wait").arg("condition") == "removed"
    attach = fake_daemon.last("POST", r"/containers/\w+/attach")
    assert (attach.arg("stream"), attach.arg("stdin"), attach.arg("stdout")) == ("1", "0", "1")
    assert c.created_body is not None
    assert c.created_body["Cmd"] == ["echo", "-n", "hi"]
    assert c.created_body["HostConfig"]["AutoRemove"] is True


def test_run_interactive_copies_stdin_and_half_closes(fake_daemon: FakeDaemon) -> None:
    c = Container(fake_daemon, output=[])
    r = berth(fake_daemon, "run", "-i", "busybox", "cat", stdin=b"typed\n")
    assert r.code == 0
    assert c.stdin_seen == b"typed\n"
    assert r.out == "stdin:typed\n"
    assert fake_daemon.last("POST", r"/containers/\w+/attach").arg("stdin") == "1"
    assert fake_daemon.last("POST", r"/containers/\w+/wait").arg("condition") == "next-exit"
    body = c.created_body or {}
    assert (body["OpenStdin"], body["StdinOnce"], body["AttachStdin"]) == (True, True, True)


def test_run_detached_prints_full_id(fake_daemon: FakeDaemon) -> None:
    Container(fake_daemon)
    r = berth(fake_daemon, "run", "-d", "--name", "web", "busybox", "sleep", "9")
    assert (r.code, r.out, r.err) == (0, CID + "\n", "")
    assert fake_daemon.last("POST", "/containers/create").arg("name") == "web"
    assert not any("/attach" in call for call in fake_daemon.calls())


def test_run_pulls_missing_image(fake_daemon: FakeDaemon) -> None:
    Container(fake_daemon, missing_image=True, output=[(STDOUT, b"ok\n")])
    r = berth(fake_daemon, "run", "busybox")
    assert r.code == 0
    assert r.out == "ok\n"
    # Not a terminal: progress bars are left out, status lines kept.
    assert r.err == ("Unable to find image 'busybox:latest' locally\n"
                     "latest: Pulling from library/busybox\n"
                     "abc: Pull complete\n"
                     "Status: Downloaded newer image for busybox:latest\n")
    pull = fake_daemon.last("POST", "/images/create")
    assert (pull.arg("fromImage"), pull.arg("tag")) == ("docker.io/library/busybox", "latest")
    assert fake_daemon.calls().count("POST /containers/create") == 2


def test_run_pull_failure_exits_125(fake_daemon: FakeDaemon) -> None:
    Container(fake_daemon, missing_image=True, pull_error="pull access denied for nope")
    r = berth(fake_daemon, "run", "nope")
    assert r.code == 125
    assert r.out == ""
    assert r.err == ("Unable to find image 'nope:latest' locally\n"
                     "berth: Error response from daemon: pull access denied for nope\n\n"
                     "Run 'berth run --help' for more information\n")


@pytest.mark.parametrize(("message", "code"), [
    ('exec: "nope": executable file not found in $PATH', 127),
    ("exec /bin/sh: no such file or directory", 127),
    ("exec /etc: permission denied", 126),
    ("exec /etc: is a directory", 126),
    ("cannot start: out of resources", 125),
])
def test_run_start_failure_exit_codes(fake_daemon: FakeDaemon, message: str, code: int) -> None:
    Container(fake_daemon, start_error=message)
    r = berth(fake_daemon, "run", "--rm", "busybox", "nope")
    assert r.code == code
    assert r.err == (f"berth: Error response from daemon: {message}\n\n"
                     "Run 'berth run --help' for more information\n")


def test_run_create_error_is_125(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/containers/create",
                      error_reply(409, 'Conflict. The container name "/web" is already in use'))
    r = berth(fake_daemon, "run", "--name", "web", "busybox")
    assert r.code == 125
    assert "Conflict. The container name" in r.err


def test_run_without_daemon(tmp_path: Path) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    host = f"unix://{tmp_path}/none.sock"
    code = main(["-H", host, "run", "busybox"], stdout=out, stderr=err, environ={})
    assert code == 125
    assert err.getvalue().decode() == (
        f"berth: Cannot connect to the berth daemon at {host}. Is berthd running?\n\n"
        "Run 'berth run --help' for more information\n")


def test_run_flags_build_docker_create_body(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=1\n\nPASSED\n")
    c = Container(fake_daemon)
    r = berth(fake_daemon, "run", "-d", "-e", "A=1", "-e", "HOME_SET", "--env-file",
              str(env_file), "-l", "a=b", "-l", "c", "-w", "/w", "-u", "1:2", "-h", "box",
              "--entrypoint", "sh", "-p", "127.0.0.1:90-91:90-91/udp", "-p", "80",
              "-v", "/x:/y:ro", "-v", "/anon", "--restart", "on-failure:3", "-t",
              "busybox", "-c", "echo hi", "--", environ={"HOME_SET": "/root"})
    assert r.code == 0, r.err
    body = c.created_body or {}
    assert body["Env"] == ["FROM_FILE=1", "A=1", "HOME_SET=/root"]  # bare PASSED is unset
    assert body["Labels"] == {"a": "b", "c": ""}
    assert (body["WorkingDir"], body["User"], body["Hostname"]) == ("/w", "1:2", "box")
    assert body["Entrypoint"] == ["sh"]
    assert body["Cmd"] == ["-c", "echo hi", "--"]
    assert body["Tty"] is True
    assert body["ExposedPorts"] == {"90/udp": {}, "91/udp": {}, "80/tcp": {}}
    host = body["HostConfig"]
    assert host["PortBindings"] == {
        "90/udp": [{"HostIp": "127.0.0.1", "HostPort": "90"}],
        "91/udp": [{"HostIp": "127.0.0.1", "HostPort": "91"}],
        "80/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert host["Binds"] == ["/x:/y:ro"]
    assert body["Volumes"] == {"/anon": {}}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["NetworkMode"] == "default"
    assert (body["AttachStdout"], body["AttachStdin"]) == (False, False)


def test_run_env_takes_value_from_environment(fake_daemon: FakeDaemon) -> None:
    c = Container(fake_daemon)
    r = berth(fake_daemon, "run", "-d", "-e", "FOO", "-e", "BAR", "busybox",
              environ={"FOO": "from-env"})
    assert r.code == 0
    # A name the CLI's environment lacks is passed bare: the daemon leaves it unset.
    assert (c.created_body or {})["Env"] == ["FOO=from-env", "BAR"]


def test_run_rejects_rm_with_restart(fake_daemon: FakeDaemon) -> None:
    r = berth(fake_daemon, "run", "--rm", "--restart", "always", "busybox")
    assert r.code == 125
    assert "cannot specify both --restart and --rm" in r.err
    assert fake_daemon.calls() == []


def test_run_tty_with_interactive_needs_a_terminal(fake_daemon: FakeDaemon) -> None:
    r = berth(fake_daemon, "run", "-it", "busybox")
    assert (r.code, r.err) == (1, "the input device is not a TTY\n")


def test_create_prints_id(fake_daemon: FakeDaemon) -> None:
    Container(fake_daemon)
    r = berth(fake_daemon, "create", "--name", "x", "busybox", "true")
    assert (r.code, r.out) == (0, CID + "\n")


# -- start / wait / stop / kill / rm -------------------------------------------------------------

def _inspect(tty: bool = False, running: bool = False) -> Reply:
    return json_reply({"Id": CID, "Name": "/web", "State": {"Status": "exited",
                                                             "Running": running},
                       "Config": {"Tty": tty, "OpenStdin": True}, "HostConfig": {}})


def test_start_plain_and_attached(fake_daemon: FakeDaemon) -> None:
    Container(fake_daemon, status=7, output=[(STDOUT, b"again\n")])
    fake_daemon.route("GET", r"/containers/(\w+)/json", _inspect())
    r = berth(fake_daemon, "start", "-a", "web")
    assert (r.code, r.out) == (7, "again\n")
    fake_daemon.route("POST", r"/containers/(\w+)/start", Reply(204))
    r = berth(fake_daemon, "start", "web", "db")
    assert (r.code, r.out) == (0, "web\ndb\n")


def test_stop_kill_rm_report_each(fake_daemon: FakeDaemon) -> None:
    def by_name(req: Any) -> Reply:
        name = req.groups[0]
        return Reply(204) if name == "web" else error_reply(404, f"No such container: {name}")

    fake_daemon.route("POST", r"/containers/([^/]+)/stop", by_name)
    fake_daemon.route("POST", r"/containers/([^/]+)/kill", by_name)
    fake_daemon.route("DELETE", r"/containers/([^/]+)", by_name)
    r = berth(fake_daemon, "stop", "-t", "3", "web", "nope")
    assert (r.code, r.out, r.err) == (1, "web\n", "Error response from daemon: No such "
                                                   "container: nope\n")
    assert fake_daemon.last("POST", "/containers/web/stop").arg("t") == "3"
    r = berth(fake_daemon, "kill", "-s", "HUP", "web")
    assert (r.code, r.out) == (0, "web\n")
    assert fake_daemon.last("POST", "/containers/web/kill").arg("signal") == "HUP"
    r = berth(fake_daemon, "rm", "web", "nope", "nope2")
    assert (r.code, r.out) == (1, "web\n")
    assert r.err == ("Error response from daemon: No such container: nope\n"
                     "Error response from daemon: No such container: nope2\n")
    # docker 28: with -f a missing container is reported but the exit code stays 0.
    r = berth(fake_daemon, "rm", "-f", "nope")
    assert (r.code, r.out, r.err) == (0, "", "Error response from daemon: No such container: "
                                             "nope\n")
    assert fake_daemon.last("DELETE", "/containers/nope").arg("force") == "1"


def test_wait_prints_status_codes(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", r"/containers/(\w+)/wait", json_reply({"StatusCode": 42}))
    r = berth(fake_daemon, "wait", "a", "b")
    assert (r.code, r.out) == (0, "42\n42\n")


# -- ps / images / logs -----------------------------------------------------------------------

def test_ps_table(fake_daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    monkeypatch.setattr(time, "time", lambda: float(now))  # no second ticks by mid-test
    fake_daemon.route("GET", "/containers/json", json_reply([
        {"Id": "a" * 64, "Names": ["/web"], "Image": "busybox", "ImageID": "sha256:" + "b" * 64,
         "Command": "sleep 1000000000000000", "Created": now - 3,
         "Ports": [{"PrivatePort": 443, "Type": "tcp"}], "Status": "Up 2 seconds"},
    ]))
    r = berth(fake_daemon, "ps")
    assert r.code == 0
    assert r.out == (
        "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         "
        "PORTS     NAMES\n"
        "aaaaaaaaaaaa   busybox   \"sleep 1000000000000…\"   3 seconds ago   Up 2 seconds   "
        "443/tcp   web\n")
    assert fake_daemon.last("GET", "/containers/json").arg("all") is None
    r = berth(fake_daemon, "ps", "-aq", "--no-trunc")
    assert r.out == "a" * 64 + "\n"
    assert fake_daemon.last("GET", "/containers/json").arg("all") == "1"


def test_ps_empty_is_just_the_header(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/json", json_reply([]))
    r = berth(fake_daemon, "ps", "-a")
    assert r.out == ("CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n")


def test_ps_filters(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/json", json_reply([]))
    berth(fake_daemon, "ps", "-f", "status=exited", "-f", "label=a=b")
    filters = fake_daemon.last("GET", "/containers/json").arg("filters")
    assert json.loads(filters or "") == {"status": {"exited": True}, "label": {"a=b": True}}


def test_images_table(fake_daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    monkeypatch.setattr(time, "time", lambda: float(now))
    fake_daemon.route("GET", "/images/json", json_reply([
        {"Id": "sha256:" + "b" * 64, "RepoTags": ["busybox:latest"], "RepoDigests": [],
         "Created": now - 86400 * 400, "Size": 4261550},
        {"Id": "sha256:" + "1" * 64, "RepoTags": [], "RepoDigests": [], "Created": now - 30,
         "Size": 999999},
    ]))
    r = berth(fake_daemon, "images")
    assert r.out == ("REPOSITORY   TAG       IMAGE ID       CREATED          SIZE\n"
                     "busybox      latest    bbbbbbbbbbbb   13 months ago    4.26MB\n"
                     "<none>       <none>    111111111111   30 seconds ago   1e+03kB\n")
    r = berth(fake_daemon, "images", "-q")
    assert r.out == "bbbbbbbbbbbb\n111111111111\n"


def test_logs_demultiplexes(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/json", _inspect(tty=False))
    body = encode_frame(STDOUT, b"one\n") + encode_frame(STDERR, b"two\n")
    fake_daemon.route("GET", r"/containers/(\w+)/logs", Reply(200, iter([body[:5], body[5:]])))
    r = berth(fake_daemon, "logs", "--tail", "5", "-t", "web")
    assert (r.code, r.out, r.err) == (0, "one\n", "two\n")
    req = fake_daemon.last("GET", r"/containers/\w+/logs")
    assert (req.arg("tail"), req.arg("timestamps"), req.arg("stdout")) == ("5", "1", "1")
    assert req.arg("follow") is None


def test_logs_tty_is_raw(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/json", _inspect(tty=True))
    fake_daemon.route("GET", r"/containers/(\w+)/logs", Reply(200, b"raw\r\n"))
    r = berth(fake_daemon, "logs", "-f", "web")
    assert r.out == "raw\r\n"
    assert fake_daemon.last("GET", r"/containers/\w+/logs").arg("follow") == "1"


def test_logs_missing_container(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/json", error_reply(404, "No such container: x"))
    r = berth(fake_daemon, "logs", "x")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: x\n")


# -- load / import / tag / rmi ------------------------------------------------------------------

def _json_stream(*messages: dict[str, Any]) -> Reply:
    return Reply(200, b"".join(encode_json_message(m) for m in messages),
                 {"Content-Type": "application/json"})


def test_load_from_file_and_stdin(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    seen: list[bytes] = []

    def load(req: Any) -> Reply:
        seen.append(req.body)
        return _json_stream({"stream": "Loaded image: busybox:latest\n"})

    fake_daemon.route("POST", "/images/load", load)
    tar = tmp_path / "image.tar"
    tar.write_bytes(b"tar bytes" * 1000)
    r = berth(fake_daemon, "load", "-i", str(tar))
    assert (r.code, r.out) == (0, "Loaded image: busybox:latest\n")
    assert fake_daemon.last("POST", "/images/load").arg("quiet") == "1"
    r = berth(fake_daemon, "load", stdin=b"from stdin")
    assert r.code == 0
    assert seen == [b"tar bytes" * 1000, b"from stdin"]


def test_load_error_in_stream(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/images/load", _json_stream(
        {"errorDetail": {"message": "invalid tar header"}, "error": "invalid tar header"}))
    r = berth(fake_daemon, "load", stdin=b"junk")
    assert (r.code, r.err) == (1, "invalid tar header\n")


def test_load_missing_file(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    r = berth(fake_daemon, "load", "-i", str(tmp_path / "nope.tar"))
    assert (r.code, r.err) == (1, f"open {tmp_path}/nope.tar: no such file or directory\n")


def test_import_sends_tar_and_changes(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    fake_daemon.route("POST", "/images/create", lambda req: _json_stream(
        {"status": "sha256:" + "c" * 64}))
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(b"rootfs")
    r = berth(fake_daemon, "import", "-c", "CMD [\"sh\"]", "-c", "ENV A=1", "-m", "msg",
              str(tar), "localhost:5000/me/app:v2")
    assert (r.code, r.out) == (0, "sha256:" + "c" * 64 + "\n")
    req = fake_daemon.last("POST", "/images/create")
    assert req.body == b"rootfs"
    assert req.query["changes"] == ["CMD [\"sh\"]", "ENV A=1"]
    assert (req.arg("fromSrc"), req.arg("repo"), req.arg("tag"), req.arg("message")) == (
        "-", "localhost:5000/me/app", "v2", "msg")
    r = berth(fake_daemon, "import", "-", stdin=b"piped")
    assert fake_daemon.last("POST", "/images/create").body == b"piped"
    assert fake_daemon.last("POST", "/images/create").arg("repo") is None


def test_tag_and_rmi(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", r"/images/(.+)/tag", Reply(201))
    r = berth(fake_daemon, "tag", "busybox", "me/box")
    assert r.code == 0
    req = fake_daemon.last("POST", r"/images/(.+)/tag")
    assert (req.path, req.arg("repo"), req.arg("tag")) == ("/images/busybox/tag", "me/box",
                                                           "latest")
    fake_daemon.route("DELETE", r"/images/(.+)", lambda req: json_reply([
        {"Untagged": "busybox:latest"}, {"Deleted": "sha256:" + "b" * 64}])
        if req.groups[0] == "busybox" else error_reply(404, f"No such image: {req.groups[0]}"))
    r = berth(fake_daemon, "rmi", "-f", "busybox", "nope")
    assert r.code == 1
    assert r.out == f"Untagged: busybox:latest\nDeleted: sha256:{'b' * 64}\n"
    assert r.err == "Error response from daemon: No such image: nope\n"
    assert fake_daemon.last("DELETE", "/images/busybox").arg("force") == "1"


def test_tag_rejects_digest(fake_daemon: FakeDaemon) -> None:
    r = berth(fake_daemon, "tag", "a", "b@sha256:" + "1" * 64)
    assert (r.code, r.err) == (1, "refusing to create a tag with a digest reference\n")


# -- inspect / version / info -------------------------------------------------------------------

def test_inspect_json_and_format(fake_daemon: FakeDaemon) -> None:
    obj = {"Id": CID, "State": {"Status": "running"}, "Config": {"Env": ["A=1"]}}
    fake_daemon.route("GET", r"/containers/(\w+)/json", lambda r: error_reply(404, "No such c"))
    fake_daemon.route("GET", r"/images/(\w+)/json", lambda r: error_reply(404, "No such i"))
    fake_daemon.route("GET", r"/containers/web/json", json_reply(obj))  # later routes win
    r = berth(fake_daemon, "inspect", "web")
    assert r.out == json.dumps([obj], indent=4) + "\n"
    # the daemon's text, re-indented: escapes kept as sent (docker 28 prints the same)
    fake_daemon.route("GET", r"/containers/u/json", Reply(200, b'{"L":{"\\u00e9":"\xc3\xbc"}}'))
    assert berth(fake_daemon, "inspect", "u").out == (
        '[\n    {\n        "L": {\n            "\\u00e9": "\u00fc"\n        }\n    }\n]\n')
    r = berth(fake_daemon, "inspect", "-f", "{{.State.Status}} {{json .Config}}", "web")
    assert r.out == 'running {"Env":["A=1"]}\n'
    r = berth(fake_daemon, "inspect", "nope")
    assert (r.code, r.out, r.err) == (1, "[]\n", "Error: No such object: nope\n")
    r = berth(fake_daemon, "container", "inspect", "nope")
    assert (r.code, r.err) == (1, "Error response from daemon: No such c\n")
    assert fake_daemon.calls()[-1] == "GET /containers/nope/json"


def test_version_client_and_server(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/version", json_reply({
        "Platform": {"Name": "berth"}, "Version": "0.1.0", "ApiVersion": "1.44",
        "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64",
        "Components": [{"Name": "Engine", "Version": "0.1.0", "Details": {
            "ApiVersion": "1.44", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64",
            "GitCommit": "abc", "Experimental": "false"}}]}))
    r = berth(fake_daemon, "version")
    assert r.code == 0
    assert r.out.startswith("Client:\n Version:           0.1.0\n API version:       1.44\n")
    assert "\nServer: berth\n Engine:\n  Version:          0.1.0\n" \
           "  API version:      1.44 (minimum version 1.24)\n" in r.out
    r = berth(fake_daemon, "version", "--format", "{{.Server.Version}}")
    assert r.out == "0.1.0\n"


def test_info_lists_counts(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/info", json_reply({
        "Containers": 2, "ContainersRunning": 1, "ContainersPaused": 0,
        "ContainersStopped": 1, "Images": 3, "ServerVersion": "0.1.0", "Driver": "overlay2",
        "MemTotal": 8 * 1024 ** 3, "NCPU": 2}))
    r = berth(fake_daemon, "info")
    assert r.code == 0
    assert " Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n Images: 3\n" in r.out
    assert " Total Memory: 8GiB\n" in r.out


def test_verbs_without_daemon_exit_1(tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/none.sock"
    for verb in (["ps"], ["images"], ["rm", "x"], ["logs", "x"], ["inspect", "x"]):
        out, err = io.BytesIO(), io.BytesIO()
        assert main(["-H", host, *verb], stdout=out, stderr=err, environ={}) == 1
        assert err.getvalue().decode() == (f"Cannot connect to the berth daemon at {host}. "
                                           "Is berthd running?\n")


def test_host_from_environment(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/json", json_reply([]))
    out = io.BytesIO()
    code = main(["ps", "-q"], stdout=out, stderr=io.BytesIO(),
                environ={"BERTH_HOST": fake_daemon.host, "DOCKER_HOST": "unix:///nope"})
    assert code == 0
    assert fake_daemon.calls() == ["GET /containers/json"]


def test_logs_since_until_become_unix_times(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/json", _inspect(tty=False))
    fake_daemon.route("GET", r"/containers/(\w+)/logs", Reply(200, b""))
    before = time.time()
    assert berth(fake_daemon, "logs", "--since", "1h", "--until",
                 "2023-11-14T22:13:20Z", "web").code == 0
    req = fake_daemon.last("GET", r"/containers/\w+/logs")
    assert before - 3600 - 1 < float(req.arg("since") or 0) <= time.time() - 3600
    assert req.arg("until") == "1700000000.000000000"
    r = berth(fake_daemon, "logs", "--since", "yesterday", "web")
    assert r.code == 1
    assert 'invalid value for "since"' in r.err


# -- exec / restart / history -------------------------------------------------------------------

def test_exec_attached_exit_code(fake_daemon: FakeDaemon) -> None:
    def start(req: Any) -> Reply:
        def stream(sock: socket.socket, buffered: bytes) -> None:
            data = buffered
            while chunk := sock.recv(4096):
                data += chunk
            sock.sendall(encode_frame(STDOUT, b"got:" + data) + encode_frame(STDERR, b"e\n"))
            sock.close()
        return Reply(hijack=stream)

    fake_daemon.route("GET", r"/containers/(\w+)/json", _inspect(running=True))
    fake_daemon.route("POST", r"/containers/(\w+)/exec", json_reply({"Id": "e1"}, 201))
    fake_daemon.route("POST", r"/exec/e1/start", start)
    fake_daemon.route("GET", r"/exec/e1/json", json_reply({"ExitCode": 5, "Running": False}))
    r = berth(fake_daemon, "exec", "-i", "-e", "A=1", "-w", "/tmp", "web", "cat", "-n",
              stdin=b"in")
    assert (r.code, r.out, r.err) == (5, "got:in", "e\n")
    body = fake_daemon.last("POST", r"/containers/web/exec").json()
    assert body["Cmd"] == ["cat", "-n"]
    assert (body["Env"], body["WorkingDir"], body["AttachStdin"]) == (["A=1"], "/tmp", True)
    assert fake_daemon.last("POST", "/exec/e1/start").json() == {"Detach": False, "Tty": False}


def test_exec_detached(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/json", _inspect(running=True))
    fake_daemon.route("POST", r"/containers/(\w+)/exec", json_reply({"Id": "e2"}, 201))
    fake_daemon.route("POST", r"/exec/e2/start", Reply(200))
    r = berth(fake_daemon, "exec", "-d", "web", "sleep", "5")
    assert (r.code, r.out) == (0, "")
    assert fake_daemon.last("POST", "/exec/e2/start").json() == {"Detach": True, "Tty": False}


def test_restart_reports_each(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", r"/containers/([^/]+)/restart", lambda req: Reply(204)
                      if req.groups[0] == "web" else error_reply(404, "No such container: x"))
    r = berth(fake_daemon, "restart", "-t", "1", "web", "x")
    assert (r.code, r.out, r.err) == (1, "web\n", "Error response from daemon: No such "
                                                   "container: x\n")


def test_history_table(fake_daemon: FakeDaemon) -> None:
    now = int(time.time())
    fake_daemon.route("GET", "/images/busybox/history", json_reply([
        {"Id": "sha256:" + "b" * 64, "Created": now - 3600 * 5,
         "CreatedBy": '/bin/sh -c #(nop)  CMD ["sh"]\tx', "Size": 0, "Comment": ""},
        {"Id": "<missing>", "Created": now - 3600 * 6,
         "CreatedBy": "/bin/sh -c #(nop) ADD file:abc in / ", "Size": 4261550,
         "Comment": "imported"}]))
    r = berth(fake_daemon, "history", "busybox")
    # Captured from docker 28 against the same answer (the empty COMMENT keeps its padding).
    assert r.out == (
        "IMAGE          CREATED       CREATED BY                             SIZE      COMMENT\n"
        "bbbbbbbbbbbb   5 hours ago   /bin/sh -c #(nop)  CMD [\"sh\"] x        0B        \n"
        "<missing>      6 hours ago   /bin/sh -c #(nop) ADD file:abc in /    4.26MB    "
        "imported\n")
    assert berth(fake_daemon, "history", "-q", "busybox").out == "bbbbbbbbbbbb\n<missing>\n"
    r = berth(fake_daemon, "history", "-H=false", "busybox")
    assert r.out.splitlines()[0].startswith("IMAGE          CREATED AT             CREATED BY")
    assert "4261550" in r.out


def test_create_errors_are_plain_and_exit_1(fake_daemon: FakeDaemon) -> None:
    # docker 28: create reports daemon and reference errors plainly; option errors exit 125.
    fake_daemon.route("POST", "/containers/create", error_reply(409, "name in use"))
    assert berth(fake_daemon, "create", "--name", "web", "busybox") == Result(
        1, "", "Error response from daemon: name in use\n")
    r = berth(fake_daemon, "create", "BUSYBOX")
    assert (r.code, r.err) == (1, "invalid reference format: repository name "
                                  "(library/BUSYBOX) must be lowercase\n")
    r = berth(fake_daemon, "create", "-p", "abc", "busybox")
    assert (r.code, r.err) == (125, "berth: invalid containerPort: abc\n\n"
                                    "Run 'berth create --help' for more information\n")


def test_run_option_errors_as_docker_words_them(fake_daemon: FakeDaemon) -> None:
    r = berth(fake_daemon, "run", "-e", "=x", "busybox")
    assert r.code == 125
    assert r.err.startswith('invalid argument "=x" for "-e, --env" flag: invalid environment '
                            'variable: =x\n\nUsage:  berth run [OPTIONS]')
    r = berth(fake_daemon, "run", "-m", "12q", "busybox")
    assert r.err.startswith('invalid argument "12q" for "-m, --memory" flag: '
                            "invalid suffix: 'q'\n")
    r = berth(fake_daemon, "run", "BUSYBOX")
    assert (r.code, r.err) == (125, "berth: invalid reference format: repository name "
                                    "(library/BUSYBOX) must be lowercase\n\n"
                                    "Run 'berth run --help' for more information\n")
    assert fake_daemon.calls() == []


def test_restart_policy_left_to_the_daemon(fake_daemon: FakeDaemon) -> None:
    c = Container(fake_daemon)
    assert berth(fake_daemon, "run", "-d", "--restart", "sometimes:2", "busybox").code == 0
    assert (c.created_body or {})["HostConfig"]["RestartPolicy"] == {
        "Name": "sometimes", "MaximumRetryCount": 2}


@pytest.mark.parametrize(("text", "value"), [
    ("512m", 512 << 20), ("1.5GiB", 3 << 29), ("100", 100), ("10 MB", 10 << 20),
    ("1kb", 1024), ("2b", 2)])
def test_ram_in_bytes(text: str, value: int) -> None:
    from berth.cli.options import ram_in_bytes

    assert ram_in_bytes(text) == value


@pytest.mark.parametrize(("text", "error"), [
    ("12q", "invalid suffix: 'q'"), ("x", "invalid size: 'x'"), ("1kbb", "invalid suffix")])
def test_ram_in_bytes_errors(text: str, error: str) -> None:
    from berth.cli.options import ram_in_bytes

    with pytest.raises(ValueError, match=error):
        ram_in_bytes(text)
