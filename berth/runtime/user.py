"""Resolve Docker's ``--user`` (``name``, ``uid``, ``name:group``, ``uid:gid``) inside the
container, from its own /etc/passwd and /etc/group.

Docker resolves names against the image's files, not the host's. In berth the root filesystem
is only mounted inside the container's mount namespace, so the daemon cannot read them there:
it passes the string in the ``io.berth.user`` annotation and init resolves it after
``pivot_root``. Like Docker, the user's supplementary groups come from /etc/group, and HOME
from /etc/passwd when the environment does not set it.
"""

from __future__ import annotations

from berth.errors import RuntimeFailure

ANNOTATION = "io.berth.user"


class ResolvedUser:
    def __init__(self, uid: int, gid: int, additional_gids: list[int] | None = None,
                 home: str = "/") -> None:
        self.uid = uid
        self.gid = gid
        self.additional_gids = additional_gids or []
        self.home = home

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResolvedUser) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"ResolvedUser({vars(self)})"


def _read_entries(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f
                    if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        return []


def resolve(spec: str, passwd: str = "/etc/passwd", group: str = "/etc/group") -> ResolvedUser:
    """Resolve ``spec`` as Docker does; numeric ids need no entry, names must have one."""
    user_part, _, group_part = spec.partition(":")
    users = [e for e in _read_entries(passwd) if len(e) >= 4]
    groups = [e for e in _read_entries(group) if len(e) >= 3]
    entry = None
    for e in users:
        if e[0] == user_part or (user_part.isdigit() and e[2] == user_part):
            entry = e
            break
    if entry is None:
        if not user_part.isdigit():
            raise RuntimeFailure(f"unable to find user {user_part}: no matching entries in "
                                 "passwd file", 126)
        uid, gid, home, name = int(user_part), 0, "/", None
    else:
        uid, gid = int(entry[2]), int(entry[3])
        home = entry[5] if len(entry) > 5 and entry[5] else "/"
        name = entry[0]
    if group_part:
        match = [g for g in groups if g[0] == group_part or g[2] == group_part]
        if match:
            gid = int(match[0][2])
        elif group_part.isdigit():
            gid = int(group_part)
        else:
            raise RuntimeFailure(f"unable to find group {group_part}: no matching entries in "
                                 "group file", 126)
    extra: list[int] = []
    if name is not None:
        for g in groups:
            members = g[3].split(",") if len(g) > 3 and g[3] else []
            if name in members and g[2].isdigit() and int(g[2]) != gid:
                extra.append(int(g[2]))
    return ResolvedUser(uid=uid, gid=gid, additional_gids=extra, home=home)
