"""The container, image, volume and system verbs at the HTTP seam, against the fake daemon.

Expected requests and outputs were captured from the docker 28 CLI pointed at the same fake
answers (see the module docstring of test_cli_verbs).
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli_fakedaemon import FakeDaemon, Reply, error_reply, fake_daemon, json_reply
from test_cli_verbs import CID, berth

from berth.http.frames import encode_json_message

__all__ = ["fake_daemon"]


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """Local time is UTC and the clock stands still; both restored afterwards."""
    now = float(int(time.time()))
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setattr(time, "time", lambda: now)
    time.tzset()
    yield now
    monkeypatch.undo()
    time.tzset()

STATS = {
    "read": "2026-01-01T00:00:01.5Z", "preread": "2026-01-01T00:00:00.5Z", "id": "a" * 64,
    "name": "/web", "pids_stats": {"current": 3},
    "cpu_stats": {"cpu_usage": {"total_usage": 300000000}, "system_cpu_usage": 20000000000,
                  "online_cpus": 4},
    "precpu_stats": {"cpu_usage": {"total_usage": 100000000},
                     "system_cpu_usage": 16000000000, "online_cpus": 4},
    "memory_stats": {"usage": 10485760, "limit": 2147483648,
                     "stats": {"inactive_file": 2097152}},
    "blkio_stats": {"io_service_bytes_recursive": [
        {"major": 8, "minor": 0, "op": "read", "value": 4096},
        {"major": 8, "minor": 0, "op": "write", "value": 123456}]},
    "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 648}},
}
STATS_TABLE = (
    "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O        "
    "BLOCK I/O       PIDS\n"
    "aaaaaaaaaaaa   web       20.00%    8MiB / 2GiB         0.39%     1.5kB / 648B   "
    "4.1kB / 123kB   3\n")


# -- stats ---------------------------------------------------------------------------------------

def test_stats_no_stream_table_and_formats(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/stats", json_reply(STATS))
    r = berth(fake_daemon, "stats", "--no-stream", "web")
    assert (r.code, r.out) == (0, STATS_TABLE)
    assert fake_daemon.last("GET", "/containers/web/stats").arg("stream") == "0"
    r = berth(fake_daemon, "stats", "--no-stream", "--format", "{{.Name}}: {{.CPUPerc}}", "web")
    assert r.out == "web: 20.00%\n"
    r = berth(fake_daemon, "container", "stats", "--no-stream", "--format", "json", "web")
    assert r.out == ('{"BlockIO":"4.1kB / 123kB","CPUPerc":"20.00%","Container":"web",'
                     '"ID":"aaaaaaaaaaaa","MemPerc":"0.39%","MemUsage":"8MiB / 2GiB",'
                     '"Name":"web","NetIO":"1.5kB / 648B","PIDs":"3"}\n')
    r = berth(fake_daemon, "stats", "--no-stream", "--format",
              "table {{.Container}}\t{{.MemPerc}}", "web")
    assert r.out == "CONTAINER   MEM %\nweb         0.39%\n"


def test_stats_numbers_follow_docker() -> None:
    from berth.cli.commands.stats import cpu_percent, entry, memory_usage

    assert cpu_percent(STATS) == pytest.approx(20.0)
    # cgroup v1 names win; no online_cpus: the per-CPU list counts them.
    v1 = {"memory_stats": {"usage": 100, "stats": {"total_inactive_file": 30,
                                                   "inactive_file": 99}}}
    assert memory_usage(v1) == 70
    assert cpu_percent({"cpu_stats": {"cpu_usage": {"total_usage": 20, "percpu_usage": [1, 1]},
                                      "system_cpu_usage": 200},
                        "precpu_stats": {"cpu_usage": {"total_usage": 10},
                                         "system_cpu_usage": 100}}) == pytest.approx(20.0)
    row = entry("web", None, True)
    assert (row["CPUPerc"], row["MemUsage"], row["PIDs"]) == ("--", "-- / --", "--")


def test_stats_live_view_redraws_in_place(fake_daemon: FakeDaemon) -> None:
    samples = [dict(STATS), dict(STATS, pids_stats={"current": 5})]
    fake_daemon.route("GET", r"/containers/(\w+)/stats", lambda req: Reply(
        200, iter(json.dumps(s).encode() + b"\n" for s in samples),
        {"Content-Type": "application/json"}))
    r = berth(fake_daemon, "stats", "web")
    assert r.code == 0
    assert fake_daemon.last("GET", "/containers/web/stats").arg("stream") == "1"
    assert r.out.startswith("\x1b[H")
    frame = r.out.rsplit("\x1b[H", 1)[1]
    lines = STATS_TABLE.replace("   3\n", "   5\n").split("\n")
    # byte for byte what docker 28 draws once its view is running
    assert frame == "".join(line + " \x1b[K\n" for line in lines) + "\x1b[J"


def test_stats_without_names_lists_running(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/json", json_reply([{"Id": "a" * 64}]))
    fake_daemon.route("GET", r"/containers/(\w+)/stats", json_reply(STATS))
    r = berth(fake_daemon, "stats", "--no-stream", "-a")
    assert r.out == STATS_TABLE
    assert fake_daemon.last("GET", "/containers/json").arg("all") == "1"


def test_stats_missing_container(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/stats", error_reply(404, "No such container: x"))
    r = berth(fake_daemon, "stats", "--no-stream", "x")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: x\n")


# -- cp --------------------------------------------------------------------------------------------

def _stat_header(name: str, size: int, mode: int, link: str = "") -> str:
    return base64.b64encode(json.dumps({"name": name, "size": size, "mode": mode,
                                        "mtime": "2026-01-01T00:00:00Z",
                                        "linkTarget": link}).encode()).decode()


def _tar(entries: dict[str, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o640
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


DIR_MODE = (1 << 31) | 0o755


def _serve_archive(daemon: FakeDaemon, paths: dict[str, tuple[int, bytes]]) -> None:
    """``paths``: container path → (Go file mode, tar of it)."""
    def answer(req: Any) -> Reply:
        path = req.arg("path")
        if path not in paths:
            return error_reply(404, f"Could not find the file {path} in container web")
        mode, tar = paths[path]
        name = path.rstrip("/").rsplit("/", 1)[-1]
        header = {"X-Docker-Container-Path-Stat": _stat_header(name, len(tar), mode)}
        if req.method == "HEAD":
            return Reply(200, b"", header)
        return Reply(200, tar, {"Content-Type": "application/x-tar", **header})

    daemon.route("GET", r"/containers/(\w+)/archive", answer)
    daemon.route("HEAD", r"/containers/(\w+)/archive", answer)


def test_cp_out_file_to_new_name_and_into_directory(fake_daemon: FakeDaemon,
                                                     tmp_path: Path) -> None:
    _serve_archive(fake_daemon, {"/etc/hostname": (0o644, _tar({"hostname": b"box\n"}))})
    r = berth(fake_daemon, "cp", "web:/etc/hostname", str(tmp_path / "copy"))
    assert (r.code, r.err) == (0, "")
    assert (tmp_path / "copy").read_bytes() == b"box\n"
    r = berth(fake_daemon, "cp", "web:/etc/hostname", str(tmp_path))
    assert (tmp_path / "hostname").read_bytes() == b"box\n"
    assert fake_daemon.last("GET", r"/containers/web/archive").arg("path") == "/etc/hostname"
    # an existing file is replaced; a missing directory asserted by "/" is refused
    r = berth(fake_daemon, "cp", "web:/etc/hostname", str(tmp_path / "copy"))
    assert r.code == 0
    r = berth(fake_daemon, "cp", "web:/etc/hostname", str(tmp_path / "nodir") + "/")
    assert (r.code, r.err) == (1, "no such directory\n")


def test_cp_out_directory_rules(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    tar = _tar({"etc": None, "etc/a": b"1", "etc/sub": None, "etc/sub/b": b"2"})
    _serve_archive(fake_daemon, {"/etc": (DIR_MODE, tar),
                                 "/etc/.": (DIR_MODE, _tar({".": None, "./a": b"1"}))})
    berth(fake_daemon, "cp", "web:/etc", str(tmp_path / "new"))  # new name: renamed
    assert (tmp_path / "new" / "sub" / "b").read_bytes() == b"2"
    berth(fake_daemon, "cp", "web:/etc", str(tmp_path / "new"))  # existing dir: inside it
    assert (tmp_path / "new" / "etc" / "a").read_bytes() == b"1"
    (tmp_path / "file").write_text("x")
    r = berth(fake_daemon, "cp", "web:/etc", str(tmp_path / "file"))
    assert (r.code, r.err) == (1, "cannot copy directory\n")
    berth(fake_daemon, "cp", "web:/etc/.", str(tmp_path / "contents"))
    assert (tmp_path / "contents" / "a").read_bytes() == b"1"


def test_cp_out_to_stdout_is_the_tar(fake_daemon: FakeDaemon) -> None:
    tar = _tar({"hostname": b"box\n"})
    _serve_archive(fake_daemon, {"/etc/hostname": (0o644, tar)})
    r = berth(fake_daemon, "cp", "web:/etc/hostname", "-")
    assert r.out.encode() == tar


def test_cp_out_refuses_escaping_entries(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    _serve_archive(fake_daemon, {"/x": (0o644, _tar({"../../evil": b"x"}))})
    dest = tmp_path / "a" / "b"
    dest.mkdir(parents=True)
    r = berth(fake_daemon, "cp", "web:/x", str(dest))
    assert r.code == 1
    assert not (tmp_path / "evil").exists()


def test_cp_out_missing_path(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    _serve_archive(fake_daemon, {})
    r = berth(fake_daemon, "cp", "web:/nope", str(tmp_path))
    assert (r.code, r.err) == (1, "Error response from daemon: Could not find the file /nope "
                                  "in container web\n")


def test_cp_follow_link_renames_to_the_link(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    link_mode = (1 << 27) | 0o777

    def answer(req: Any) -> Reply:
        if req.arg("path") == "/link":
            return Reply(200, b"", {"X-Docker-Container-Path-Stat":
                                    _stat_header("link", 7, link_mode, "target")})
        tar = _tar({"target": b"data"})
        return Reply(200, tar, {"X-Docker-Container-Path-Stat":
                                _stat_header("target", 4, 0o644)})

    fake_daemon.route("HEAD", r"/containers/(\w+)/archive", answer)
    fake_daemon.route("GET", r"/containers/(\w+)/archive", answer)
    r = berth(fake_daemon, "cp", "-L", "web:/link", str(tmp_path))
    assert r.code == 0, r.err
    assert (tmp_path / "link").read_bytes() == b"data"
    assert fake_daemon.last("GET", r"/containers/web/archive").arg("path") == "/target"


def _uploads(daemon: FakeDaemon) -> list[tuple[str | None, dict[str, bytes | None]]]:
    seen: list[tuple[str | None, dict[str, bytes | None]]] = []

    def put(req: Any) -> Reply:
        entries: dict[str, bytes | None] = {}
        with tarfile.open(fileobj=io.BytesIO(req.body)) as tar:
            for member in tar:
                f = tar.extractfile(member) if member.isfile() else None
                entries[member.name] = f.read() if f else None
        seen.append((req.arg("path"), entries))
        return Reply(200)

    daemon.route("PUT", r"/containers/(\w+)/archive", put)
    return seen


def test_cp_in_file_and_directory(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    _serve_archive(fake_daemon, {"/tmp": (DIR_MODE, b""), "/etc/motd": (0o644, b"")})
    uploads = _uploads(fake_daemon)
    src = tmp_path / "hello.txt"
    src.write_text("hi")
    assert berth(fake_daemon, "cp", str(src), "web:/tmp").code == 0  # into a directory
    assert berth(fake_daemon, "cp", str(src), "web:/etc/motd").code == 0  # over a file
    assert berth(fake_daemon, "cp", str(src), "web:/tmp/new.txt").code == 0  # a new name
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("f")
    assert berth(fake_daemon, "cp", "-a", str(tree), "web:/opt").code == 0  # new dir name
    assert berth(fake_daemon, "cp", str(tree) + "/.", "web:/tmp").code == 0  # contents
    assert uploads[0] == ("/tmp", {"hello.txt": b"hi"})
    assert uploads[1] == ("/etc", {"motd": b"hi"})
    assert uploads[2] == ("/tmp", {"new.txt": b"hi"})
    assert uploads[3] == ("/", {"opt": None, "opt/sub": None, "opt/sub/f": b"f"})
    assert uploads[4][0] == "/tmp" and uploads[4][1]["./sub/f"] == b"f"
    puts = [r for r in fake_daemon.requests if r.method == "PUT"]
    assert [(p.arg("noOverwriteDirNonDir"), p.arg("copyUIDGID")) for p in puts] == [
        ("1", None), ("1", None), ("1", None), ("1", "1"), ("1", None)]
    assert puts[0].headers["content-type"] == "application/x-tar"


def test_cp_in_refusals(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    _serve_archive(fake_daemon, {"/etc/motd": (0o644, b""), "/dev/null": ((1 << 26), b"")})
    _uploads(fake_daemon)
    tree = tmp_path / "tree"
    tree.mkdir()
    r = berth(fake_daemon, "cp", str(tree), "web:/etc/motd")
    assert (r.code, r.err) == (1, "cannot copy directory\n")
    r = berth(fake_daemon, "cp", str(tmp_path / "missing"), "web:/tmp")
    assert (r.code, r.err) == (1, f"lstat {tmp_path}/missing: no such file or directory\n")
    r = berth(fake_daemon, "cp", "-", "web:/etc/motd", stdin=b"tar")
    assert (r.code, r.err) == (1, 'destination "web:/etc/motd" must be a directory\n')
    r = berth(fake_daemon, "cp", str(tree), "web:/dev/null")
    assert r.err == ('destination "web:/dev/null" must be a directory or a regular file\n')


def test_cp_in_from_stdin(fake_daemon: FakeDaemon) -> None:
    _serve_archive(fake_daemon, {"/tmp": (DIR_MODE, b"")})
    uploads = _uploads(fake_daemon)
    r = berth(fake_daemon, "cp", "-", "web:/tmp", stdin=_tar({"x": b"1"}))
    assert r.code == 0
    assert uploads == [("/tmp", {"x": b"1"})]


@pytest.mark.parametrize(("args", "message"), [
    (("a:/x", "b:/y"), "copying between containers is not supported"),
    (("/x", "./y"), "must specify at least one container source"),
    (("web:", "/y"), "source can not be empty"),
])
def test_cp_argument_errors(fake_daemon: FakeDaemon, args: tuple[str, str],
                            message: str) -> None:
    r = berth(fake_daemon, "cp", *args)
    assert (r.code, r.err) == (1, message + "\n")


# -- top / port / diff / rename / pause / update ------------------------------------------------

def test_top_table(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/top", json_reply({
        "Titles": ["UID", "PID", "CMD"], "Processes": [["root", "12345", "sleep 100"]]}))
    r = berth(fake_daemon, "top", "web", "-eo", "pid,comm")
    assert r.out == ("UID                 PID                 CMD\n"
                     "root                12345               sleep 100\n")
    assert fake_daemon.last("GET", "/containers/web/top").arg("ps_args") == "-eo pid,comm"


def test_port_all_and_one(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/json", json_reply({"NetworkSettings": {"Ports": {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
        "443/tcp": None, "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}}}))
    r = berth(fake_daemon, "port", "web")
    assert r.out == "53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n"
    assert berth(fake_daemon, "port", "web", "80/tcp").out == "0.0.0.0:8080\n[::]:8080\n"
    r = berth(fake_daemon, "port", "web", "443")
    assert (r.code, r.err) == (1, "Error: No public port '443' published for web\n")


def test_diff_kinds(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/changes", json_reply([
        {"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/x", "Kind": 1}, {"Path": "/etc/motd",
                                                                     "Kind": 2}]))
    assert berth(fake_daemon, "diff", "web").out == "C /tmp\nA /tmp/x\nD /etc/motd\n"


def test_rename_pause_unpause(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", r"/containers/web/rename", Reply(204))
    fake_daemon.route("POST", r"/containers/(\w+)/(un)?pause", lambda req: Reply(204)
                      if req.groups[0] == "web" else error_reply(404, "No such container: x"))
    assert berth(fake_daemon, "rename", "web", "new") == berth(fake_daemon, "rename", "web",
                                                               "new")
    assert fake_daemon.last("POST", "/containers/web/rename").arg("name") == "new"
    r = berth(fake_daemon, "rename", "nope", "new")
    assert (r.code, r.err) == (1, "Error response from daemon: page not found: POST "
                                  "/containers/nope/rename\nError: failed to rename container "
                                  "named nope\n")
    r = berth(fake_daemon, "pause", "web", "x")
    assert (r.code, r.out, r.err) == (1, "web\n", "Error response from daemon: No such "
                                                   "container: x\n")
    assert berth(fake_daemon, "container", "unpause", "web").out == "web\n"


def test_update_body_as_docker_sends_it(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", r"/containers/(\w+)/update", json_reply({"Warnings": ["w1"]}))
    r = berth(fake_daemon, "update", "--memory", "256m", "--cpus", "0.5", "--pids-limit", "50",
              "--restart", "on-failure:2", "--memory-swap", "-1", "-c", "100",
              "--blkio-weight", "20", "--cpuset-cpus", "0", "web", "db")
    assert (r.code, r.out) == (0, "web\ndb\nw1\nw1\n")
    body = fake_daemon.last("POST", "/containers/db/update").json()
    assert body == {
        "BlkioWeight": 20, "CpusetCpus": "0", "CpusetMems": "", "CpuShares": 100,
        "Memory": 268435456, "MemoryReservation": 0, "MemorySwap": -1, "KernelMemory": 0,
        "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
        "NanoCpus": 500000000, "PidsLimit": 50,
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}
    r = berth(fake_daemon, "update", "web")
    assert (r.code, r.err) == (1, "you must provide one or more flags when using this "
                                  "command\n")
    r = berth(fake_daemon, "update", "--cpus", "x", "web")
    assert r.code == 125
    assert r.err.startswith('invalid argument "x" for "--cpus" flag: failed to parse x as a '
                            "rational number\n")

    r = berth(fake_daemon, "update", "--pids-limit", "0", "--cpuset-mems", "", "web")
    assert r.code == 0
    body = fake_daemon.last("POST", "/containers/web/update").json()
    assert "PidsLimit" not in body and body["CpusetMems"] == ""
    r = berth(fake_daemon, "update", "--shm-size", "1m", "web")  # a run/create flag only
    assert (r.code, r.err.splitlines()[0]) == (125, "unknown flag: --shm-size")


def _help(fake_daemon: FakeDaemon, verb: str) -> dict[str, str]:
    """A verb's help, flag column -> text."""
    lines = berth(fake_daemon, verb, "--help").out.split("Options:\n", 1)[1].splitlines()
    rows = (line.strip().split("   ", 1) for line in lines if line.startswith("  "))
    return {flag: text.strip() for flag, text in rows}


def test_update_takes_run_resource_flags_in_dockers_update_wording(
        fake_daemon: FakeDaemon) -> None:
    run, update = _help(fake_daemon, "run"), _help(fake_daemon, "update")
    shared = set(run) & set(update)
    assert {"-m, --memory bytes", "-c, --cpu-shares int", "--cpus decimal",
            "--memory-swap bytes", "--blkio-weight uint16", "--restart string"} <= shared
    assert "--shm-size bytes" not in update and "--memory-swappiness int" not in update
    differ = {flag for flag in shared if run[flag] != update[flag]}
    assert differ == {"--cpu-rt-period int", "--cpu-rt-runtime int", "--memory-swap bytes",
                      "--restart string"}
    assert update["--cpu-rt-period int"] == "Limit the CPU real-time period in microseconds"
    assert run["--memory-swap bytes"] == ("Swap limit equal to memory plus swap: '-1' to enable "
                                          "unlimited swap")


# -- events ----------------------------------------------------------------------------------------

EVENTS = [
    {"Type": "container", "Action": "start", "Actor": {"ID": "a" * 64, "Attributes": {
        "name": "web", "image": "busybox"}}, "scope": "local", "time": 1700000000,
     "timeNano": 1700000000123456789},
    {"Type": "volume", "Action": "create", "Actor": {"ID": "v1", "Attributes": {
        "driver": "local"}}, "scope": "local", "time": 1700000001,
     "timeNano": 1700000001000000000},
]


def test_events_pretty_filters_and_times(fake_daemon: FakeDaemon, utc: float) -> None:
    fake_daemon.route("GET", "/events", Reply(200, b"".join(
        encode_json_message(e) for e in EVENTS), {"Content-Type": "application/json"}))
    before = int(time.time())
    r = berth(fake_daemon, "events", "--since", "1h", "--until", "2023-11-14T22:13:30Z",
              "-f", "type=container", "-f", "event=start")
    assert r.out == (
        "2023-11-14T22:13:20.123456789Z container start " + "a" * 64 +
        " (image=busybox, name=web)\n"
        "2023-11-14T22:13:21.000000000Z volume create v1 (driver=local)\n")
    req = fake_daemon.last("GET", "/events")
    assert before - 3600 <= int(req.arg("since") or 0) <= int(time.time()) - 3600
    assert req.arg("until") == "1700000010.000000000"
    assert json.loads(req.arg("filters") or "") == {"event": {"start": True},
                                                    "type": {"container": True}}
    r = berth(fake_daemon, "system", "events", "--format", "{{.Type}}/{{.Action}}")
    assert r.out == "container/start\nvolume/create\n"
    r = berth(fake_daemon, "events", "--format", "json")
    assert [json.loads(line) for line in r.out.splitlines()] == EVENTS
    # byte for byte as docker 28 prints it: Go's field order, labels sorted
    assert r.out.splitlines()[0] == (
        '{"Type":"container","Action":"start","Actor":{"ID":"' + "a" * 64 + '","Attributes":'
        '{"image":"busybox","name":"web"}},"scope":"local","time":1700000000,'
        '"timeNano":1700000000123456789}')


# -- commit / export / save ------------------------------------------------------------------------

def test_commit_query(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/commit", json_reply({"Id": "sha256:" + "c" * 64}, 201))
    r = berth(fake_daemon, "commit", "-a", "me", "-m", "msg", "-c", 'CMD ["sh"]', "-c",
              "ENV A=1", "-p=false", "web", "repo/x:1")
    assert (r.code, r.out) == (0, "sha256:" + "c" * 64 + "\n")
    req = fake_daemon.last("POST", "/commit")
    assert req.query == {"container": ["web"], "repo": ["docker.io/repo/x"], "tag": ["1"],
                         "comment": ["msg"], "author": ["me"], "pause": ["0"],
                         "changes": ['CMD ["sh"]', "ENV A=1"]}
    berth(fake_daemon, "container", "commit", "web")
    assert fake_daemon.last("POST", "/commit").query == {"container": ["web"]}
    r = berth(fake_daemon, "commit", "web", "x@sha256:" + "1" * 64)
    assert (r.code, r.err) == (1, "refusing to create a tag with a digest reference\n")


def test_export_and_save_to_stdout_and_file(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    fake_daemon.route("GET", r"/containers/(\w+)/export",
                      lambda req: Reply(200, iter([b"ab", b"cd"])))
    fake_daemon.route("GET", "/images/get", Reply(200, b"image tar"))
    assert berth(fake_daemon, "export", "web").out == "abcd"
    out = tmp_path / "fs.tar"
    assert berth(fake_daemon, "export", "-o", str(out), "web").out == ""
    assert out.read_bytes() == b"abcd"
    r = berth(fake_daemon, "save", "-o", str(tmp_path / "img.tar"), "busybox", "alpine:1")
    assert r.code == 0
    assert (tmp_path / "img.tar").read_bytes() == b"image tar"
    assert fake_daemon.last("GET", "/images/get").query == {"names": ["busybox", "alpine:1"]}
    assert berth(fake_daemon, "image", "save", "busybox").out == "image tar"
    assert [p.name for p in tmp_path.iterdir()] != []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".berth")]
    assert (tmp_path / "img.tar").stat().st_mode & 0o777 == 0o600  # as docker leaves it


def test_save_failure_leaves_no_file(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    fake_daemon.route("GET", "/images/get", error_reply(404, "No such image: nope"))
    r = berth(fake_daemon, "save", "-o", str(tmp_path / "x.tar"), "nope")
    assert (r.code, r.err) == (1, "Error response from daemon: No such image: nope\n")
    assert list(tmp_path.iterdir()) == []


# -- prune -----------------------------------------------------------------------------------------

def test_container_prune_prompt_and_report(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/containers/prune", json_reply(
        {"ContainersDeleted": ["a" * 64, "d" * 64], "SpaceReclaimed": 12345}))
    warning = ("WARNING! This will remove all stopped containers.\n"
               "Are you sure you want to continue? [y/N] ")
    r = berth(fake_daemon, "container", "prune", stdin=b"n\n")
    assert (r.code, r.out) == (0, warning)
    assert fake_daemon.calls() == []
    r = berth(fake_daemon, "container", "prune", "--filter", "until=1h", stdin=b"y\n")
    assert r.out == (warning + "Deleted Containers:\n" + "a" * 64 + "\n" + "d" * 64 +
                     "\n\nTotal reclaimed space: 12.35kB\n")
    req = fake_daemon.last("POST", "/containers/prune")
    assert json.loads(req.arg("filters") or "") == {"until": {"1h": True}}


def test_image_and_volume_prune(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/images/prune", json_reply({"ImagesDeleted": [
        {"Untagged": "x:1"}, {"Deleted": "sha256:" + "c" * 64}], "SpaceReclaimed": 12170000}))
    fake_daemon.route("POST", "/volumes/prune", json_reply({"VolumesDeleted": None,
                                                            "SpaceReclaimed": 0}))
    r = berth(fake_daemon, "image", "prune", "-f")
    assert r.out == ("Deleted Images:\nuntagged: x:1\ndeleted: sha256:" + "c" * 64 +
                     "\n\nTotal reclaimed space: 12.17MB\n")
    assert fake_daemon.last("POST", "/images/prune").arg("filters") == \
        '{"dangling":{"true":true}}'
    r = berth(fake_daemon, "image", "prune", "-a", stdin=b"n\n")
    assert r.out.startswith("WARNING! This will remove all images without at least one "
                            "container associated to them.\n")
    assert berth(fake_daemon, "volume", "prune", "-f", "-a").out == "Total reclaimed space: 0B\n"
    assert fake_daemon.last("POST", "/volumes/prune").arg("filters") == '{"all":{"true":true}}'


def test_system_prune_calls_each_prune(fake_daemon: FakeDaemon) -> None:
    for path in ("/containers/prune", "/images/prune", "/volumes/prune"):
        fake_daemon.route("POST", path, json_reply({"SpaceReclaimed": 1000}))
    r = berth(fake_daemon, "system", "prune", "--volumes", stdin=b"y\n")
    assert r.code == 0
    assert r.out == ("WARNING! This will remove:\n  - all stopped containers\n"
                     "  - all networks not used by at least one container\n"
                     "  - all anonymous volumes not used by at least one container\n"
                     "  - all dangling images\n  - unused build cache\n\n"
                     "Are you sure you want to continue? [y/N] Total reclaimed space: 0B\n")
    assert fake_daemon.calls() == ["POST /containers/prune", "POST /networks/prune",
                                   "POST /volumes/prune", "POST /images/prune",
                                   "POST /build/prune"]


# -- system df -------------------------------------------------------------------------------------

def _df() -> dict[str, Any]:
    now = int(time.time())
    return {
        "LayersSize": 16430000,
        "Images": [{"Id": "sha256:" + "b" * 64, "Containers": 1, "Size": 4260000,
                    "SharedSize": 0, "RepoTags": ["busybox:latest"], "Created": now - 100},
                   {"Id": "sha256:" + "c" * 64, "Containers": 0, "Size": 12170000,
                    "SharedSize": 0, "RepoTags": ["x:1"], "Created": now - 100}],
        "Containers": [{"Id": "a" * 64, "SizeRw": 1200, "State": "running"},
                       {"Id": "d" * 64, "SizeRw": 3400, "State": "exited"}],
        "Volumes": [{"Name": "v1", "UsageData": {"Size": 5000, "RefCount": 1}},
                    {"Name": "v2", "UsageData": {"Size": 7000, "RefCount": 0}}],
        "BuildCache": [],
    }


def test_system_df(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/system/df", json_reply(_df()))
    r = berth(fake_daemon, "system", "df")
    assert r.out == ("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"
                     "Images          2         1         16.43MB   12.17MB (74%)\n"
                     "Containers      2         1         4.6kB     3.4kB (73%)\n"
                     "Local Volumes   2         1         12kB      7kB (58%)\n"
                     "Build Cache     0         0         0B        0B\n")
    r = berth(fake_daemon, "system", "df", "--format", "json")
    assert r.out.splitlines()[0] == ('{"Active":"1","Reclaimable":"12.17MB (74%)",'
                                     '"Size":"16.43MB","TotalCount":"2","Type":"Images"}')
    r = berth(fake_daemon, "system", "df", "-v")
    assert r.out.startswith("Images space usage:\n\nREPOSITORY")


# -- volumes ---------------------------------------------------------------------------------------

def test_volume_create_ls_inspect_rm(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/volumes/create", lambda req: json_reply(
        {"Name": req.json()["Name"] or "f" * 64, "Driver": "local"}, 201))
    fake_daemon.route("GET", "/volumes", json_reply({"Volumes": [
        {"Name": "v10", "Driver": "local", "Scope": "local"},
        {"Name": "v2", "Driver": "local", "Scope": "local"}], "Warnings": None}))
    fake_daemon.route("GET", r"/volumes/([^/]+)", lambda req: json_reply(
        {"Name": req.groups[0], "Driver": "local"}) if req.groups[0] != "nope"
        else error_reply(404, "get nope: no such volume"))
    fake_daemon.route("DELETE", r"/volumes/([^/]+)", lambda req: Reply(204)
                      if req.groups[0] != "nope" else error_reply(404, "get nope: no such "
                                                                       "volume"))
    r = berth(fake_daemon, "volume", "create", "--label", "a=b", "-o", "type=tmpfs", "v1")
    assert (r.code, r.out) == (0, "v1\n")
    assert fake_daemon.last("POST", "/volumes/create").json() == {
        "Driver": "local", "DriverOpts": {"type": "tmpfs"}, "Labels": {"a": "b"}, "Name": "v1"}
    assert berth(fake_daemon, "volume", "create").out == "f" * 64 + "\n"
    assert berth(fake_daemon, "volume", "ls").out == ("DRIVER    VOLUME NAME\n"
                                                      "local     v2\nlocal     v10\n")
    assert berth(fake_daemon, "volume", "list", "-q").out == "v2\nv10\n"
    berth(fake_daemon, "volume", "ls", "-f", "dangling=true")
    assert fake_daemon.last("GET", "/volumes").arg("filters") == '{"dangling":{"true":true}}'
    r = berth(fake_daemon, "volume", "inspect", "v1", "nope")
    assert (r.code, json.loads(r.out)) == (1, [{"Name": "v1", "Driver": "local"}])
    assert r.err == "Error response from daemon: get nope: no such volume\n"
    assert berth(fake_daemon, "volume", "inspect", "-f", "{{.Driver}}", "v1").out == "local\n"
    r = berth(fake_daemon, "volume", "rm", "-f", "v1", "nope")
    assert (r.code, r.out) == (1, "v1\n")
    assert fake_daemon.last("DELETE", "/volumes/v1").arg("force") == "1"


# -- management forms ----------------------------------------------------------------------------

def test_management_forms_reach_the_verbs(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("GET", "/containers/json", json_reply([]))
    fake_daemon.route("DELETE", r"/images/(.+)", json_reply([{"Untagged": "a:1"}]))
    fake_daemon.route("POST", r"/containers/(\w+)/wait", json_reply({"StatusCode": 3}))
    assert berth(fake_daemon, "container", "ls", "-q").code == 0
    assert berth(fake_daemon, "image", "rm", "a:1").out == "Untagged: a:1\n"
    assert berth(fake_daemon, "container", "wait", "web").out == "3\n"
    r = berth(fake_daemon, "volume", "nope")
    assert (r.code, r.err) == (1, "berth: unknown command: berth volume nope\n\n"
                                  "Run 'berth volume --help' for more information\n")
    r = berth(fake_daemon, "volume")
    assert r.out.startswith("Usage:  berth volume COMMAND\n\nManage volumes\n\nCommands:\n"
                            "  create      Create a volume\n")


def test_images_digests_and_filters(fake_daemon: FakeDaemon, utc: float) -> None:
    fake_daemon.route("GET", "/images/json", json_reply([
        {"Id": "sha256:" + "b" * 64, "RepoTags": ["busybox:latest"],
         "RepoDigests": ["busybox@sha256:" + "d" * 64], "Created": int(time.time()) - 30,
         "Size": 4261550}]))
    r = berth(fake_daemon, "images", "--digests", "-f", "dangling=false", "busybox")
    assert r.out.splitlines() == [
        "REPOSITORY   TAG       DIGEST" + " " * 68 + "IMAGE ID       CREATED          SIZE",
        "busybox      latest    sha256:" + "d" * 64 + "   bbbbbbbbbbbb   30 seconds ago   "
        "4.26MB"]
    filters = json.loads(fake_daemon.last("GET", "/images/json").arg("filters") or "")
    assert filters == {"dangling": {"false": True}, "reference": {"busybox": True}}
    assert CID  # the shared id keeps its import used


def test_ps_and_images_format(fake_daemon: FakeDaemon, utc: float) -> None:
    now = int(utc)
    fake_daemon.route("GET", "/containers/json", json_reply([{
        "Id": "a" * 64, "Names": ["/web"], "Image": "busybox", "Command": "sleep 100",
        "Created": 1700000000, "Ports": [], "Labels": {"a": "1"}, "State": "running",
        "Status": "Up 2 seconds", "SizeRw": 12,
        "Mounts": [{"Name": "vol1", "Source": "/var/lib/x", "Driver": "local"}],
        "NetworkSettings": {"Networks": {"bridge": {}}}}]))
    fake_daemon.route("GET", "/images/json", json_reply([{
        "Id": "sha256:" + "b" * 64, "RepoTags": ["busybox:latest"],
        "RepoDigests": ["busybox@sha256:" + "d" * 64], "Created": now - 30, "Size": 4261550,
        "SharedSize": -1, "Containers": -1}]))
    r = berth(fake_daemon, "ps", "--format", "{{.ID}} {{.Names}} {{.Labels}} {{.State}} "
              "{{.CreatedAt}} {{.Mounts}} {{.Networks}} {{.LocalVolumes}}")
    assert r.out == "aaaaaaaaaaaa web a=1 running 2023-11-14 22:13:20 +0000 UTC vol1 bridge 1\n"
    r = berth(fake_daemon, "ps", "--format", "json")
    assert json.loads(r.out)["Platform"] is None and '"Command":"\\"sleep 100\\""' in r.out
    r = berth(fake_daemon, "container", "ls", "--format", "table {{.Names}}\t{{.Status}}")
    assert r.out == "NAMES     STATUS\nweb       Up 2 seconds\n"
    r = berth(fake_daemon, "images", "--format", "json")
    assert json.loads(r.out) == {
        "Containers": "N/A", "CreatedAt": json.loads(r.out)["CreatedAt"],
        "CreatedSince": "30 seconds ago", "Digest": "<none>", "ID": "bbbbbbbbbbbb",
        "Repository": "busybox", "SharedSize": "N/A", "Size": "4.26MB", "Tag": "latest",
        "UniqueSize": "N/A", "VirtualSize": "4.262MB"}
    assert "\\u003cnone\\u003e" in r.out  # Go's JSON escaping
    r = berth(fake_daemon, "images", "--format", "table {{.Repository}}\t{{.Digest}}")
    assert r.out == "REPOSITORY   DIGEST\nbusybox      sha256:" + "d" * 64 + "\n"


def test_history_format_and_platform(fake_daemon: FakeDaemon, utc: float) -> None:
    fake_daemon.route("GET", "/images/busybox/history", json_reply([
        {"Id": "sha256:" + "b" * 64, "Created": 1700000000,
         "CreatedBy": '/bin/sh -c #(nop)  CMD ["sh"]\tx', "Size": 0, "Comment": ""},
        {"Id": "<missing>", "Created": 1699990000, "CreatedBy": "ADD file:abc in / ",
         "Size": 4261550, "Comment": "imported"}]))
    r = berth(fake_daemon, "history", "--format", "{{.ID}} {{.CreatedAt}} {{.Size}}", "busybox")
    assert r.out == ("bbbbbbbbbbbb 2023-11-14T22:13:20Z 0B\n"
                     "<missing> 2023-11-14T19:26:40Z 4.26MB\n")
    r = berth(fake_daemon, "history", "-H=false", "--format", "{{.Size}} {{.CreatedSince}}",
              "busybox")
    assert r.out == "0 2023-11-14T22:13:20Z\n4261550 2023-11-14T19:26:40Z\n"
    r = berth(fake_daemon, "image", "history", "--format", "json", "busybox")
    assert r.out.splitlines()[1] == (
        '{"Comment":"imported","CreatedAt":"2023-11-14T19:26:40Z","CreatedBy":"ADD file:abc in '
        '/ ","CreatedSince":"3 years ago","ID":"\\u003cmissing\\u003e","Size":"4.26MB"}')
    for verb in ("history", "save"):
        r = berth(fake_daemon, verb, "--platform", "linux/amd64", "busybox")
        assert (r.code, r.err) == (1, '"--platform" requires API version 1.48, but the berth '
                                      "daemon API version is 1.44\n")


def test_cp_reports_on_a_terminal(fake_daemon: FakeDaemon, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from berth.cli.context import Context

    monkeypatch.setattr(Context, "is_tty", lambda self, stream: stream is self.stderr)
    tar = _tar({"hostname": b"box\n"})
    _serve_archive(fake_daemon, {"/etc/hostname": (0o644, tar), "/tmp": (DIR_MODE, b"")})
    _uploads(fake_daemon)
    r = berth(fake_daemon, "cp", "web:/etc/hostname", str(tmp_path))
    # docker counts the tar bytes, 3 significant digits (Python's tarfile pads to 10 KiB)
    assert r.err == (f"\x1b7Preparing to copy...\x1b8\x1b[2KSuccessfully copied 10.2kB to "
                     f"{tmp_path}\n")
    r = berth(fake_daemon, "cp", "-q", str(tmp_path / "hostname"), "web:/tmp")
    assert (r.code, r.err) == (0, "")
    r = berth(fake_daemon, "cp", str(tmp_path / "hostname"), "web:/tmp")
    assert r.err.endswith("Successfully copied 2.05kB to web:/tmp\n")  # as Go writes it


def test_cp_out_never_touches_a_path_outside(fake_daemon: FakeDaemon, tmp_path: Path) -> None:
    """A hostile archive may name a host file or write through a link: refused, untouched."""
    victim = tmp_path / "victim"
    victim.write_text("keep")
    dest = tmp_path / "dest"
    dest.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("x")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
        tar.addfile(link)
        data = b"pwned"
        for name in ("x/victim", "../victim"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    for entries in (buf.getvalue(),):
        _serve_archive(fake_daemon, {"/d": (DIR_MODE, entries)})
        r = berth(fake_daemon, "cp", "web:/d", str(dest))
        assert r.code == 1 and "refusing to extract" in r.err
    assert victim.read_text() == "keep"
    _serve_archive(fake_daemon, {"/d": (DIR_MODE, _tar({"../victim": b"pwned"}))})
    assert berth(fake_daemon, "cp", "web:/d", str(dest)).code == 1
    assert victim.read_text() == "keep"


def test_stats_live_follows_container_events(fake_daemon: FakeDaemon) -> None:
    """No names: containers join as their ``start`` event arrives and leave when they die."""
    import os
    import subprocess
    import sys

    started = dict(STATS, id="b" * 64, name="/late")

    def events(req: Any) -> Reply:
        def body() -> Iterator[bytes]:
            time.sleep(0.3)
            yield encode_json_message({"Type": "container", "Action": "start",
                                       "Actor": {"ID": "b" * 64}})
            time.sleep(1.2)
            yield encode_json_message({"Type": "container", "Action": "die",
                                       "Actor": {"ID": "a" * 64}})
            time.sleep(5)
        return Reply(200, body(), {"Content-Type": "application/json"})

    def stats(req: Any) -> Reply:
        sample = started if req.groups[0] == "b" * 64 else STATS

        def body() -> Iterator[bytes]:
            yield json.dumps(sample).encode() + b"\n"
            time.sleep(5)
        return Reply(200, body(), {"Content-Type": "application/json"})

    fake_daemon.route("GET", "/events", events)
    fake_daemon.route("GET", "/containers/json", json_reply([{"Id": "a" * 64}]))
    fake_daemon.route("GET", r"/containers/(\w+)/stats", stats)
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "berth.cli.main", "-H", fake_daemon.host,
                             "stats", "--format", "{{.Name}}"], stdout=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(repo)), cwd=repo)
    time.sleep(3)
    proc.kill()
    out, _ = proc.communicate()
    frames = [f.decode() for f in out.split(b"\x1b[H") if f]
    assert any("web \x1b[K\nlate \x1b[K\n" in f for f in frames)
    assert frames[-1] == "late \x1b[K\n \x1b[K\n\x1b[J"
    assert fake_daemon.last("GET", "/events").arg("filters") == '{"type":{"container":true}}'
