"""What berth writes validates against the OCI schemas in ../shared/specs/oci."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.daemon_fixture import FIXTURES, REPO, Berthd
from tests.daemon_fixture import SPECS as SHARED_SPECS

pytestmark = pytest.mark.root

SPECS = SHARED_SPECS / "oci"


def _validator(kind: str, name: str) -> Draft4Validator:
    folder = SPECS / kind

    def retrieve(uri: str) -> Resource:
        path = folder / uri.rsplit("/", 1)[-1]
        if not path.suffix:
            path = path.with_suffix(".json")
        return Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT4)

    schema = json.loads((folder / name).read_text())
    return Draft4Validator(schema, registry=Registry(retrieve=retrieve))


def _check(validator: Draft4Validator, document: Any) -> None:
    errors = sorted(validator.iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_saved_archive_validates(berthd: Berthd) -> None:
    status, _, _ = berthd.request("POST", "/images/load",
                                  (FIXTURES / "multilayer-docker-save.tar").read_bytes())
    assert status == 200
    status, body, _ = berthd.request("GET", "/images/get",
                                     query={"names": ["fixture/multilayer:1", "busybox"]})
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    _check(_validator("image", "image-layout-schema.json"), json.loads(files["oci-layout"]))
    index = json.loads(files["index.json"])
    _check(_validator("image", "image-index-schema.json"), index)
    manifests = [json.loads(files["blobs/sha256/" + d["digest"].split(":")[1]])
                 for d in index["manifests"]]
    assert len(manifests) == 2
    for manifest in manifests:
        _check(_validator("image", "image-manifest-schema.json"), manifest)
        config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
        _check(_validator("image", "config-schema.json"), config)


def test_container_bundle_validates(berthd: Berthd) -> None:
    """The config.json the daemon writes for a running container is a valid runtime spec."""
    cid = berthd.json("POST", "/containers/create",
                      {"Image": "busybox", "Cmd": ["sleep", "30"], "User": "nobody",
                       "HostConfig": {"Memory": 64 << 20, "CapAdd": ["NET_ADMIN"]}})["Id"]
    assert berthd.request("POST", f"/containers/{cid}/start")[0] == 204
    try:
        spec = json.loads(Path(berthd.exec_root, "containers", cid, "config.json").read_text())
        _check(_validator("runtime", "config-schema.json"), spec)
    finally:
        berthd.request("DELETE", f"/containers/{cid}", query={"force": "1"})


def test_runtime_spec_command_validates(tmp_path: Path) -> None:
    subprocess.run([str(REPO / ".venv" / "bin" / "berth-runtime"), "spec", "--bundle",
                    str(tmp_path)], check=True)
    _check(_validator("runtime", "config-schema.json"),
           json.loads((tmp_path / "config.json").read_text()))
