"""Pure rules of commit and prune: Docker's config merge, ``changes`` and ``until``."""

from __future__ import annotations

import pytest

from berth.api.commit import merge_config
from berth.errors import InvalidArgument
from berth.image.config import apply_changes
from berth.image.service import parse_until

CONTAINER = {
    "Hostname": "abc", "User": "app", "Env": ["PATH=/bin", "A=container"],
    "Cmd": ["sh", "-c", "run"], "Entrypoint": None, "WorkingDir": "/w",
    "ExposedPorts": {"22/tcp": {}}, "Labels": {"l": "c", "k": "c"}, "Volumes": {"/v": {}},
    "StopSignal": "SIGINT",
}


def test_merge_takes_the_containers_config_where_the_request_is_silent() -> None:
    out = merge_config({}, CONTAINER)
    assert out["User"] == "app" and out["Cmd"] == ["sh", "-c", "run"]
    assert out["Env"] == ["PATH=/bin", "A=container"] and out["WorkingDir"] == "/w"
    assert out["ExposedPorts"] == {"22/tcp": {}} and out["Volumes"] == {"/v": {}}
    assert out["StopSignal"] == "SIGINT" and "Hostname" not in out


def test_changes_win_and_merge_by_key() -> None:
    user = apply_changes({}, ['CMD ["cat", "/x"]', "ENV A=1 B=2", "EXPOSE 80",
                              "LABEL k=changed", "USER root", "WORKDIR /x"])
    out = merge_config(user, CONTAINER)
    assert out["Cmd"] == ["cat", "/x"]
    assert out["Env"] == ["A=1", "B=2", "PATH=/bin"]
    assert out["ExposedPorts"] == {"22/tcp": {}, "80/tcp": {}}
    assert out["Labels"] == {"l": "c", "k": "changed"}
    assert (out["User"], out["WorkingDir"]) == ("root", "/x")


def test_an_entrypoint_change_drops_the_containers_cmd() -> None:
    out = merge_config(apply_changes({}, ['ENTRYPOINT ["/bin/app"]']), CONTAINER)
    assert out["Entrypoint"] == ["/bin/app"] and out.get("Cmd") is None


def test_bad_change_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="not a valid change command"):
        apply_changes({}, ["FROM busybox"])


@pytest.mark.parametrize("value,expected", [
    ("24h", 1_000_000 - 86_400), ("1h30m", 1_000_000 - 5_400), ("10s", 999_990),
    ("1700000000", 1_700_000_000), ("1700000000.5", 1_700_000_000.5),
    ("2001-02-03", 981_158_400), ("2001-02-03T04:05:06Z", 981_173_106),
    ("2001-02-03T04:05:06+01:00", 981_169_506),
])
def test_until(value: str, expected: float) -> None:
    assert parse_until(value, now=1_000_000) == pytest.approx(expected)


def test_until_refuses_nonsense() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'until=soon'"):
        parse_until("soon", now=0)
