"""The image service on real archives: load, unpack, inspect, resolve, tag, delete, import.

Needs root: layers are unpacked with their owners and overlay whiteouts, and the unpacked
images are checked by mounting the overlay a container would get (always unmounted).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.image import ImageService
from berth.metadata import MetadataStore
from tests.conformance.layers import FIXTURES, assert_matches_expected, make_tar, mounted

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
INSPECT = json.loads((FIXTURES / "multilayer-docker-inspect.json").read_text())[0]
MULTI_ID = INSPECT["Id"]
BUSYBOX_ID = "sha256:fe0f2e83ce6531dacd7d5b3a1aec2241f6307ea61ef48cb5443b8603410acb64"


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    db = MetadataStore(str(tmp_path / "berth.db"))
    service = ImageService(str(tmp_path), db)
    yield service
    service.snapshots.close()
    db.close()


def load(svc: ImageService, name: str | bytes, quiet: bool = True) -> list[dict[str, Any]]:
    data = name if isinstance(name, bytes) else (FIXTURES / name).read_bytes()
    return list(svc.load(io.BytesIO(data), quiet=quiet))


def state(svc: ImageService) -> dict[str, Any]:
    """Everything a failed operation must leave as it was."""
    db = svc.db.read()
    return {
        "tables": {t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}").fetchall()))
                   for t in ("images", "tags", "layers", "image_layers", "layer_blobs")},
        "blobs": sorted(i.digest for i in svc.content.walk()),
        "snapshots": sorted(i.key for i in svc.snapshots.walk()),
        "dirs": sorted(os.listdir(svc.snapshots.root)),
        "tmp": os.listdir(os.path.join(svc.data_root, "tmp")),
        "ingest": os.listdir(os.path.join(svc.data_root, "content", "ingest")),
    }


def rewrite(name: str, edit: Any) -> bytes:
    """A copy of a fixture archive with ``edit(name, data) -> data | None`` applied."""
    out = io.BytesIO()
    with tarfile.open(FIXTURES / name) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if data is not None:
                new = edit(m.name, data)
                if new is None:
                    continue
                m.size = len(new)
                dst.addfile(m, io.BytesIO(new))
            else:
                dst.addfile(m)
    return out.getvalue()


# -- loading ---------------------------------------------------------------------------

def test_every_fixture_archive_loads(svc: ImageService) -> None:
    assert load(svc, "busybox-docker-save.tar") == [{"stream": "Loaded image: busybox:latest\n"}]
    msgs = load(svc, "multilayer-docker-save.tar", quiet=False)
    progress = [m for m in msgs if m.get("status") == "Loading layer"]
    assert [m["id"] for m in progress] == ["537dbe794e50", "a3c3f06e5093"]  # base is shared
    assert msgs[-1] == {"stream": "Loaded image: fixture/multilayer:1\n"}
    msgs = load(svc, "multilayer-oci.tar")
    assert msgs[-1] == {"stream": "Loaded image: fixture/multilayer:1\n"}
    assert "renaming the old one with ID " + MULTI_ID in msgs[0]["stream"]
    images = {i["Id"]: i for i in svc.list()}
    assert images[BUSYBOX_ID]["RepoTags"] == ["busybox:latest"]
    assert images[MULTI_ID]["RepoTags"] == []  # the OCI copy took the tag
    assert len(images) == 3
    for summary in images.values():
        assert set(summary) == {"Containers", "Created", "Id", "Labels", "ParentId",
                                "RepoDigests", "RepoTags", "SharedSize", "Size"}
        assert summary["SharedSize"] == -1 and summary["Containers"] == -1
    # Three images, four layer stacks: the busybox base is one snapshot for all.
    assert len(list(svc.snapshots.walk())) == 3


def test_untagged_archives_report_the_id(svc: ImageService) -> None:
    def drop_tags(name: str, data: bytes) -> bytes:
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest[0]["RepoTags"] = None
            return json.dumps(manifest).encode()
        return data

    assert load(svc, rewrite("busybox-docker-save.tar", drop_tags)) == [
        {"stream": f"Loaded image ID: {BUSYBOX_ID}\n"}]


def test_compressed_archive_loads(svc: ImageService) -> None:
    data = gzip.compress((FIXTURES / "busybox-docker-save.tar").read_bytes())
    assert load(svc, data)[-1]["stream"] == "Loaded image: busybox:latest\n"


@pytest.mark.parametrize("archive", ["multilayer-docker-save.tar", "multilayer-oci.tar"])
def test_container_rootfs_is_the_expected_tree(svc: ImageService, tmp_path: Path,
                                               archive: str) -> None:
    load(svc, archive)
    image = svc.resolve("fixture/multilayer:1")
    mounts = svc.prepare_rootfs("ctr-1", image.id)
    assert mounts == svc.rootfs_mounts("ctr-1")
    target = tmp_path / "rootfs"
    target.mkdir()
    with mounted(mounts, str(target)):
        assert_matches_expected(str(target))
    svc.remove_rootfs("ctr-1")
    svc.remove_rootfs("ctr-1")  # idempotent
    with pytest.raises(NotFound):
        svc.rootfs_mounts("ctr-1")


def test_fifty_containers_share_the_layers(svc: ImageService) -> None:
    load(svc, "multilayer-docker-save.tar")
    lowers = set()
    for i in range(50):
        mounts = svc.prepare_rootfs(f"c{i}", MULTI_ID)
        lowers.add(mounts[0]["options"][0])
    assert len(lowers) == 1
    committed = [i for i in svc.snapshots.walk() if i.kind.value == "committed"]
    assert len(committed) == 3


# -- inspect, resolve, history ------------------------------------------------------------

def _shape(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_shape(x) for x in v[:1]]
    return type(v).__name__


def test_inspect_matches_docker(svc: ImageService) -> None:
    load(svc, "multilayer-docker-save.tar")
    got = svc.inspect("fixture/multilayer:1")
    assert got["Id"] == MULTI_ID  # the config bytes are kept as they were
    want = {k: v for k, v in INSPECT.items() if k != "VirtualSize"}  # gone in API 1.44
    assert list(got) == list(want)
    for key in ("RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
                "ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os",
                "Size", "RootFS"):
        if key == "Parent":
            assert got[key] == ""  # a loaded image has no local parent
            continue
        assert got[key] == want[key], key
    assert list(got["Config"]) == list(want["Config"])
    assert _shape(got["GraphDriver"]) == _shape(want["GraphDriver"])
    assert got["GraphDriver"]["Name"] == "overlay2"
    upper = got["GraphDriver"]["Data"]["UpperDir"]
    assert os.path.isdir(os.path.join(upper, "data"))
    assert len(got["GraphDriver"]["Data"]["LowerDir"].split(":")) == 2
    assert got["Metadata"]["LastTagTime"].endswith("Z")


def test_inspect_fills_dockers_config_shape_for_oci_configs(svc: ImageService) -> None:
    load(svc, "multilayer-oci.tar")
    got = svc.inspect("fixture/multilayer:1")
    assert list(got["Config"]) == list(INSPECT["Config"])
    assert got["Config"]["Cmd"] == ["cat /data/keep/a"]
    assert got["Config"]["Hostname"] == "" and got["Config"]["Volumes"] is None
    assert got["RootFS"] == INSPECT["RootFS"]
    assert got["Size"] == INSPECT["Size"]


def test_resolve(svc: ImageService) -> None:
    load(svc, "busybox-docker-save.tar")
    hexid = BUSYBOX_ID[7:]
    for ref in ["busybox", "busybox:latest", "docker.io/library/busybox:latest", BUSYBOX_ID,
                hexid, hexid[:12], "sha256:" + hexid[:12], f"busybox@{BUSYBOX_ID}"]:
        rec = svc.resolve(ref)
        assert rec.id == BUSYBOX_ID, ref
    rec = svc.resolve("busybox")
    assert rec.repo_tags == ["busybox:latest"]
    assert rec.chain_id == rec.diff_ids[0]
    assert rec.config["config"]["Cmd"] == ["sh"]
    for missing, message in [("nope", "No such image: nope:latest"),
                             ("busybox:1", "No such image: busybox:1"),
                             ("localhost:5000/x", "No such image: localhost:5000/x:latest"),
                             ("sha256:" + "0" * 64, "No such image: sha256:" + "0" * 64)]:
        with pytest.raises(NotFound) as err:
            svc.resolve(missing)
        assert str(err.value) == message
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        svc.resolve("Busybox")


def test_history(svc: ImageService) -> None:
    load(svc, "multilayer-docker-save.tar")
    hist = svc.history("fixture/multilayer:1")
    assert len(hist) == 9
    assert hist[0]["Id"] == MULTI_ID and hist[0]["Tags"] == ["fixture/multilayer:1"]
    assert all(h["Id"] == "<missing>" and h["Tags"] is None for h in hist[1:])
    assert hist[-1]["Comment"] == "Imported from -"
    assert [h["Size"] > 0 for h in hist] == [False] * 6 + [True] * 3
    assert sum(h["Size"] for h in hist) == INSPECT["Size"]
    assert set(hist[0]) == {"Id", "Created", "CreatedBy", "Tags", "Size", "Comment"}


# -- tag, delete --------------------------------------------------------------------------

def test_tag_and_untag(svc: ImageService) -> None:
    load(svc, "busybox-docker-save.tar")
    svc.tag("busybox", "localhost:5000/bb", "v1")
    svc.tag("busybox", "mine")
    assert svc.resolve("mine:latest").id == BUSYBOX_ID
    assert sorted(svc.inspect(BUSYBOX_ID)["RepoTags"]) == [
        "busybox:latest", "localhost:5000/bb:v1", "mine:latest"]
    with pytest.raises(InvalidArgument, match="invalid tag format"):
        svc.tag("busybox", "x", "-bad")
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        svc.tag("busybox", "Upper")
    with pytest.raises(InvalidArgument, match="ambiguous"):
        svc.tag("busybox", "sha256")
    assert svc.delete("mine") == [{"Untagged": "mine:latest"}]
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        svc.delete(BUSYBOX_ID[7:19])
    records = svc.delete(BUSYBOX_ID[7:19], force=True)
    assert {"Deleted": BUSYBOX_ID} in records
    assert {"Untagged": "busybox:latest"} in records
    assert {"Untagged": "localhost:5000/bb:v1"} in records
    assert svc.list() == []
    assert list(svc.snapshots.walk()) == []


def test_delete_removes_layers_only_when_unshared(svc: ImageService) -> None:
    load(svc, "busybox-docker-save.tar")
    load(svc, "multilayer-docker-save.tar")
    records = svc.delete("fixture/multilayer:1")
    assert records[0] == {"Untagged": "fixture/multilayer:1"}
    assert records[1] == {"Deleted": MULTI_ID}
    assert len(records) == 4  # and the two layers of its own
    assert [i.key for i in svc.snapshots.walk()] == [svc.resolve("busybox").chain_id]
    assert svc.delete("busybox") == [{"Untagged": "busybox:latest"},
                                     {"Deleted": BUSYBOX_ID},
                                     {"Deleted": svc_chain(records, BUSYBOX_ID)}]
    assert svc.content.walk is not None and list(svc.snapshots.walk()) == []


def svc_chain(_records: list[dict[str, str]], _image: str) -> str:
    return "sha256:1f78acb9acbb2d02b793711c1dfcdc9c161d375dffd7959a13c5c5d66003a968"


def test_delete_conflicts_with_containers(svc: ImageService) -> None:
    load(svc, "busybox-docker-save.tar")
    cid = "c" * 64
    svc.db.put_container(cid, "user", BUSYBOX_ID, "snap", "1", {"State": {"Running": False}})
    with pytest.raises(Conflict) as err:
        svc.delete("busybox")
    assert str(err.value) == ('conflict: unable to remove repository reference "busybox" '
                              f"(must force) - container cccccccccccc is using its referenced "
                              f"image {BUSYBOX_ID[7:19]}")
    with pytest.raises(Conflict) as err:
        svc.delete(BUSYBOX_ID)
    assert str(err.value) == (f"conflict: unable to delete {BUSYBOX_ID[7:19]} (must be forced)"
                              " - image is being used by stopped container cccccccccccc")
    svc.db.update_container(cid, {"State": {"Running": True}})
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running"):
        svc.delete(BUSYBOX_ID, force=True)
    # Forcing the name only untags: the image stays for its container.
    assert svc.delete("busybox", force=True) == [{"Untagged": "busybox:latest"}]
    assert svc.resolve(BUSYBOX_ID).repo_tags == []


def test_list_filters(svc: ImageService) -> None:
    load(svc, "busybox-docker-save.tar")
    load(svc, "multilayer-docker-save.tar")
    load(svc, "multilayer-oci.tar")  # leaves the docker-save copy dangling
    ids = lambda f: [i["Id"] for i in svc.list(filters=f)]  # noqa: E731
    assert ids({"dangling": ["true"]}) == [MULTI_ID]
    assert MULTI_ID not in ids({"dangling": {"false": True}})
    assert ids({"reference": ["busy*"]}) == [BUSYBOX_ID]
    assert len(ids({"label": ["org.example.fixture=multilayer"]})) == 2
    assert ids({"label": ["org.example.fixture=other"]}) == []


# -- import -------------------------------------------------------------------------------

def test_import_rootfs(svc: ImageService, tmp_path: Path) -> None:
    raw = subprocess.run([sys.executable, str(ROOT / "scripts" / "busybox_rootfs.py")],
                         check=True, capture_output=True).stdout
    image_id = svc.import_rootfs(io.BytesIO(gzip.compress(raw)), "imported:v1",
                                 ['CMD ["sh"]', "ENV A=B", "WORKDIR /tmp", "USER nobody",
                                  "LABEL k=v", "EXPOSE 8080", 'ENTRYPOINT ["/bin/busybox"]'],
                                 "")
    info = svc.inspect("imported:v1")
    assert info["Id"] == image_id
    cfg = info["Config"]
    assert (cfg["Cmd"], cfg["Env"], cfg["WorkingDir"], cfg["User"], cfg["Labels"],
            cfg["ExposedPorts"], cfg["Entrypoint"]) == (
        ["sh"], ["A=B"], "/tmp", "nobody", {"k": "v"}, {"8080/tcp": {}}, ["/bin/busybox"])
    assert (info["Architecture"], info["Os"], info["Comment"]) == ("amd64", "linux",
                                                                  "Imported from -")
    assert len(info["RootFS"]["Layers"]) == 1
    config = json.loads(svc.content.read(image_id))
    assert config["history"][0]["comment"] == "Imported from -"
    assert list(config) == sorted(config)  # Docker writes the top level in key order
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(svc.prepare_rootfs("ctr", image_id), str(target)):
        assert (target / "bin" / "busybox").is_file()
        assert os.readlink(target / "bin" / "sh") == "busybox"
    svc.remove_rootfs("ctr")
    with pytest.raises(InvalidArgument, match="is not a valid change command"):
        svc.import_rootfs(io.BytesIO(raw), None, ["RUN rm -rf /"], "")
    untagged = svc.import_rootfs(io.BytesIO(make_tar([{"name": "f", "data": b"x"}])),
                                 None, [], "from a test")
    assert svc.inspect(untagged)["Comment"] == "from a test"
    assert svc.inspect(untagged)["RepoTags"] == []


# -- bad input leaves the store unchanged -------------------------------------------------

def _bad_archives() -> dict[str, bytes]:
    ml = (FIXTURES / "multilayer-docker-save.tar").read_bytes()
    top_layer = "112ac6d667f6bab883cbb0fd2df74828e242921d44aab78aba72c909af196e57/layer.tar"

    def drop_layer(name: str, data: bytes) -> bytes | None:
        return None if name == top_layer else data

    def corrupt_config(name: str, data: bytes) -> bytes:
        return data.replace(b'"FIXTURE=1"', b'"FIXTURE=2"') if name.endswith(".json") and \
            name.startswith("d2dd") else data

    def corrupt_layer(name: str, data: bytes) -> bytes:
        return data.replace(b"new\n", b"bad\n") if name == top_layer else data

    def escaping_layer(name: str, data: bytes) -> bytes:
        return make_tar([{"name": "../../../escaped", "data": b"x"}]) if name == top_layer \
            else data

    def bad_manifest(name: str, data: bytes) -> bytes:
        return b"{not json" if name == "manifest.json" else data

    return {
        "truncated": ml[: len(ml) // 2],
        "not a tar": b"GIF89a" + os.urandom(4000),
        "empty": b"",
        "missing layer": rewrite("multilayer-docker-save.tar", drop_layer),
        "wrong config digest": rewrite("multilayer-docker-save.tar", corrupt_config),
        "wrong layer digest": rewrite("multilayer-docker-save.tar", corrupt_layer),
        "escaping layer": rewrite("multilayer-docker-save.tar", escaping_layer),
        "bad manifest": rewrite("multilayer-docker-save.tar", bad_manifest),
        "no manifest": make_tar([{"name": "hello", "data": b"x"}]),
    }


@pytest.mark.parametrize("case", sorted(_bad_archives()))
def test_bad_archives_leave_the_store_unchanged(svc: ImageService, tmp_path: Path,
                                                case: str) -> None:
    load(svc, "busybox-docker-save.tar")
    before = state(svc)
    with pytest.raises(InvalidArgument):
        load(svc, _bad_archives()[case])
    assert state(svc) == before
    assert not (tmp_path.parent / "escaped").exists()
    assert svc.resolve("busybox").id == BUSYBOX_ID


def test_failure_at_the_metadata_commit_leaves_the_store_unchanged(
        svc: ImageService, monkeypatch: pytest.MonkeyPatch) -> None:
    load(svc, "busybox-docker-save.tar")
    before = state(svc)

    def boom(_plans: Any) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(svc, "_commit_plans", boom)
    with pytest.raises(OSError):
        load(svc, "multilayer-oci.tar")
    assert state(svc) == before


def test_restart_collects_what_a_crash_left(tmp_path: Path) -> None:
    db = MetadataStore(str(tmp_path / "berth.db"))
    svc = ImageService(str(tmp_path), db)
    load(svc, "busybox-docker-save.tar")
    before = state(svc)
    # What a crash between unpacking and the metadata commit leaves behind:
    svc.content.put(b"orphan blob")
    svc.snapshots.prepare("extract-deadbeef-sha256:x", svc.resolve("busybox").chain_id)
    svc.snapshots.prepare("orphan-layer")
    svc.snapshots.commit("sha256:" + "e" * 64, "orphan-layer")
    svc.snapshots.prepare("container-snapshot")  # not ours to collect
    os.makedirs(tmp_path / "snapshots" / "overlay" / "4242" / "fs")
    (tmp_path / "tmp" / "load-crashed").mkdir()
    (tmp_path / "content" / "ingest" / "blob-partial").write_bytes(b"x")
    svc.snapshots.close()
    svc = ImageService(str(tmp_path), db)
    after = state(svc)
    assert after["snapshots"] == sorted(before["snapshots"] + ["container-snapshot"])
    assert {k: v for k, v in after.items() if k not in ("snapshots", "dirs")} == \
        {k: v for k, v in before.items() if k not in ("snapshots", "dirs")}
    svc.snapshots.close()
    db.close()


# -- archive layouts and concurrency ------------------------------------------------------

def _docker25_archive() -> bytes:
    """The multilayer image as Docker 25+ saves it: blobs under blobs/sha256, manifest paths
    pointing there, legacy layer paths as symlinks, plus an OCI index beside it."""
    import hashlib

    src = tarfile.open(FIXTURES / "multilayer-docker-save.tar")
    manifest = json.loads(src.extractfile("manifest.json").read())[0]
    blobs: dict[str, bytes] = {}
    config = src.extractfile(manifest["Config"]).read()
    blobs[hashlib.sha256(config).hexdigest()] = config
    layer_paths = []
    links = []
    for path in manifest["Layers"]:
        data = src.extractfile(path).read()
        hexd = hashlib.sha256(data).hexdigest()
        blobs[hexd] = data
        layer_paths.append(f"blobs/sha256/{hexd}")
        links.append({"name": path, "type": "symlink", "target": f"../blobs/sha256/{hexd}"})
    new_manifest = [{"Config": f"blobs/sha256/{hashlib.sha256(config).hexdigest()}",
                     "RepoTags": ["fixture/docker25:1"], "Layers": layer_paths}]
    entries = [{"name": f"blobs/sha256/{h}", "data": d} for h, d in blobs.items()]
    entries += links
    entries.append({"name": "manifest.json", "data": json.dumps(new_manifest).encode()})
    entries.append({"name": "oci-layout", "data": b'{"imageLayoutVersion":"1.0.0"}'})
    entries.append({"name": "index.json", "data": b'{"schemaVersion":2,"manifests":[]}'})
    return make_tar(entries)


def test_docker25_layout_loads(svc: ImageService, tmp_path: Path) -> None:
    assert load(svc, _docker25_archive()) == [{"stream": "Loaded image: fixture/docker25:1\n"}]
    assert svc.resolve("fixture/docker25:1").id == MULTI_ID
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(svc.prepare_rootfs("c", MULTI_ID), str(target)):
        assert_matches_expected(str(target))
    svc.remove_rootfs("c")


def test_concurrent_loads(svc: ImageService) -> None:
    import threading

    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            load(svc, name)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    names = ["multilayer-docker-save.tar", "busybox-docker-save.tar",
             "multilayer-docker-save.tar", "multilayer-oci.tar"]
    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(svc.list()) == 3
    assert len(list(svc.snapshots.walk())) == 3
