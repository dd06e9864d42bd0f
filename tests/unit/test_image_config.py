"""Image config helpers: Docker's container-config shape, import changes, timestamps, JSON."""

from __future__ import annotations

import json

import pytest

from berth.errors import InvalidArgument
from berth.image.config import apply_changes, container_config, go_json, parse_created

DOCKER_KEYS = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
               "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir",
               "Entrypoint", "OnBuild", "Labels"]


def test_container_config_shape() -> None:
    assert list(container_config(None)) == DOCKER_KEYS
    full = container_config({"ExposedPorts": {"80/tcp": {}}, "Cmd": ["sh"],
                             "Healthcheck": {"Test": ["NONE"]}, "StopSignal": "SIGINT"})
    assert list(full) == (DOCKER_KEYS[:6] + ["ExposedPorts"] + DOCKER_KEYS[6:11]
                          + ["Healthcheck"] + DOCKER_KEYS[11:] + ["StopSignal"])
    assert full["Cmd"] == ["sh"] and full["Env"] is None and full["Image"] == ""


def test_changes() -> None:
    cfg = apply_changes({"Env": ["A=old", "KEEP=1"]}, [
        'CMD ["sh", "-c", "echo hi"]', "ENV A=new B=\"two words\"", "ENV LEGACY some value",
        "ENTRYPOINT exec me", "WORKDIR /w", "USER 1000:1000", "LABEL a=1 b=\"x y\"",
        "EXPOSE 80 53/udp", "VOLUME /data", "STOPSIGNAL SIGTERM", "cmd [\"lower\"]",
    ])
    assert cfg["Cmd"] == ["lower"]
    assert cfg["Env"] == ["KEEP=1", "A=new", "B=two words", "LEGACY=some value"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "exec me"]
    assert (cfg["WorkingDir"], cfg["User"], cfg["StopSignal"]) == ("/w", "1000:1000", "SIGTERM")
    assert cfg["Labels"] == {"a": "1", "b": "x y"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    for bad in ["RUN true", "FROM x", "EXPOSE abc"]:
        with pytest.raises(InvalidArgument):
            apply_changes({}, [bad])


def test_parse_created() -> None:
    assert parse_created("2026-11-29T09:38:09.109120682Z") == pytest.approx(1795945089.10912)
    assert parse_created("1970-01-01T01:00:00+01:00") == 0
    assert parse_created("") == 0 and parse_created("garbage") == 0


def test_go_json() -> None:
    raw = go_json({"b": "<&>", "a": "é"})
    assert raw == '{"b":"\\u003c\\u0026\\u003e","a":"é"}'.encode()
    assert json.loads(raw) == {"b": "<&>", "a": "é"}
