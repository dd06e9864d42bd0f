"""`berth` against berthd: exec, cp, stats, top, events, update, rename, pause, port, prune,
diff, export, commit, save, system df, volumes and a terminal session through a pty."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_berth_cli import BERTH, berth, ok
from tests.pty_terminal import PtyTerminal

pytestmark = pytest.mark.root


def _sleeper(daemon: Berthd, *flags: str) -> str:
    return ok(daemon, "run", "-d", *flags, "busybox", "sleep", "300").strip()


def _until(check: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    assert check()  # type: ignore[operator]


def test_exec_exit_codes_stdin_env_and_workdir(berthd: Berthd) -> None:
    cid = _sleeper(berthd, "--name", "box")
    assert ok(berthd, "exec", "box", "echo", "hi") == "hi\n"
    assert berth(berthd, "exec", "box", "sh", "-c", "exit 6").returncode == 6
    assert ok(berthd, "exec", "-e", "A=b", "-w", "/tmp", "box", "sh", "-c",
              "echo $A; pwd") == "b\n/tmp\n"
    assert ok(berthd, "exec", "-i", "box", "cat", input=b"from stdin") == "from stdin"
    assert ok(berthd, "exec", "-u", "1000:1000", "box", "id", "-u") == "1000\n"
    assert ok(berthd, "exec", "-d", "box", "sleep", "1") == ""
    missing = berth(berthd, "exec", "nope", "true")
    assert missing.returncode == 1 and b"No such container" in missing.stderr
    ok(berthd, "rm", "-f", cid)


def test_cp_both_ways(berthd: Berthd, tmp_path: Path) -> None:
    _sleeper(berthd, "--name", "box")
    src = tmp_path / "hello.txt"
    src.write_text("hello\n")
    ok(berthd, "cp", str(src), "box:/tmp/")
    ok(berthd, "cp", str(src), "box:/tmp/renamed.txt")
    assert ok(berthd, "exec", "box", "cat", "/tmp/hello.txt", "/tmp/renamed.txt") == \
        "hello\nhello\n"
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("f\n")
    ok(berthd, "cp", str(tree), "box:/tmp/newtree")
    assert ok(berthd, "exec", "box", "cat", "/tmp/newtree/sub/f") == "f\n"
    ok(berthd, "exec", "box", "sh", "-c", "mkdir -p /data/d && echo in > /data/d/x && "
                                         "ln -s d/x /data/link")
    out = tmp_path / "out"
    out.mkdir()
    ok(berthd, "cp", "box:/data/d", str(out))
    assert (out / "d" / "x").read_text() == "in\n"
    ok(berthd, "cp", "box:/data/d/x", str(out / "copy"))
    assert (out / "copy").read_text() == "in\n"
    ok(berthd, "cp", "box:/data/link", str(out / "asis"))
    assert os.readlink(out / "asis") == "d/x"
    ok(berthd, "cp", "-L", "box:/data/link", str(out / "followed"))
    assert (out / "followed").read_text() == "in\n"
    tar = berth(berthd, "cp", "box:/data/d", "-")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        assert sorted(archive.getnames()) == ["d", "d/x"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        info = tarfile.TarInfo("piped")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"tar"))
    ok(berthd, "cp", "-", "box:/tmp", input=buf.getvalue())
    assert ok(berthd, "exec", "box", "cat", "/tmp/piped") == "tar"
    missing = berth(berthd, "cp", "box:/nope", str(out))
    assert missing.returncode == 1 and b"Error response from daemon" in missing.stderr


def test_stats_top_and_update(berthd: Berthd) -> None:
    _sleeper(berthd, "--name", "box", "--memory", "64m")
    table = ok(berthd, "stats", "--no-stream", "box").splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/",
                                "LIMIT", "MEM", "%", "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    assert " box " in table[1]
    assert "/ 64MiB" in table[1]
    pids = ok(berthd, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "box")
    assert pids.startswith("box ")
    top = ok(berthd, "top", "box").splitlines()
    assert "PID" in top[0] and any("sleep 300" in line for line in top[1:])
    assert ok(berthd, "update", "--memory", "128m", "--memory-swap", "256m", "box") == "box\n"
    info = json.loads(ok(berthd, "inspect", "box"))[0]
    assert info["HostConfig"]["Memory"] == 128 << 20
    assert "/ 128MiB" in ok(berthd, "stats", "--no-stream", "box")


def test_rename_pause_restart_wait_and_diff(berthd: Berthd) -> None:
    cid = _sleeper(berthd, "--name", "old")
    ok(berthd, "rename", "old", "new")
    assert json.loads(ok(berthd, "inspect", cid))[0]["Name"] == "/new"
    assert ok(berthd, "pause", "new") == "new\n"
    assert json.loads(ok(berthd, "inspect", "new"))[0]["State"]["Paused"] is True
    assert ok(berthd, "unpause", "new") == "new\n"
    assert ok(berthd, "restart", "-t", "1", "new") == "new\n"
    assert json.loads(ok(berthd, "inspect", "new"))[0]["State"]["Running"] is True
    ok(berthd, "exec", "new", "sh", "-c", "echo x > /tmp/file; rm /etc/motd 2>/dev/null; true")
    diff = ok(berthd, "diff", "new").splitlines()
    assert "A /tmp/file" in diff
    quick = ok(berthd, "run", "-d", "busybox", "sh", "-c", "sleep 0.2; exit 4").strip()
    assert ok(berthd, "wait", quick) == "4\n"


def test_events_since_until(berthd: Berthd) -> None:
    start = time.time()
    ok(berthd, "run", "--rm", "--name", "evt", "busybox", "true")
    time.sleep(0.1)
    out = ok(berthd, "events", "--since", str(int(start) - 1), "--until", str(int(time.time()) + 1),
             "-f", "container=evt", "--format", "{{.Type}} {{.Action}}")
    actions = out.split("\n")
    assert "container create" in actions and "container start" in actions
    pretty = ok(berthd, "events", "--since", "1m", "--until", "0s", "-f", "event=create")
    assert " container create " in pretty and "name=evt" in pretty


def test_commit_export_save(berthd: Berthd, tmp_path: Path) -> None:
    _sleeper(berthd, "--name", "box")
    ok(berthd, "exec", "box", "sh", "-c", "echo committed > /marker")
    image_id = ok(berthd, "commit", "-c", 'CMD ["cat", "/marker"]', "box", "mine:1").strip()
    assert image_id.startswith("sha256:")
    assert ok(berthd, "run", "--rm", "mine:1") == "committed\n"
    history = ok(berthd, "history", "mine:1").splitlines()
    assert history[0].split()[:2] == ["IMAGE", "CREATED"]
    exported = berth(berthd, "export", "box")
    with tarfile.open(fileobj=io.BytesIO(exported.stdout)) as archive:
        assert "marker" in [n.lstrip("./") for n in archive.getnames()]
    out = tmp_path / "img.tar"
    ok(berthd, "save", "-o", str(out), "mine:1", "busybox")
    with tarfile.open(out) as archive:
        assert "manifest.json" in archive.getnames()
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    tags = sorted(t for entry in manifest for t in entry.get("RepoTags") or [])
    assert tags == ["busybox:latest", "mine:1"]


def test_prune_and_system_df(berthd: Berthd) -> None:
    stopped = ok(berthd, "run", "-d", "busybox", "true").strip()
    ok(berthd, "wait", stopped)
    running = _sleeper(berthd)
    out = ok(berthd, "container", "prune", "-f")
    assert out.startswith("Deleted Containers:\n" + stopped + "\n")
    assert out.rstrip().splitlines()[-1].startswith("Total reclaimed space: ")
    assert ok(berthd, "ps", "-aq", "--no-trunc") == running + "\n"
    df = ok(berthd, "system", "df").splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[2].split()[:3] == ["Containers", "1", "1"]
    assert ok(berthd, "image", "prune", "-f").splitlines()[-1].startswith(
        "Total reclaimed space: ")
    declined = berth(berthd, "container", "prune", input=b"n\n")
    assert declined.returncode == 0 and b"Are you sure" in declined.stdout


def test_volumes(berthd: Berthd) -> None:
    assert ok(berthd, "volume", "create", "--label", "k=v", "data") == "data\n"
    assert ok(berthd, "volume", "ls", "-q") == "data\n"
    assert ok(berthd, "volume", "ls").splitlines() == ["DRIVER    VOLUME NAME", "local     data"]
    info = json.loads(ok(berthd, "volume", "inspect", "data"))
    assert info[0]["Labels"] == {"k": "v"} and info[0]["Driver"] == "local"
    ok(berthd, "run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert ok(berthd, "run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f") == "kept\n"
    assert ok(berthd, "volume", "rm", "data") == "data\n"
    ok(berthd, "volume", "create", "spare")
    assert "spare" in ok(berthd, "volume", "prune", "-f", "-a")
    assert ok(berthd, "volume", "ls", "-q") == ""


def test_run_flags_reach_the_container(berthd: Berthd) -> None:
    out = ok(berthd, "run", "--rm", "--tmpfs", "/scratch", "--read-only", "--cap-drop", "all",
             "--ulimit", "nofile=123:456", "--pids-limit", "50", "--memory", "32m",
             "--cpus", "0.5", "--hostname", "hal", "busybox", "sh", "-c",
             "ulimit -n; hostname; touch /scratch/ok && echo tmpfs-ok; touch /x 2>&1 || "
             "echo ro")
    lines = out.splitlines()
    assert lines[:3] == ["123", "hal", "tmpfs-ok"] and lines[-1] == "ro"
    info = json.loads(ok(berthd, "inspect", ok(berthd, "create", "--restart", "always",
                                               "--health-cmd", "true", "--health-interval",
                                               "5s", "busybox").strip()))[0]
    assert info["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert info["Config"]["Healthcheck"]["Interval"] == 5_000_000_000


def _pty(daemon: Berthd, *args: str, rows: int = 24, cols: int = 80) -> PtyTerminal:
    """``berth`` on a pseudo-terminal of its own."""
    return PtyTerminal([BERTH, *args], daemon.env(), rows=rows, cols=cols)


def test_run_it_through_a_pty_with_detach(berthd: Berthd) -> None:
    term = _pty(berthd, "run", "-it", "--name", "tty", "busybox", "sh", rows=31, cols=97)
    try:
        term.read_until(b"# ")
        term.write(b"echo tt-$((6*7)); stty size\r")
        term.read_until(b"tt-42")
        term.read_until(b"31 97")
        term.write(b"\x10")
        term.write(b"\x11")
        assert term.wait() == 0
    finally:
        term.close()
    assert json.loads(ok(berthd, "inspect", "tty"))[0]["State"]["Running"] is True
    # attach again: the container's terminal output reaches us; detach with keys of our own
    term = _pty(berthd, "attach", "--detach-keys", "ctrl-x", "tty")
    try:
        deadline = time.monotonic() + 10
        while b"again-6" not in term.seen and time.monotonic() < deadline:
            ok(berthd, "exec", "tty", "sh", "-c", "echo again-$((2*3)) > /proc/1/fd/1")
            try:
                term.read_until(b"again-6", timeout=0.5)
            except AssertionError:
                continue
        assert b"again-6" in term.seen
        term.write(b"\x18")
        term.read_until(b"read escape sequence")
        assert term.wait() == 1
    finally:
        term.close()
    ok(berthd, "rm", "-f", "tty")


def test_exec_it_and_start_ai_through_a_pty(berthd: Berthd) -> None:
    _sleeper(berthd, "--name", "box")
    term = _pty(berthd, "exec", "-it", "box", "sh", rows=20, cols=70)
    try:
        term.read_until(b"# ")
        term.write(b"stty size; tty; exit 3\r")
        term.read_until(b"20 70")
        term.read_until(b"/dev/pts/")
        assert term.wait() == 3
    finally:
        term.close()
    ok(berthd, "create", "-it", "--name", "later", "busybox", "sh")
    term = _pty(berthd, "start", "-ai", "later")
    try:
        term.read_until(b"# ")
        term.write(b"exit 5\r")
        assert term.wait() == 5
    finally:
        term.close()


def test_stats_live_view_draws_frames(berthd: Berthd) -> None:
    _sleeper(berthd, "--name", "box")
    proc = subprocess.Popen([BERTH, "stats", "box"], env=berthd.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        time.sleep(2.5)
    finally:
        proc.kill()
        out, _ = proc.communicate()
    frames = [f for f in out.split(b"\x1b[H") if f]
    assert len(frames) >= 2
    assert frames[-1].startswith(b"CONTAINER ID   NAME ")
    assert b" box " in frames[-1] and frames[-1].rstrip(b"\n").endswith(b"\x1b[J") or \
        b" box " in frames[-2]


def test_outputs_match_the_docker_cli(berthd: Berthd) -> None:
    """The same daemon, the same question: berth answers byte for byte as docker 28 does."""
    docker = "/usr/local/bin/docker"
    since = int(time.time()) - 1
    ok(berthd, "run", "--rm", "--name", "once", "busybox", "true")
    ok(berthd, "run", "-d", "--name", "web", "-p", "8080:80", "--label", "a=b", "busybox",
       "sleep", "300")
    ok(berthd, "volume", "create", "v1")
    ok(berthd, "exec", "web", "sh", "-c", "echo x > /tmp/f")
    time.sleep(0.3)
    until = int(time.time()) + 1
    questions = [
        ["events", "--since", str(since), "--until", str(until)],
        ["events", "--since", str(since), "--until", str(until), "--format", "json"],
        ["events", "--since", str(since), "--until", str(until), "-f", "type=container",
         "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
        ["ps"], ["ps", "-a", "--no-trunc"], ["ps", "--format", "json"], ["images"],
        ["images", "--digests"], ["volume", "ls"], ["system", "df"], ["port", "web"],
        ["diff", "web"], ["top", "web"], ["history", "busybox"], ["inspect", "web"],
        ["volume", "inspect", "v1"], ["port", "web", "443"], ["inspect", "nope"],
    ]
    for question in questions:
        for _ in range(3):  # "2 seconds ago" may turn "3 seconds ago" between the two
            theirs = subprocess.run([docker, *question], env=berthd.env(), capture_output=True,
                                    timeout=60)
            ours = berth(berthd, *question)
            if ours.stdout == theirs.stdout:
                break
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), question
        assert ours.stderr.replace(b"berth", b"docker") == theirs.stderr, question
