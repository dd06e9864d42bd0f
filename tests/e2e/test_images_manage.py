"""Listing, filtering, pruning, removing and accounting for images with the real CLI."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.daemon_fixture import FIXTURES, Berthd

pytestmark = pytest.mark.root

DOCKER = "/usr/local/bin/docker"
MULTI = "fixture/multilayer:1"


def docker(daemon: Berthd, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True,
                          timeout=120)


def run_ok(daemon: Berthd, *args: str) -> str:
    r = docker(daemon, *args)
    assert r.returncode == 0, (args, r.stderr, daemon.logs()[-3000:])
    return r.stdout


def names(daemon: Berthd, *args: str) -> list[str]:
    out = run_ok(daemon, "images", "--format", "{{.Repository}}:{{.Tag}}", *args)
    return out.split()


@pytest.fixture
def stocked(berthd: Berthd) -> Berthd:
    """busybox, the multilayer fixture, a commit on busybox and a dangling earlier commit."""
    run_ok(berthd, "load", "-i", str(FIXTURES / "multilayer-docker-save.tar"))
    run_ok(berthd, "run", "--name", "c1", "busybox", "sh", "-c", "echo > /f")
    run_ok(berthd, "commit", "c1", "img:1")
    run_ok(berthd, "commit", "-c", "LABEL k=v", "c1", "img:1")  # the first one dangles now
    return berthd


def test_list_filters(stocked: Berthd) -> None:
    assert names(stocked) == ["img:1", "<none>:<none>", "busybox:latest", MULTI]
    assert names(stocked, "-f", "dangling=true") == ["<none>:<none>"]
    assert names(stocked, "-f", "dangling=false") == ["img:1", "busybox:latest", MULTI]
    assert names(stocked, "-f", "label=org.example.fixture=multilayer") == [MULTI]
    assert names(stocked, "-f", "label=k") == ["img:1"]
    assert names(stocked, "-f", "reference=fix*/*") == [MULTI]
    assert names(stocked, "-f", "reference=busybox") == ["busybox:latest"]
    assert names(stocked, "-f", "before=busybox") == [MULTI]
    assert names(stocked, "-f", "since=busybox") == ["img:1", "<none>:<none>"]
    r = docker(stocked, "images", "-f", "bogus=1")
    assert r.returncode != 0 and "invalid filter 'bogus'" in r.stderr
    r = docker(stocked, "images", "-f", "dangling=maybe")
    assert r.returncode != 0 and "invalid filter 'dangling=maybe'" in r.stderr


def test_list_shared_size_and_digests(stocked: Berthd) -> None:
    listed = stocked.json("GET", "/v1.44/images/json",
                          query={"shared-size": "1", "digests": "1"})
    by_tag = {(i["RepoTags"] or ["-"])[0]: i for i in listed}
    busybox = by_tag["busybox:latest"]
    assert busybox["SharedSize"] == busybox["Size"]  # its one layer is under img:1 too
    assert by_tag[MULTI]["SharedSize"] == 0
    assert all(i["RepoDigests"] == [] and i["Containers"] == -1 for i in listed)
    plain = stocked.json("GET", "/v1.44/images/json")
    assert all(i["SharedSize"] == -1 for i in plain)


def test_rmi_untag_delete_and_conflicts(stocked: Berthd) -> None:
    r = docker(stocked, "rmi", "busybox")
    assert r.returncode == 1 and "container" in r.stderr and "is using its referenced image" \
        in r.stderr
    run_ok(stocked, "tag", "busybox", "bb:2")
    assert run_ok(stocked, "rmi", "bb:2") == "Untagged: bb:2\n"
    image_id = json.loads(run_ok(stocked, "image", "inspect", MULTI))[0]["Id"]
    run_ok(stocked, "tag", MULTI, "again:1")
    r = docker(stocked, "rmi", image_id[7:19])
    assert r.returncode == 1 and "must be forced" in r.stderr
    out = run_ok(stocked, "rmi", "-f", image_id[7:19]).splitlines()
    assert "Untagged: again:1" in out and "Untagged: fixture/multilayer:1" in out
    assert f"Deleted: {image_id}" in out
    status, body, _ = stocked.request("DELETE", "/v1.44/images/busybox")
    assert status == 409
    status, body, _ = stocked.request("DELETE", "/v1.44/images/nope:1")
    assert status == 404


def test_prune(stocked: Berthd) -> None:
    out = run_ok(stocked, "image", "prune", "-f")
    assert out.startswith("Deleted Images:\ndeleted: sha256:")
    assert "<none>:<none>" not in names(stocked, "-a")
    out = run_ok(stocked, "image", "prune", "-a", "-f", "--filter", "label=org.example.fixture")
    assert "untagged: fixture/multilayer:1" in out
    assert names(stocked) == ["img:1", "busybox:latest"]
    out = run_ok(stocked, "image", "prune", "-a", "-f", "--filter", "until=2001-01-01")
    assert names(stocked) == ["img:1", "busybox:latest"]
    run_ok(stocked, "rm", "c1")
    run_ok(stocked, "image", "prune", "-a", "-f", "--filter", "label!=k")
    assert names(stocked) == ["img:1"]  # busybox is img:1's parent: it stays with its child
    run_ok(stocked, "image", "prune", "-a", "-f")
    assert names(stocked, "-a") == []


def test_history_and_system_df(stocked: Berthd) -> None:
    history = stocked.json("GET", "/v1.44/images/img:1/history")
    busybox = stocked.json("GET", "/v1.44/images/busybox/json")
    assert [set(h) for h in history] == [
        {"Id", "Created", "CreatedBy", "Tags", "Size", "Comment"}] * len(history)
    assert history[0]["Tags"] == ["img:1"] and history[0]["CreatedBy"] == "sh -c echo > /f"
    assert history[1]["Id"] == busybox["Id"] and history[1]["Tags"] == ["busybox:latest"]
    df = stocked.json("GET", "/v1.44/system/df")
    assert set(df) >= {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"}
    by_id = {i["Id"]: i for i in df["Images"]}
    assert by_id[busybox["Id"]]["Containers"] == 1
    assert df["Containers"][0]["SizeRw"] > 0
    assert df["LayersSize"] >= busybox["Size"]
    out = run_ok(stocked, "system", "df")
    assert out.splitlines()[1].split()[:3] == ["Images", "4", "1"]
    run_ok(stocked, "volume", "create", "v1")
    run_ok(stocked, "run", "--rm", "-v", "v1:/v", "busybox", "sh", "-c",
           "head -c 100000 /dev/zero > /v/f")
    volumes = stocked.json("GET", "/v1.44/system/df")["Volumes"]
    assert volumes[0]["Name"] == "v1" and volumes[0]["UsageData"]["Size"] >= 100_000


def test_rmi_with_a_running_container(berthd: Berthd) -> None:
    image_id = json.loads(run_ok(berthd, "image", "inspect", "busybox"))[0]["Id"]
    run_ok(berthd, "run", "-d", "--name", "rr", "busybox", "sleep", "60")
    for args in (["rmi", image_id[7:19]], ["rmi", "-f", image_id[7:19]]):
        r = docker(berthd, *args)
        assert r.returncode == 1
        assert r.stderr.strip() == (
            f"Error response from daemon: conflict: unable to delete {image_id[7:19]} (cannot "
            f"be forced) - image is being used by running container "
            f"{run_ok(berthd, 'inspect', '-f', '{{.Id}}', 'rr')[:12]}")
    assert run_ok(berthd, "rmi", "-f", "busybox") == "Untagged: busybox:latest\n"
    assert names(berthd, "-a") == ["<none>:<none>"]
    run_ok(berthd, "rm", "-f", "rr")
    out = run_ok(berthd, "rmi", image_id[7:19]).splitlines()
    assert out[0] == f"Deleted: {image_id}"
