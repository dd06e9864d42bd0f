"""Small helpers every layer may use: atomic files, ids, safe path joins, timestamps.

Heavier modules (tempfile, secrets, datetime) are imported where used: the CLI imports this
package on its start path.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing, json and contextlib stay off the CLI's start path
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "atomic_write",
    "atomic_write_json",
    "fsync_dir",
    "lazy_exports",
    "new_id",
    "read_json",
    "rfc3339_nano",
    "safe_join",
    "short_id",
    "suppress",
]


def new_id() -> str:
    """A 64-hex-digit random id, as Docker gives containers and exec instances."""
    import secrets

    return secrets.token_hex(32)


def short_id(full_id: str) -> str:
    """The 12-character prefix Docker prints; strips a ``sha256:`` prefix first."""
    return full_id.split(":", 1)[-1][:12]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or create inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644,
                 durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see either the old or the new file whole.

    ``durable`` adds the fsyncs that make the new content survive a power loss; state that only
    needs to survive a process crash (anything under the exec root, a tmpfs) can skip them.
    """
    import tempfile

    directory = os.path.dirname(os.fspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(directory)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, durable: bool = True) -> None:
    import json

    atomic_write(path, json.dumps(obj, separators=(",", ":")).encode(), durable=durable)


def read_json(path: str | os.PathLike[str]) -> Any:
    import json

    with open(path, "rb") as f:
        return json.load(f)


def safe_join(root: str, path: str) -> str:
    """Join ``path`` under ``root`` lexically, never escaping it (``..`` stops at the root).

    This does not resolve symlinks: code that then opens the result inside a tree it does not
    trust must resolve components itself (see ``berth.archive``) or work inside a chroot.
    """
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return os.path.join(root, *parts) if parts else root


def rfc3339_nano(ts: float | None = None) -> str:
    """A UTC timestamp as Docker writes them: ``2024-01-02T03:04:05.123456789Z``."""
    import datetime as _dt

    ns = time.time_ns() if ts is None else int(ts * 1_000_000_000)
    secs, frac = divmod(ns, 1_000_000_000)
    base = _dt.datetime.fromtimestamp(secs, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


class umask:  # lower case: used as ``with umask(0o022):``, as the function it replaced
    """Set the process umask for a ``with`` block, restoring the old one after."""

    def __init__(self, mask: int) -> None:
        self._mask = mask
        self._old: int | None = None

    def __enter__(self) -> None:
        self._old = os.umask(self._mask)

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            os.umask(self._old)


class suppress:  # noqa: N801 - named as the contextlib one it stands in for
    """``contextlib.suppress`` without importing contextlib (and with it collections and
    functools), which the runtime's and the CLI's start paths would pay for."""

    __slots__ = ("_kinds",)

    def __init__(self, *kinds: type[BaseException]) -> None:
        self._kinds = kinds

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, _value: object, _tb: object) -> bool:
        return kind is not None and issubclass(kind, self._kinds)


def lazy_exports(package: str, exports: dict[str, str]) -> Any:
    """A PEP 562 ``__getattr__`` for ``package``: each exported name is imported from its
    submodule (``exports[name]``) on first use and kept, so importing the package costs
    nothing until a name is needed (the CLI's and the daemon's start paths)."""
    import sys

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook's own name
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        qualified = f"{package}.{module}"
        __import__(qualified)
        value = getattr(sys.modules[qualified], name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
