"""The content store conformance suite."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from berth.content import ContentStore, LocalStore
from berth.errors import InvalidArgument, NotFound

IMPLEMENTATIONS: dict[str, Callable[[str], ContentStore]] = {"local": LocalStore}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContentStore]:
    yield IMPLEMENTATIONS[request.param](str(tmp_path / "content"))


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_ingest_open_info_walk_delete(store: ContentStore) -> None:
    data = os.urandom(3 << 20)
    info = store.ingest(io.BytesIO(data), _d(data), len(data))
    assert (info.digest, info.size) == (_d(data), len(data))
    assert store.exists(_d(data))
    with store.open(_d(data)) as f:
        assert f.read() == data
    assert [i.digest for i in store.walk()] == [_d(data)]
    store.delete(_d(data))
    assert not store.exists(_d(data))
    with pytest.raises(NotFound):
        store.open(_d(data))
    with pytest.raises(NotFound):
        store.delete(_d(data))


def test_blobs_are_read_only_at_the_documented_path(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    info = store.put(b"abc")
    path = tmp_path / "blobs" / "sha256" / info.digest.hex
    assert path.read_bytes() == b"abc"
    assert (path.stat().st_mode & 0o777) == 0o444


@pytest.mark.parametrize(("expected", "size", "message"), [
    ("sha256:" + "0" * 64, None, "digest mismatch"),
    (None, 5, "size mismatch"),
    (None, 2, "larger than"),
])
def test_verification_failures_leave_nothing(store: ContentStore, tmp_path: Path,
                                             expected: str | None, size: int | None,
                                             message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.ingest(io.BytesIO(b"abc"), expected, size)
    assert list(store.walk()) == []
    assert os.listdir(tmp_path / "content" / "ingest") == []


def test_concurrent_ingests_of_one_blob(store: ContentStore) -> None:
    data = os.urandom(1 << 20)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            store.ingest(io.BytesIO(data), _d(data), len(data))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.read(_d(data)) == data
    assert len(list(store.walk())) == 1


def test_bad_digests_are_refused(store: ContentStore) -> None:
    for bad in ["sha256:xyz", "md5:abc", "../../etc/passwd"]:
        with pytest.raises(InvalidArgument):
            store.exists(bad)


class _Broken(io.BytesIO):
    """A stream that fails after ``n`` bytes, as a dropped download does."""

    def __init__(self, data: bytes, n: int) -> None:
        super().__init__(data[:n])

    def read(self, size: int = -1, /) -> bytes:
        chunk = super().read(size)
        if not chunk:
            raise ConnectionResetError("dropped")
        return chunk


def test_resumable_ingest(store: ContentStore) -> None:
    data = os.urandom(3 << 20)
    ref = "download-" + _d(data)
    with pytest.raises(ConnectionResetError):
        store.ingest(_Broken(data, 1 << 20), _d(data), len(data), ref=ref)
    assert not store.exists(_d(data))
    offset = store.status(ref)
    assert offset == 1 << 20
    info = store.ingest(io.BytesIO(data[offset:]), _d(data), len(data), ref=ref)
    assert info.digest == _d(data) and store.read(_d(data)) == data
    assert store.status(ref) == 0


def test_resumed_ingest_with_wrong_bytes_is_discarded(store: ContentStore) -> None:
    data = os.urandom(1 << 20)
    ref = "r1"
    with pytest.raises(ConnectionResetError):
        store.ingest(_Broken(data, 1000), _d(data), len(data), ref=ref)
    with pytest.raises(InvalidArgument):
        store.ingest(io.BytesIO(os.urandom(len(data) - 1000)), _d(data), len(data), ref=ref)
    assert store.status(ref) == 0 and not store.exists(_d(data))


def test_one_writer_per_ref(store: ContentStore) -> None:
    from berth.errors import Unavailable

    w = store.writer("same")
    w.write(b"abc")
    with pytest.raises(Unavailable):
        store.writer("same")
    w.close()
    w2 = store.writer("same")
    assert w2.offset == 3
    w2.write(b"def")
    assert w2.commit(_d(b"abcdef")).digest == _d(b"abcdef")


def test_startup_cleaning_keeps_fresh_resumable_ingests(store: ContentStore) -> None:
    w = store.writer("keep")
    w.write(b"partial")
    w.close()
    anon = store.writer()
    anon.write(b"x")  # a writer whose process died: never closed
    assert isinstance(store, LocalStore)
    store.clean_ingest()
    assert store.status("keep") == len(b"partial")
    store.clean_ingest(max_age=0)
    assert store.status("keep") == 0
