"""Spec translation and validation, and Docker's default spec: pure, no root."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth import linux
from berth.errors import InvalidArgument, NotImplementedYet
from berth.runtime import config, default_spec
from berth.runtime.spec import DEFAULT_CAPABILITIES


def _cfg(tmp_path: Path, spec: dict) -> config.InitConfig:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    return config.from_spec(spec, str(tmp_path), "id")


def test_default_spec_translates(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, default_spec(["sh", "-c", "true"]))
    assert cfg.args == ["sh", "-c", "true"]
    assert cfg.rootfs == str(tmp_path / "rootfs")
    assert {ns.kind for ns in cfg.namespaces} == {"mount", "network", "uts", "pid", "ipc"}
    assert all(ns.path is None for ns in cfg.namespaces)
    assert cfg.capabilities is not None
    assert cfg.capabilities.effective == 0xA80425FB
    assert cfg.capabilities.bounding == 0xA80425FB
    assert cfg.capabilities.ambient == 0
    assert len(DEFAULT_CAPABILITIES) == 14
    assert "/proc/kcore" in cfg.masked_paths and "/proc/sys" in cfg.readonly_paths
    assert cfg.umask == 0o022 and cfg.path_env.startswith("/usr/local/sbin")


def test_default_mounts_parse_to_flags(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, default_spec(["true"]))
    by_dest = {m.destination: m for m in cfg.mounts}
    sysfs = by_dest["/sys"]
    assert sysfs.flags == (linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_NODEV | linux.MS_RDONLY)
    dev = by_dest["/dev"]
    assert dev.flags == linux.MS_NOSUID | linux.MS_STRICTATIME
    assert dev.data == "mode=755,size=65536k"
    pts = by_dest["/dev/pts"]
    assert pts.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert by_dest["/dev/shm"].data == "mode=1777,size=67108864"


def test_bind_mount_options() -> None:
    m = config.parse_mount({"destination": "/d", "type": "none", "source": "data",
                            "options": ["rbind", "ro", "rprivate", "tmpcopyup"]}, "/bundle")
    assert m.is_bind and m.flags & linux.MS_REC and m.flags & linux.MS_RDONLY
    assert m.propagation == (linux.MS_PRIVATE | linux.MS_REC,)
    assert m.source == "/bundle/data"  # relative bind sources are the bundle's
    assert m.data == ""
    rw = config.parse_mount({"destination": "/d", "type": "bind", "source": "/x",
                             "options": ["ro", "rw"]})
    assert rw.is_bind and not rw.flags & linux.MS_RDONLY


def test_overlay_mount_keeps_data() -> None:
    m = config.parse_mount({"type": "overlay", "source": "overlay",
                            "options": ["lowerdir=/l", "upperdir=/u", "workdir=/w"]})
    assert (m.type, m.flags, m.data) == ("overlay", 0, "lowerdir=/l,upperdir=/u,workdir=/w")


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda s: s["process"].update(args=[]), "process.args"),
    (lambda s: s["process"].update(cwd="relative"), "process.cwd"),
    (lambda s: s["process"].update(env=["NOEQUALS"]), "process.env"),
    (lambda s: s["linux"]["namespaces"].append({"type": "pid"}), "listed twice"),
    (lambda s: s["linux"]["namespaces"].append({"type": "nope"}), "unknown namespace"),
    (lambda s: s["linux"]["namespaces"].append({"type": "cgroup", "path": "/no/such"}),
     "does not exist"),
    (lambda s: s["mounts"].append({"destination": "rel", "type": "tmpfs"}), "not absolute"),
    (lambda s: s["process"].update(capabilities={"bounding": ["CAP_NOPE"]}), "CAP_NOPE"),
    (lambda s: s["process"].update(rlimits=[{"type": "RLIMIT_NOPE"}]), "RLIMIT_NOPE"),
    (lambda s: s["linux"].update(rootfsPropagation="sideways"), "rootfsPropagation"),
    (lambda s: s.update(hostname="h") or s["linux"].update(namespaces=[{"type": "mount"}]),
     "uts namespace"),
    (lambda s: s["root"].update(path="missing"), "root.path"),
])
def test_invalid_specs_name_the_field(tmp_path: Path, mutate, message: str) -> None:
    spec = default_spec(["true"])
    mutate(spec)
    with pytest.raises(InvalidArgument, match=message):
        _cfg(tmp_path, spec)


def test_user_namespaces_need_mappings(tmp_path: Path) -> None:
    spec = default_spec(["true"])
    spec["linux"]["namespaces"].append({"type": "user"})
    with pytest.raises(InvalidArgument, match="Mappings"):
        _cfg(tmp_path, spec)
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 10}]
    spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 10}]
    assert _cfg(tmp_path, spec).uid_mappings == [(0, 1000, 10)]


def test_time_namespaces_are_not_supported_yet(tmp_path: Path) -> None:
    spec = default_spec(["true"])
    spec["linux"]["namespaces"].append({"type": "time"})
    with pytest.raises(NotImplementedYet):
        _cfg(tmp_path, spec)


def test_process_fields(tmp_path: Path) -> None:
    spec = default_spec(["true"])
    spec["process"].update(
        user={"uid": 5, "gid": 6, "additionalGids": [7], "umask": 0o077},
        env=["PATH=/a:/b", "X=1"], rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}],
        oomScoreAdj=100, noNewPrivileges=True)
    cfg = _cfg(tmp_path, spec)
    assert (cfg.uid, cfg.gid, cfg.additional_gids, cfg.umask) == (5, 6, [7], 0o077)
    assert cfg.path_env == "/a:/b"
    import resource

    assert cfg.rlimits == [(resource.RLIMIT_NOFILE, 1, 2)]
    assert cfg.oom_score_adj == 100 and cfg.no_new_privileges


def test_capability_names_and_masks() -> None:
    assert linux.cap_mask(["CAP_CHOWN", "kill", "cap_sys_admin"]) == (1 | 1 << 5 | 1 << 21)
    with pytest.raises(ValueError):
        linux.cap_mask(["CAP_FLY"])
    assert linux.cap_mask(["CAP_FLY"], strict=False) == 0
    assert len(set(linux.CAPABILITIES.values())) == len(linux.CAPABILITIES)


def test_user_resolution(tmp_path: Path) -> None:
    from berth.errors import RuntimeFailure
    from berth.runtime.user import resolve

    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                     "app:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "group").write_text("root:x:0:\napp:x:1000:\nwheel:x:10:app,other\n"
                                    "audio:x:29:app\n")
    p, g = str(tmp_path / "passwd"), str(tmp_path / "group")
    app = resolve("app", p, g)
    assert (app.uid, app.gid, app.additional_gids, app.home) == (1000, 1000, [10, 29],
                                                                "/home/app")
    assert (resolve("1000", p, g).uid, resolve("1000", p, g).home) == (1000, "/home/app")
    assert (resolve("4242", p, g).uid, resolve("4242", p, g).gid) == (4242, 0)
    assert resolve("app:wheel", p, g).gid == 10
    assert resolve("0:77", p, g).gid == 77
    with pytest.raises(RuntimeFailure, match="unable to find user ghost"):
        resolve("ghost", p, g)
    with pytest.raises(RuntimeFailure, match="unable to find group nogroup"):
        resolve("app:nogroup", p, g)
