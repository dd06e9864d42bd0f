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


def _tar_of(members: list[tuple[str, bytes | None]], uid: int = 1234, gid: int = 2345) -> bytes:
    """A tar whose members belong to uid:gid; ``None`` content makes a directory."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.uname, info.gname = uid, gid, "someone", "somegroup"
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _cp_in(berthd: Berthd, tar: bytes, dest: str, *flags: str):  # type: ignore[no-untyped-def]
    import subprocess

    from tests.e2e.test_docker_cli import DOCKER

    return subprocess.run([DOCKER, "cp", *flags, "-", dest], input=tar, env=berthd.env(),
                          capture_output=True)


def test_cp_ownership_as_dockerd(berthd: Berthd) -> None:
    """dockerd keeps the tar's owners; with -a, a container with a User gets that user's ids
    (from the container's /etc/passwd) on every member."""
    tar = _tar_of([("dir/", None), ("dir/f", b"hi\n"), ("top", b"x\n")])
    plain = run_ok(berthd, "run", "-d", "busybox", "sleep", "300").strip()
    user = run_ok(berthd, "run", "-d", "--user", "nobody", "busybox", "sleep", "300").strip()
    for cid in (plain, user):
        for _ in range(100):
            if docker(berthd, "exec", cid, "true").returncode == 0:
                break
    listing = "stat -c '%n %u:%g' /tmp/dir /tmp/dir/f /tmp/top"
    assert _cp_in(berthd, tar, f"{plain}:/tmp").returncode == 0
    assert run_ok(berthd, "exec", plain, "sh", "-c", listing).split("\n")[:3] == [
        "/tmp/dir 1234:2345", "/tmp/dir/f 1234:2345", "/tmp/top 1234:2345"]
    assert _cp_in(berthd, tar, f"{user}:/tmp", "-a").returncode == 0
    assert run_ok(berthd, "exec", user, "sh", "-c", listing).split("\n")[:3] == [
        "/tmp/dir 65534:65534", "/tmp/dir/f 65534:65534", "/tmp/top 65534:65534"]
    # -a with no User: the tar's owners stay.
    assert _cp_in(berthd, tar, f"{plain}:/root", "-a").returncode == 0
    assert run_ok(berthd, "exec", plain, "stat", "-c", "%u:%g", "/root/dir/f").strip() \
        == "1234:2345"
    # A host directory copied without -a keeps its owners too.
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "hostdir"))
        with open(os.path.join(tmp, "hostdir", "g"), "w") as f:
            f.write("g\n")
        os.chown(os.path.join(tmp, "hostdir", "g"), 4321, 5432)
        run_ok(berthd, "cp", os.path.join(tmp, "hostdir"), f"{user}:/home/")
    assert run_ok(berthd, "exec", user, "stat", "-c", "%u:%g", "/home/hostdir/g").strip() \
        == "4321:5432"
    run_ok(berthd, "rm", "-f", plain, user)


@pytest.mark.parametrize("running", [True, False])
def test_cp_never_swaps_dir_and_non_dir(berthd: Berthd, running: bool) -> None:
    setup = "mkdir -p /x/dir/keep /y && echo file > /y/dir"
    if running:
        cid = run_ok(berthd, "run", "-d", "busybox", "sh", "-c", setup + " && sleep 300").strip()
        for _ in range(100):
            if docker(berthd, "exec", cid, "test", "-f", "/y/dir").returncode == 0:
                break
    else:
        cid = run_ok(berthd, "create", "busybox", "true").strip()
        run_ok(berthd, "start", "-a", cid)  # nothing made yet; make the tree from a tar
        assert _cp_in(berthd, _tar_of([("x/", None), ("x/dir/", None), ("x/dir/keep/", None),
                                       ("y/", None), ("y/dir", b"file\n")]),
                      f"{cid}:/").returncode == 0
    result = _cp_in(berthd, _tar_of([("before", b"b\n"), ("dir", b"z\n")]), f"{cid}:/x")
    assert result.returncode != 0
    assert b'cannot overwrite directory "/x/dir" with non-directory "/x"' in result.stderr
    result = _cp_in(berthd, _tar_of([("dir/", None), ("dir/f", b"z\n")]), f"{cid}:/y")
    assert result.returncode != 0
    assert b'cannot overwrite non-directory "/y/dir" with directory "/y"' in result.stderr
    with tempfile.TemporaryDirectory() as tmp:
        run_ok(berthd, "cp", f"{cid}:/x", tmp)
        run_ok(berthd, "cp", f"{cid}:/y", tmp)
        # Nothing replaced; the member before the refused one was unpacked, as dockerd does.
        assert os.path.isdir(os.path.join(tmp, "x", "dir", "keep"))
        with open(os.path.join(tmp, "x", "before")) as f:
            assert f.read() == "b\n"
        with open(os.path.join(tmp, "y", "dir")) as f:
            assert f.read() == "file\n"
    # Through the API, without the flag, the replacement is allowed (Docker's default).
    status, _, _ = berthd.request("PUT", f"/v1.44/containers/{cid}/archive",
                                  _tar_of([("dir", b"now a file\n")]), query={"path": "/x"},
                                  headers={"Content-Type": "application/x-tar"})
    assert status == 200
    status, data, _ = berthd.request("PUT", f"/v1.44/containers/{cid}/archive",
                                     _tar_of([("dir/", None)]),
                                     query={"path": "/x", "noOverwriteDirNonDir": "true"},
                                     headers={"Content-Type": "application/x-tar"})
    assert status == 500 and b"cannot overwrite non-directory" in data
    run_ok(berthd, "rm", "-f", cid)
