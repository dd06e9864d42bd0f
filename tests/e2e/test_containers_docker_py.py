"""docker-py's container API end to end: the shapes it parses must be Docker's."""

from __future__ import annotations

import io
import tarfile
import time

import docker as docker_py
import pytest

from tests.daemon_fixture import Berthd

pytestmark = pytest.mark.root


def test_docker_py_container_api(berthd: Berthd) -> None:
    client = docker_py.DockerClient(base_url=berthd.host)
    try:
        c = client.containers.run("busybox", ["sh", "-c", "echo ready; exec sleep 300"],
                                  detach=True, name="py1", labels={"x": "1"},
                                  mem_limit="64m", restart_policy={"Name": "on-failure",
                                                                   "MaximumRetryCount": 3})
        deadline = time.monotonic() + 10
        while b"ready" not in c.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        c.reload()
        assert c.status == "running" and c.labels == {"x": "1"}
        assert c.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
        top = c.top()
        assert "Titles" in top and any("sleep" in " ".join(p) for p in top["Processes"])
        stats = c.stats(stream=False)
        assert stats["memory_stats"]["limit"] == 64 * 1024 * 1024
        assert "cpu_usage" in stats["cpu_stats"] and "precpu_stats" in stats
        c.rename("py2")
        c.reload()
        assert c.name == "py2"
        c.update(mem_limit="96m", memswap_limit="192m")
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 96 * 1024 * 1024
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = b"from py\n"
            info = tarfile.TarInfo("py.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        assert c.put_archive("/tmp", buf.getvalue())
        chunks, stat = c.get_archive("/tmp/py.txt")
        assert stat["name"] == "py.txt" and stat["size"] == 8
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("py.txt")
            assert member is not None and member.read() == b"from py\n"
        assert [x.name for x in client.containers.list(filters={"label": "x=1"})] == ["py2"]
        c.restart(timeout=0)
        c.reload()
        assert c.status == "running"
        c.kill()
        assert c.wait()["StatusCode"] == 137
        c.remove()
        assert client.containers.list(all=True) == []
        assert client.containers.prune()["ContainersDeleted"] is None
    finally:
        client.close()
