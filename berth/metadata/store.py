"""The SQLite metadata store, ``<data-root>/berth.db`` (schema: ``berth.metadata.schema``).

WAL mode with ``synchronous=FULL``: a committed transaction survives a power loss, readers
never block the writer. A container's run state (started, exited, paused, health) is
committed without the fsync: a daemon crash loses nothing; a power loss may lose the last such
change (the containers died with the host; a restart policy then sees the state before it).
That fsync was one of the three a ``docker run`` waited for.

The daemon calls services from worker threads, so each thread gets
its own connection; writes are ``BEGIN IMMEDIATE`` transactions, which serialise writers
up front instead of failing on lock upgrade.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from berth.errors import AlreadyExists, InvalidArgument, NotFound
from berth.metadata.schema import MIGRATIONS
from berth.util import rfc3339_nano

__all__ = ["ContainerRow", "MetadataStore"]


@dataclass(frozen=True)
class ContainerRow:
    """A row of ``containers``; ``name`` carries Docker's leading ``/``. Subscriptable too."""

    id: str
    name: str
    image_id: str | None
    snapshot_key: str | None
    created: str | None
    record: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


def _container(row: sqlite3.Row) -> ContainerRow:
    return ContainerRow(id=row["id"], name=row["name"], image_id=row["image_id"],
                        snapshot_key=row["snapshot_key"], created=row["created"],
                        record=json.loads(row["record"]) if row["record"] else {})


def _slash(name: str) -> str:
    return name if name.startswith("/") else "/" + name


class MetadataStore:
    def __init__(self, path: str) -> None:
        """Open (creating and migrating) the database at ``path``, usually ``<root>/berth.db``."""
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._migrate()

    # -- connections and transactions ------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30.0)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction: everything inside commits together or not at all.

        ``durable=False`` commits without waiting for the disk (``synchronous=NORMAL`` for
        this one commit): still atomic, and safe across a crash of the daemon, but a power
        loss may roll it back. For state that is rebuilt anyway after a reboot."""
        conn = self._conn()
        if conn.in_transaction:
            # Nested use joins the outer transaction, so helpers compose.
            yield conn
            return
        if not durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous=FULL")

    def read(self) -> sqlite3.Connection:
        """This thread's connection, for queries (each statement sees a consistent snapshot)."""
        return self._conn()

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                       "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)")
            done = {r[0] for r in db.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in MIGRATIONS:
                if version in done:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?,?,?)",
                           (version, name, rfc3339_nano()))

    def schema_version(self) -> int:
        row = self.read().execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # -- containers --------------------------------------------------------
    def put_container(self, id: str, name: str, image_id: str | None,
                      snapshot_key: str | None, created: str | None,
                      record: dict[str, Any]) -> None:
        name = _slash(name)
        with self.transaction() as db:
            other = db.execute("SELECT id FROM containers WHERE name=?", (name,)).fetchone()
            if other is not None:
                raise AlreadyExists(
                    f'Conflict. The container name "{name}" is already in use by container '
                    f'"{other[0]}". You have to remove (or rename) that container to be able '
                    "to reuse that name.")
            if db.execute("SELECT 1 FROM containers WHERE id=?", (id,)).fetchone():
                raise AlreadyExists(f"container {id} already exists")
            db.execute("INSERT INTO containers VALUES (?,?,?,?,?,?)",
                       (id, name, image_id, snapshot_key, created, json.dumps(record)))

    def update_container(self, id: str, record: dict[str, Any], durable: bool = True) -> None:
        with self.transaction(durable) as db:
            cur = db.execute("UPDATE containers SET record=? WHERE id=?",
                             (json.dumps(record), id))
            if cur.rowcount == 0:
                raise NotFound(f"No such container: {id}")

    def rename_container(self, id: str, new_name: str) -> None:
        new_name = _slash(new_name)
        with self.transaction() as db:
            other = db.execute("SELECT id FROM containers WHERE name=?", (new_name,)).fetchone()
            if other is not None and other[0] != id:
                raise AlreadyExists(
                    f'Conflict. The container name "{new_name}" is already in use by container '
                    f'"{other[0]}". You have to remove (or rename) that container to be able '
                    "to reuse that name.")
            cur = db.execute("UPDATE containers SET name=? WHERE id=?", (new_name, id))
            if cur.rowcount == 0:
                raise NotFound(f"No such container: {id}")

    def get_container(self, id: str) -> ContainerRow | None:
        row = self.read().execute("SELECT * FROM containers WHERE id=?", (id,)).fetchone()
        return _container(row) if row is not None else None

    def find_container(self, ref: str) -> ContainerRow:
        """By full id, by name (with or without ``/``), or by a unique id prefix."""
        if not ref:
            raise InvalidArgument("No container name or ID supplied")
        db = self.read()
        row = db.execute("SELECT * FROM containers WHERE id=?", (ref,)).fetchone()
        if row is None:
            row = db.execute("SELECT * FROM containers WHERE name=?", (_slash(ref),)).fetchone()
        if row is None and all(c in "0123456789abcdef" for c in ref):
            rows = db.execute("SELECT * FROM containers WHERE substr(id, 1, ?) = ? LIMIT 2",
                              (len(ref), ref)).fetchall()
            if len(rows) > 1:
                raise InvalidArgument(f"Multiple IDs found with provided prefix: {ref}")
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"No such container: {ref}")
        return _container(row)

    def list_containers(self) -> list[ContainerRow]:
        rows = self.read().execute("SELECT * FROM containers ORDER BY created, id").fetchall()
        return [_container(r) for r in rows]

    def delete_container(self, id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM containers WHERE id=?", (id,))

    def containers_using_image(self, image_id: str) -> list[str]:
        rows = self.read().execute("SELECT id FROM containers WHERE image_id=? ORDER BY created",
                                   (image_id,)).fetchall()
        return [r[0] for r in rows]
