"""The overlay snapshotter: ``<data-root>/snapshots/overlay/<n>/{fs,work}``.

Each snapshot is a numbered directory: numbers rather than keys keep overlay's ``lowerdir=``
option short (it must fit in one page, ~100 layers). A longer chain is mounted on one
``flat-<n>`` lower instead: the merged tree of the chain, made once from hard links.
``fs`` is the snapshot's own tree: the upper directory while active, a lower directory once
committed. Whiteouts in ``fs`` are in overlayfs' format (see ``berth.archive``).

Metadata lives in a SQLite database of its own, ``snapshots/overlay/metadata.db``, so this
package depends on nothing at its level (the daemon's ``berth.db`` belongs to ``metadata``)::

    snapshots(id INTEGER PRIMARY KEY AUTOINCREMENT,   -- the directory number
              key TEXT UNIQUE NOT NULL,               -- active key, or committed name
              kind TEXT NOT NULL,                     -- active | view | committed
              parent TEXT REFERENCES snapshots(key),  -- a committed snapshot, or NULL
              labels TEXT NOT NULL,                   -- JSON object
              created TEXT NOT NULL, updated TEXT NOT NULL,
              size INTEGER, inodes INTEGER)           -- usage, cached once committed

Crash safety: a row and its directory are created in one transaction (the directory first,
the row committed last), and removal renames the directory to ``rm-<n>`` inside the
transaction before deleting it, so ``cleanup()`` at startup can delete every directory that
has no row.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import threading
from collections.abc import Iterator

from berth.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from berth.snapshot.base import Info, Kind, Mount, Usage
from berth.util import rfc3339_nano

__all__ = ["OverlaySnapshotter", "tree_usage"]

# The kernel copies a mount's options into one page; lowerdir= must fit with the rest.
MAX_MOUNT_OPTIONS = os.sysconf("SC_PAGESIZE") - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    parent TEXT REFERENCES snapshots(key),
    labels TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    size INTEGER,
    inodes INTEGER
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
"""


def tree_usage(path: str) -> Usage:
    """Bytes and inodes under ``path`` as Docker counts a layer's size: every non-directory's
    ``st_size`` (a symlink's is its target's length), each hard-linked inode once."""
    size = 0
    inodes = 0
    seen: set[int] = set()
    stack = [path]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for ent in it:
                st = ent.stat(follow_symlinks=False)
                if st.st_ino in seen:
                    continue
                if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                    seen.add(st.st_ino)
                inodes += 1
                if stat.S_ISDIR(st.st_mode):
                    stack.append(ent.path)
                else:
                    size += st.st_size
    return Usage(size, inodes)


class OverlaySnapshotter:
    """``Snapshotter`` on overlayfs. Thread-safe: one connection behind a lock."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o700, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(os.path.join(root, "metadata.db"), isolation_level=None,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- helpers -----------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _row(self, key: str) -> sqlite3.Row:
        row = self._db.execute("SELECT * FROM snapshots WHERE key=?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"snapshot {key}: not found")
        return row

    def _dir(self, sid: int) -> str:
        return os.path.join(self.root, str(sid))

    def fs_dir(self, sid: int) -> str:
        return os.path.join(self.root, str(sid), "fs")

    @staticmethod
    def _info(row: sqlite3.Row) -> Info:
        return Info(key=row["key"], kind=Kind(row["kind"]), parent=row["parent"],
                    labels=json.loads(row["labels"]), created=row["created"],
                    updated=row["updated"])

    def _chain(self, parent: str | None) -> list[int]:
        """Directory numbers of ``parent`` and its ancestors, nearest first."""
        ids: list[int] = []
        while parent is not None:
            row = self._row(parent)
            ids.append(row["id"])
            parent = row["parent"]
        return ids

    def _mounts(self, row: sqlite3.Row) -> list[Mount]:
        kind = Kind(row["kind"])
        if kind is Kind.COMMITTED:
            raise FailedPrecondition(f"snapshot {row['key']}: is committed, not active")
        chain = self._chain(row["parent"])
        lowers = [self.fs_dir(i) for i in chain]
        fixed = len(self.fs_dir(row["id"])) + len(self._dir(row["id"])) + 64
        if lowers and len(":".join(lowers)) + fixed >= MAX_MOUNT_OPTIONS:
            # Too many layers for one mount's options (a page): one flattened lower.
            lowers = [self._flattened(chain)]
        if kind is Kind.ACTIVE:
            if not lowers:
                return [{"type": "bind", "source": self.fs_dir(row["id"]),
                         "options": ["rw", "rbind"]}]
            return [{"type": "overlay", "source": "overlay", "options": [
                "lowerdir=" + ":".join(lowers),
                "upperdir=" + self.fs_dir(row["id"]),
                "workdir=" + os.path.join(self._dir(row["id"]), "work"),
            ]}]
        # A view is read-only: a bind of the single layer, or an overlay of lowers only
        # (overlayfs needs two lowers to mount without an upper directory).
        if len(lowers) <= 1:
            source = lowers[0] if lowers else self.fs_dir(row["id"])
            return [{"type": "bind", "source": source, "options": ["ro", "rbind"]}]
        return [{"type": "overlay", "source": "overlay",
                 "options": ["lowerdir=" + ":".join(lowers)]}]

    def _flattened(self, chain: list[int]) -> str:
        """A read-only merge of the layers ``chain`` (nearest first), made once and kept as
        ``flat-<n>`` beside the top layer ``<n>``: files are hard links to the layers'
        own (no data copied), whiteouts and opaque directories are carried out."""
        path = os.path.join(self.root, f"flat-{chain[0]}")
        if os.path.isdir(path):
            return path
        tmp = os.path.join(self.root, f"flat-tmp-{chain[0]}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        os.mkdir(tmp, 0o755)
        try:
            _materialize([self.fs_dir(i) for i in chain], tmp)
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    def _create(self, kind: Kind, key: str, parent: str | None,
                labels: dict[str, str] | None) -> list[Mount]:
        if not key:
            raise InvalidArgument("snapshot key must not be empty")
        now = rfc3339_nano()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM snapshots WHERE key=?", (key,)).fetchone():
                raise AlreadyExists(f"snapshot {key}: already exists")
            if parent is not None:
                prow = db.execute("SELECT kind FROM snapshots WHERE key=?",
                                  (parent,)).fetchone()
                if prow is None:
                    raise NotFound(f"parent snapshot {parent}: not found")
                if prow["kind"] != Kind.COMMITTED.value:
                    raise FailedPrecondition(f"parent snapshot {parent}: is not committed")
            cur = db.execute(
                "INSERT INTO snapshots(key, kind, parent, labels, created, updated)"
                " VALUES (?,?,?,?,?,?)",
                (key, kind.value, parent, json.dumps(labels or {}), now, now))
            sid = cur.lastrowid
            assert sid is not None
            path = self._dir(sid)
            shutil.rmtree(path, ignore_errors=True)  # a leftover of a crash before cleanup
            try:
                os.mkdir(path, 0o700)
                os.mkdir(os.path.join(path, "fs"), 0o755)
                if kind is Kind.ACTIVE:
                    os.mkdir(os.path.join(path, "work"), 0o700)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            row = db.execute("SELECT * FROM snapshots WHERE id=?", (sid,)).fetchone()
            return self._mounts(row)

    # -- the Snapshotter protocol ------------------------------------------
    def prepare(self, key: str, parent: str | None = None,
                labels: dict[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(self, key: str, parent: str | None = None,
             labels: dict[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.VIEW, key, parent, labels)

    def mounts(self, key: str) -> list[Mount]:
        with self._lock:
            return self._mounts(self._row(key))

    def upperdir(self, key: str) -> str:
        """The writable directory of the active snapshot ``key``: where a layer is unpacked."""
        with self._lock:
            row = self._row(key)
        if row["kind"] != Kind.ACTIVE.value:
            raise FailedPrecondition(f"snapshot {key}: is not active")
        return self.fs_dir(row["id"])

    def commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None:
        # Measure before taking the lock: walking a big tree must not stall other callers.
        row = self._row_locked(key)
        if row["kind"] != Kind.ACTIVE.value:
            raise FailedPrecondition(f"snapshot {key}: is not active")
        usage = tree_usage(self.fs_dir(row["id"]))
        with self._tx() as db:
            row = self._row(key)
            if row["kind"] != Kind.ACTIVE.value:
                raise FailedPrecondition(f"snapshot {key}: is not active")
            if db.execute("SELECT 1 FROM snapshots WHERE key=?", (name,)).fetchone():
                raise AlreadyExists(f"snapshot {name}: already exists")
            merged = {**json.loads(row["labels"]), **(labels or {})}
            db.execute(
                "UPDATE snapshots SET key=?, kind=?, labels=?, updated=?, size=?, inodes=?"
                " WHERE id=?",
                (name, Kind.COMMITTED.value, json.dumps(merged), rfc3339_nano(), usage.size,
                 usage.inodes, row["id"]))
        shutil.rmtree(os.path.join(self._dir(row["id"]), "work"), ignore_errors=True)

    def _row_locked(self, key: str) -> sqlite3.Row:
        with self._lock:
            return self._row(key)

    def remove(self, key: str) -> None:
        with self._tx() as db:
            row = self._row(key)
            if db.execute("SELECT 1 FROM snapshots WHERE parent=? LIMIT 1", (key,)).fetchone():
                raise FailedPrecondition(f"cannot remove snapshot {key}: it has children")
            db.execute("DELETE FROM snapshots WHERE id=?", (row["id"],))
            doomed = os.path.join(self.root, f"rm-{row['id']}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(self._dir(row["id"]), doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        shutil.rmtree(os.path.join(self.root, f"flat-{row['id']}"), ignore_errors=True)

    def stat(self, key: str) -> Info:
        with self._lock:
            return self._info(self._row(key))

    def walk(self) -> Iterator[Info]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM snapshots ORDER BY id").fetchall()
        for row in rows:
            yield self._info(row)

    def usage(self, key: str) -> Usage:
        row = self._row_locked(key)
        if row["kind"] == Kind.COMMITTED.value and row["size"] is not None:
            return Usage(row["size"], row["inodes"])
        return tree_usage(self.fs_dir(row["id"]))

    # -- overlay specifics -------------------------------------------------
    def layer_dirs(self, key: str) -> list[str]:
        """``fs`` directories of ``key`` and its ancestors, nearest first (for GraphDriver)."""
        with self._lock:
            row = self._row(key)
            return [self.fs_dir(row["id"])] + [self.fs_dir(i) for i in self._chain(row["parent"])]

    def snapshot_dir(self, key: str) -> str:
        with self._lock:
            return self._dir(self._row(key)["id"])

    def cleanup(self) -> list[str]:
        """Delete directories without a row (crash leftovers). Returns what was removed."""
        removed: list[str] = []
        with self._lock:
            ids = {str(r[0]) for r in self._db.execute("SELECT id FROM snapshots")}
            for name in os.listdir(self.root):
                path = os.path.join(self.root, name)
                if not os.path.isdir(path) or name in ids:
                    continue
                stale_flat = (name.startswith("flat-tmp-")
                              or (name.startswith("flat-") and name[5:] not in ids))
                if name.isdigit() or name.startswith("rm-") or stale_flat:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(name)
        return removed


def _materialize(layers: list[str], dest: str) -> None:
    """Write the merged tree of ``layers`` (top first) into the empty ``dest``."""
    from berth.archive.diff import walk_merged  # only for long chains; not on every import

    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    for item in walk_merged(layers):
        target = os.path.join(dest, item.rel)
        st = item.st
        m = st.st_mode
        if stat.S_ISDIR(m):
            os.mkdir(target, 0o700)
            _copy_xattrs(item.path, target)
            os.chown(target, st.st_uid, st.st_gid)
            os.chmod(target, stat.S_IMODE(m))
            dirs.append((target, st))
            continue
        if stat.S_ISREG(m):
            # Hard links to the committed layers' files: read-only there, so sharing is safe.
            key = (st.st_dev, st.st_ino)
            os.link(links.get(key, item.path), target, follow_symlinks=False)
            links.setdefault(key, target)
            continue
        if stat.S_ISLNK(m):
            os.symlink(os.readlink(item.path), target)
        elif stat.S_ISFIFO(m):
            os.mkfifo(target, 0o600)
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            os.mknod(target, stat.S_IFMT(m) | 0o600, st.st_rdev)
        else:
            continue
        os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
        if not stat.S_ISLNK(m):
            os.chmod(target, stat.S_IMODE(m))
        _copy_xattrs(item.path, target)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    for target, st in reversed(dirs):
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        keys = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for key in keys:
        if key.startswith("trusted.overlay."):
            continue
        with contextlib.suppress(OSError):
            os.setxattr(dst, key, os.getxattr(src, key, follow_symlinks=False),
                        follow_symlinks=False)
