"""``docker cp`` both ways, running and stopped, and paths that try to leave the container."""

from __future__ import annotations

import os
import tempfile

import pytest

from tests.daemon_fixture import Berthd
from tests.e2e.test_docker_cli import docker, run_ok

pytestmark = pytest.mark.root


@pytest.mark.parametrize("running", [True, False])
def test_cp_both_ways(berthd: Berthd, running: bool) -> None:
    setup = ("mkdir -p /d/sub && echo one > /d/a && echo two > /d/sub/b && "
             "ln -s a /d/link && ln -s /etc/passwd /abs")
    if running:
        cid = run_ok(berthd, "run", "-d", "busybox", "sh", "-c", setup + "; exec sleep 300")
        cid = cid.strip()
        for _ in range(100):
            if docker(berthd, "cp", f"{cid}:/d/sub/b", "-").returncode == 0:
                break
    else:
        run_ok(berthd, "run", "--name", "cpc", "busybox", "sh", "-c", setup)
        cid = "cpc"
    with tempfile.TemporaryDirectory() as tmp:
        run_ok(berthd, "cp", f"{cid}:/d", tmp)
        with open(os.path.join(tmp, "d", "a")) as f:
            assert f.read() == "one\n"
        with open(os.path.join(tmp, "d", "sub", "b")) as f:
            assert f.read() == "two\n"
        assert os.readlink(os.path.join(tmp, "d", "link")) == "a"
        # A link is copied as a link; -L follows it, inside the container.
        run_ok(berthd, "cp", f"{cid}:/abs", os.path.join(tmp, "abs"))
        assert os.readlink(os.path.join(tmp, "abs")) == "/etc/passwd"
        run_ok(berthd, "cp", "-L", f"{cid}:/abs", os.path.join(tmp, "followed"))
        with open(os.path.join(tmp, "followed")) as f:
            assert f.read().startswith("root:")
        upload = os.path.join(tmp, "up")
        os.makedirs(os.path.join(upload, "inner"))
        with open(os.path.join(upload, "inner", "f.txt"), "w") as f:
            f.write("uploaded\n")
        run_ok(berthd, "cp", upload, f"{cid}:/tmp/")
        run_ok(berthd, "cp", os.path.join(upload, "inner", "f.txt"), f"{cid}:/renamed.txt")
        out = os.path.join(tmp, "back")
        run_ok(berthd, "cp", f"{cid}:/tmp/up/inner/f.txt", out)
        with open(out) as f:
            assert f.read() == "uploaded\n"
        run_ok(berthd, "cp", f"{cid}:/renamed.txt", out)
        with open(out) as f:
            assert f.read() == "uploaded\n"
        result = docker(berthd, "cp", f"{cid}:/nonexistent", tmp)
        assert result.returncode != 0 and b"Could not find the file" in result.stderr
    run_ok(berthd, "rm", "-f", cid)


def test_cp_never_leaves_the_container(berthd: Berthd) -> None:
    secret_dir = tempfile.mkdtemp(prefix="berth-secret-")
    try:
        with open(os.path.join(secret_dir, "secret"), "w") as f:
            f.write("host secret\n")
        cid = run_ok(berthd, "run", "-d", "busybox", "sh", "-c",
                     f"ln -s {secret_dir} /escape && ln -s ../../../../../{secret_dir} /rel"
                     " && exec sleep 300").strip()
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(100):
                if docker(berthd, "cp", f"{cid}:/escape", os.path.join(tmp, "e")).returncode \
                        == 0:
                    break
            for src in (f"{cid}:/escape/secret", f"{cid}:/rel/secret",
                        f"{cid}:../../../../{secret_dir}/secret"):
                result = docker(berthd, "cp", src, os.path.join(tmp, "got"))
                assert result.returncode != 0, src
                assert not os.path.exists(os.path.join(tmp, "got"))
            planted = os.path.join(tmp, "plant.txt")
            with open(planted, "w") as f:
                f.write("planted\n")
            docker(berthd, "cp", planted, f"{cid}:/escape/")
            docker(berthd, "cp", planted, f"{cid}:../../../../{secret_dir}/")
        assert sorted(os.listdir(secret_dir)) == ["secret"]
        # What went through the link landed inside the container, if anywhere.
        run_ok(berthd, "rm", "-f", cid)
    finally:
        import shutil

        shutil.rmtree(secret_dir)
