"""The real docker CLI against berthd: the workflows of the foundation, unchanged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.daemon_fixture import FIXTURES, Berthd

pytestmark = pytest.mark.root

DOCKER = "/usr/local/bin/docker"


def docker(daemon: Berthd, *args: str, input: bytes | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([DOCKER, *args], env=daemon.env(), input=input,
                          capture_output=True, timeout=timeout)


def run_ok(daemon: Berthd, *args: str, **kw: object) -> str:
    result = docker(daemon, *args, **kw)  # type: ignore[arg-type]
    assert result.returncode == 0, (args, result.returncode, result.stderr.decode(),
                                    daemon.logs()[-3000:])
    return result.stdout.decode()


def test_run_rm_echo(berthd: Berthd) -> None:
    assert run_ok(berthd, "run", "--rm", "busybox", "echo", "hi") == "hi\n"
    assert run_ok(berthd, "ps", "-aq") == ""


def test_exit_code_passes_through(berthd: Berthd) -> None:
    result = docker(berthd, "run", "busybox", "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr


def test_stdout_and_stderr_are_kept_apart(berthd: Berthd) -> None:
    result = docker(berthd, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"


def test_detached_logs_ps_stop_rm(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "--name", "sleeper", "busybox", "sh", "-c",
                 "echo started; exec sleep 300").strip()
    assert len(cid) == 64
    deadline = time.monotonic() + 10
    while "started" not in run_ok(berthd, "logs", cid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run_ok(berthd, "logs", "sleeper") == "started\n"
    listing = run_ok(berthd, "ps")
    assert "sleeper" in listing and cid[:12] in listing and "Up " in listing
    started = time.monotonic()
    run_ok(berthd, "stop", "-t", "1", "sleeper")
    assert time.monotonic() - started < 8
    state = json.loads(run_ok(berthd, "inspect", "sleeper"))[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137
    assert "Exited (137)" in run_ok(berthd, "ps", "-a")
    run_ok(berthd, "rm", "-f", "sleeper")
    assert run_ok(berthd, "ps", "-aq") == ""


def test_rm_force_running(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "busybox", "sleep", "300").strip()
    refused = docker(berthd, "rm", cid)
    assert refused.returncode != 0
    assert b"container is running" in refused.stderr
    run_ok(berthd, "rm", "-f", cid)
    assert run_ok(berthd, "ps", "-aq") == ""


def test_kill_answers_once_the_container_is_gone(berthd: Berthd) -> None:
    # dockerd's SIGKILL waits for the exit: a script's next command sees it stopped.
    for _ in range(5):
        cid = run_ok(berthd, "run", "-d", "busybox", "sleep", "300").strip()
        run_ok(berthd, "kill", cid)
        state = json.loads(run_ok(berthd, "inspect", "-f", "{{json .State}}", cid))
        assert (state["Running"], state["ExitCode"]) == (False, 137)
        assert cid not in run_ok(berthd, "ps", "-q", "--no-trunc")
        run_ok(berthd, "rm", cid)


def test_load_multilayer_and_run(berthd: Berthd) -> None:
    out = run_ok(berthd, "load", "-i", str(FIXTURES / "multilayer-docker-save.tar"))
    assert "Loaded image: fixture/multilayer:1" in out
    assert run_ok(berthd, "run", "--rm", "fixture/multilayer:1") == "one\n"
    # The image's WORKDIR, ENV and whiteouts reach the container.
    out = run_ok(berthd, "run", "--rm", "fixture/multilayer:1",
                 "pwd; echo $FIXTURE; ls /data; ls /data/opq")
    assert out.splitlines() == ["/data", "1", "abs-link", "fifo", "hard-link", "keep", "opq",
                                "rel-link", "d"]


def test_stdin_is_piped(berthd: Berthd) -> None:
    assert run_ok(berthd, "run", "-i", "--rm", "busybox", "cat", input=b"x") == "x"
    big = os.urandom(300_000).hex().encode()
    out = docker(berthd, "run", "-i", "--rm", "busybox", "sh", "-c", "wc -c", input=big)
    assert out.stdout.decode().strip() == str(len(big))


def test_unknown_image_fails_with_daemons_message(berthd: Berthd) -> None:
    result = docker(berthd, "run", "--rm", "nosuchimage")
    assert result.returncode == 125
    err = result.stderr.decode()
    assert "Unable to find image 'nosuchimage:latest' locally" in err
    assert "Error response from daemon" in err


def test_missing_command_exits_127(berthd: Berthd) -> None:
    result = docker(berthd, "run", "--rm", "busybox", "nosuchcommand")
    assert result.returncode == 127, result.stderr
    assert b"nosuchcommand" in result.stderr
    assert run_ok(berthd, "ps", "-aq") == ""


def test_env_workdir_user_hostname(berthd: Berthd) -> None:
    out = run_ok(berthd, "run", "--rm", "-e", "A=b c", "-w", "/tmp", "-u", "nobody",
                 "--hostname", "boxy", "busybox", "sh", "-c",
                 'echo "$A"; pwd; id -u; id -g; hostname; cat /etc/hostname')
    assert out.splitlines() == ["b c", "/tmp", "65534", "65534", "boxy", "boxy"]


def test_entrypoint_override(berthd: Berthd) -> None:
    assert run_ok(berthd, "run", "--rm", "--entrypoint", "echo", "busybox", "a", "b") == "a b\n"


def test_images_tag_rmi(berthd: Berthd) -> None:
    run_ok(berthd, "tag", "busybox", "example/other:v1")
    listing = run_ok(berthd, "images")
    assert "example/other" in listing and "busybox" in listing
    out = run_ok(berthd, "rmi", "example/other:v1")
    assert "Untagged: example/other:v1" in out
    assert "example/other" not in run_ok(berthd, "images")


def test_isolation_seen_from_inside(berthd: Berthd) -> None:
    script = ("echo pid=$$; ls -d /proc/[0-9]* | tr '\\n' ' '; echo; hostname; "
              "ls /sys/class/net; test -e /work && echo host-visible || echo host-hidden")
    cid = run_ok(berthd, "create", "--hostname", "inside", "busybox", "sh", "-c", script).strip()
    out = run_ok(berthd, "start", "-a", cid).splitlines()
    assert out[0] == "pid=1"
    # Only the shell and what it forked: no host process is visible.
    pids = {int(p.rsplit("/", 1)[1]) for p in out[1].split()}
    assert 1 in pids and pids <= {1, 2, 3}, pids
    assert out[2] == "inside"
    assert out[3:-1] == ["lo"]
    assert out[-1] == "host-hidden"
    run_ok(berthd, "rm", cid)


def test_writes_stay_in_their_container(berthd: Berthd) -> None:
    run_ok(berthd, "run", "--name", "writer", "busybox", "sh", "-c", "echo secret > /etc/mine")
    out = docker(berthd, "run", "--rm", "busybox", "cat", "/etc/mine")
    assert out.returncode == 1 and b"No such file" in out.stderr
    run_ok(berthd, "rm", "writer")


def test_daemon_crash_keeps_containers(berthd: Berthd) -> None:
    cid = run_ok(berthd, "run", "-d", "busybox", "sh", "-c",
                 "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.2; done").strip()
    time.sleep(0.6)
    berthd.stop(signal.SIGKILL)
    time.sleep(1.0)  # the container keeps logging while no daemon runs
    berthd.start()
    state = json.loads(run_ok(berthd, "inspect", cid))[0]["State"]
    assert state["Running"] is True
    time.sleep(0.5)
    lines = run_ok(berthd, "logs", cid).split()
    numbers = [int(x[4:]) for x in lines]
    assert numbers == list(range(len(numbers))) and len(numbers) >= 8, lines
    run_ok(berthd, "stop", "-t", "1", cid)
    assert json.loads(run_ok(berthd, "inspect", cid))[0]["State"]["Status"] == "exited"
    run_ok(berthd, "rm", cid)


def test_version_and_info(berthd: Berthd) -> None:
    out = run_ok(berthd, "version", "--format", "{{.Server.APIVersion}}")
    assert out.strip() == "1.44"
    info = json.loads(run_ok(berthd, "info", "--format", "{{json .}}"))
    assert info["Images"] >= 1 and info["OSType"] == "linux"


def test_unknown_user_is_refused(berthd: Berthd) -> None:
    result = docker(berthd, "run", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert result.returncode in (125, 126), result
    assert b"unable to find user nosuchuser" in result.stderr


def test_interactive_tty(berthd: Berthd) -> None:
    """`docker run -it` driven through a real pty: a shell answers and its exit code returns."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen([DOCKER, "run", "-it", "--rm", "busybox", "sh"], env=berthd.env(),
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            start_new_session=True)
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, timeout: float = 15) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert marker in seen, seen

    try:
        read_until(b"# ")
        os.write(master, b"tty; stty size; echo tt-$((6*7))\r")
        read_until(b"tt-42")
        assert b"/dev/pts/0" in seen
        assert b"not a tty" not in seen
        os.write(master, b"exit 5\r")
        assert proc.wait(timeout=20) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
