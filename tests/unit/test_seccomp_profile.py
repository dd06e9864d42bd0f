"""Docker's default seccomp profile as an OCI section, and the section's validation and
compilation (libseccomp, no root needed)."""

from __future__ import annotations

import pytest

from berth.errors import InvalidArgument, NotImplementedYet
from berth.runtime import seccomp
from berth.runtime.spec import DEFAULT_CAPABILITIES, default_seccomp, default_spec


def names(section: dict) -> set[str]:
    return {n for rule in section["syscalls"] for n in rule["names"]}


def test_default_profile_is_an_allow_list_with_eperm() -> None:
    section = default_seccomp()
    assert section["defaultAction"] == "SCMP_ACT_ERRNO"
    assert section["defaultErrnoRet"] == 1
    assert {"read", "write", "execve", "capset", "setuid"} <= names(section)
    assert not {"mount", "umount2", "pivot_root", "kexec_load", "keyctl", "reboot",
                "init_module", "swapoff", "unshare", "setns"} & names(section)


def test_clone_is_allowed_only_without_namespace_flags() -> None:
    section = default_seccomp()
    clones = [r for r in section["syscalls"] if "clone" in r["names"]]
    assert len(clones) == 1
    (arg,) = clones[0]["args"]
    assert arg["op"] == "SCMP_CMP_MASKED_EQ" and arg["value"] == 0x7E020000


def test_capability_gated_syscalls_follow_the_capabilities() -> None:
    assert "reboot" not in names(default_seccomp(DEFAULT_CAPABILITIES))
    with_boot = default_seccomp([*DEFAULT_CAPABILITIES, "CAP_SYS_BOOT"])
    assert "reboot" in names(with_boot)
    admin = default_seccomp([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert {"mount", "umount2", "setns", "unshare", "clone3"} <= names(admin)
    clone3 = [r for r in default_seccomp()["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 and clone3[0]["errnoRet"] == 38  # ENOSYS, so libc falls back to clone


def test_default_spec_carries_the_profile_and_dockers_sysctls() -> None:
    spec = default_spec(["sh"])
    assert spec["linux"]["seccomp"] == default_seccomp()
    assert spec["linux"]["sysctl"] == {"net.ipv4.ip_unprivileged_port_start": "0",
                                       "net.ipv4.ping_group_range": "0 2147483647"}
    cg = [m for m in spec["mounts"] if m["destination"] == "/sys/fs/cgroup"]
    assert cg and "ro" in cg[0]["options"]


def test_compiles_to_bpf(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                         ) -> None:
    monkeypatch.setattr(seccomp, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(seccomp, "_cache", {})
    program = seccomp.compile_section(default_seccomp())
    assert program and len(program) % 8 == 0
    monkeypatch.setattr(seccomp, "_cache", {})
    assert seccomp.compile_section(default_seccomp()) == program  # from the file cache


@pytest.mark.parametrize(("section", "message"), [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
     "unknown 'SCMP_ARCH_VAX'"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]},
     "unknown syscall 'no_such_syscall'"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "index must be 0..5"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]},
     "bad argument condition"),
])
def test_bad_sections_name_the_field(section: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        seccomp.compile_section(section)


def test_notify_is_not_supported() -> None:
    with pytest.raises(NotImplementedYet):
        seccomp.compile_section({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]})


def test_unknown_but_real_syscalls_are_skipped() -> None:
    # 32-bit names in Docker's profile are unknown to libseccomp on x86_64: skipped.
    program = seccomp.compile_section({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "chown32", "fstat64"], "action": "SCMP_ACT_ALLOW"}]})
    assert program
