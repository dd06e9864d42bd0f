"""The metadata store: migrations, WAL, and the containers table the container service uses."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from berth.errors import AlreadyExists, InvalidArgument, NotFound
from berth.metadata import MetadataStore
from berth.metadata.schema import MIGRATIONS

A = "a" * 64
B = "ab" + "c" * 62


@pytest.fixture
def db(tmp_path: Path) -> MetadataStore:
    store = MetadataStore(str(tmp_path / "berth.db"))
    yield store
    store.close()


def test_schema_is_migrated_once(tmp_path: Path) -> None:
    path = str(tmp_path / "berth.db")
    first = MetadataStore(path)
    assert first.schema_version() == MIGRATIONS[-1][0]
    first.close()
    again = MetadataStore(path)  # reopening applies nothing twice
    rows = again.read().execute("SELECT version FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == [m[0] for m in MIGRATIONS]
    mode = again.read().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    tables = {r[0] for r in again.read().execute("SELECT name FROM sqlite_master WHERE "
                                                 "type='table'")}
    assert {"images", "tags", "layers", "image_layers", "layer_blobs", "containers"} <= tables
    again.close()


def test_container_crud(db: MetadataStore) -> None:
    db.put_container(A, "web", "sha256:" + "1" * 64, "snap-a", "2024-01-01T00:00:00Z",
                     {"State": {"Running": False}})
    row = db.get_container(A)
    assert row is not None
    assert (row.name, row["image_id"], row.record) == ("/web", "sha256:" + "1" * 64,
                                                       {"State": {"Running": False}})
    db.update_container(A, {"State": {"Running": True}})
    assert db.get_container(A).record == {"State": {"Running": True}}
    assert db.containers_using_image("sha256:" + "1" * 64) == [A]
    assert [r.id for r in db.list_containers()] == [A]
    db.delete_container(A)
    assert db.get_container(A) is None
    assert db.list_containers() == []
    with pytest.raises(NotFound, match=f"No such container: {A}"):
        db.update_container(A, {})


def test_duplicate_names_use_dockers_message(db: MetadataStore) -> None:
    db.put_container(A, "/x", None, None, "1", {})
    with pytest.raises(AlreadyExists) as err:
        db.put_container(B, "x", None, None, "2", {})
    assert str(err.value) == (
        f'Conflict. The container name "/x" is already in use by container "{A}". '
        "You have to remove (or rename) that container to be able to reuse that name.")
    assert db.get_container(B) is None


def test_find_container(db: MetadataStore) -> None:
    db.put_container(A, "first", None, None, "1", {})
    db.put_container(B, "second", None, None, "2", {})
    assert db.find_container(A).id == A
    assert db.find_container("first").id == A
    assert db.find_container("/second").id == B
    assert db.find_container("aaa").id == A
    assert db.find_container("abc").id == B
    with pytest.raises(InvalidArgument, match="Multiple IDs found with provided prefix: a"):
        db.find_container("a")
    with pytest.raises(NotFound, match="No such container: nope"):
        db.find_container("nope")
    with pytest.raises(NotFound, match="No such container: ffff"):
        db.find_container("ffff")
    # A name that looks like another container's id prefix: the name wins, as in Docker.
    db.put_container("f" * 64, "abc", None, None, "3", {})
    assert db.find_container("abc").id == "f" * 64


def test_rename(db: MetadataStore) -> None:
    db.put_container(A, "one", None, None, "1", {})
    db.put_container(B, "two", None, None, "2", {})
    with pytest.raises(AlreadyExists):
        db.rename_container(A, "two")
    db.rename_container(A, "three")
    assert db.find_container("three").id == A


def test_transactions_roll_back(db: MetadataStore) -> None:
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute("INSERT INTO containers(id, name) VALUES (?, ?)", (A, "/x"))
        raise RuntimeError
    assert db.get_container(A) is None


def test_threads_have_their_own_connections(db: MetadataStore) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(20):
                db.put_container(f"{i:02d}{j:02d}" + "0" * 60, f"c{i}-{j}", None, None,
                                 str(j), {"n": j})
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(db.list_containers()) == 160


def test_foreign_keys_are_enforced(db: MetadataStore) -> None:
    with pytest.raises(sqlite3.IntegrityError), db.transaction() as tx:
        tx.execute("INSERT INTO tags VALUES ('docker.io/library/x:latest', 'sha256:none', '')")
