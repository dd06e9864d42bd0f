"""The image service: load, import, save, list, inspect, tag, delete, prune; container root
filesystems and what a container changed in them (diff, export, commit).

Where things live (``data_root``):

* config, manifest and layer blobs in the content store (``content/``), so images can be saved
  and pushed byte for byte later;
* one committed overlay snapshot per layer stack, named by its chain ID (``snapshots/``), shared
  by every image and container built on it;
* the rows that tie them together in ``berth.db`` (``images``, ``tags``, ``layers``,
  ``image_layers``, ``layer_blobs``): the only thing that makes an image exist.

Crash consistency: blobs and snapshots are created first (blobs fsynced, snapshots synced
before they are committed), then all rows of one load, import or commit are written in one
transaction. A crash before it leaves unreferenced blobs and snapshots, which ``gc()`` (run
when the service starts) deletes; a crash after leaves a complete image. Failed operations
take back what they added, so the store is unchanged.

Concurrency: the slow part of a load, import or commit (ingest, unpacking in a worker process,
writing a layer) runs without the service lock, as an *operation* that names every blob and
snapshot it relies on; its one transaction, deletes and the mark-and-sweep GC (``collect``)
take the lock, and the sweep spares whatever an operation in flight has named. Two loads of
one layer both unpack it; the second commit finds the first and drops its own copy.
"""

from __future__ import annotations

import builtins
import contextlib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from berth.content import LocalStore
from berth.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from berth.image.config import (
    apply_changes,
    container_config,
    go_json,
    parse_created,
    stored_config,
)
from berth.metadata import MetadataStore
from berth.oci import (
    Digest,
    Reference,
    chain_ids,
    is_valid_tag,
    mediatype,
    parse_any_reference,
    parse_normalized,
)
from berth.snapshot import Mount, OverlaySnapshotter
from berth.util import new_id, rfc3339_nano, short_id
from berth.util.humanize import human_size

if TYPE_CHECKING:
    from berth.archive import Compression
    from berth.image.bundle import ImagePlan, LayerPlan
    from berth.image.save import SaveImage

# The layer code (tarfile, compressors, bundle and save formats) is imported where a pull,
# load, save, import, diff or commit needs it: the daemon serving containers never loads it.

__all__ = ["ImageRecord", "ImageService"]

ZERO_TIME = "0001-01-01T00:00:00Z"
EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
DOCKER_VERSION = "25.0.0"
# Mount points the runtime makes in a container's upper directory; Docker keeps them in an
# "init" layer, so they are not the container's changes.
RUNTIME_MOUNTPOINTS = frozenset({
    ".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "dev", "dev/console",
    "dev/pts", "dev/shm", "dev/mqueue", "proc", "sys",
})
EXTRACT_PREFIX = "extract-"


@dataclass(frozen=True)
class ImageRecord:
    id: str                       # "sha256:<hex>", the config digest
    config: dict[str, Any]        # the whole image config (``config["config"]`` is Cmd, Env…)
    chain_id: str | None          # top layer's chain ID = snapshot parent for containers
    repo_tags: list[str]          # familiar form: "busybox:latest"
    diff_ids: list[str]
    size: int
    created: str


def _media_type_for(kind: Compression) -> str:
    from berth.archive import Compression

    return {Compression.GZIP: mediatype.DOCKER_LAYER_GZIP,
            Compression.ZSTD: mediatype.OCI_LAYER_ZSTD}.get(kind, mediatype.DOCKER_LAYER)


def _filter_values(filters: dict[str, Any] | None, key: str) -> list[str]:
    """Engine API filters come as ``{"k": ["v"]}`` or the legacy ``{"k": {"v": true}}``."""
    if not filters or key not in filters:
        return []
    v = filters[key]
    if isinstance(v, dict):
        return [k for k, on in v.items() if on]
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


_LIST_FILTERS = frozenset({"dangling", "label", "reference", "before", "since"})

_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_until(value: str, now: float | None = None) -> float:
    """Docker's ``until``: a Go duration before now (``24h``, ``1h30m``), a Unix time
    (``1700000000[.5]``), or an RFC 3339 date or time."""
    now = time.time() if now is None else now
    v = value.strip()
    if v and _DURATION.sub("", v) == "":
        return now - sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(v))
    try:
        return float(v)
    except ValueError:
        pass
    if re.fullmatch(r"\d{4}-\d\d-\d\d", v):
        v += "T00:00:00Z"
    elif re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?", v):
        v += "Z" if v.count(":") == 2 else ":00Z"
    t = parse_created(v)
    if t == 0.0:
        raise InvalidArgument(f"invalid filter 'until={value}'")
    return t


def _progress(current: int, total: int) -> str:
    width = 50
    filled = width * current // total if total else width
    bar = "=" * filled + (">" if filled < width else "") + " " * max(0, width - filled - 1)
    return f"[{bar}]  {human_size(current)}/{human_size(total)}"


class ImageService:
    def __init__(self, data_root: str, db: MetadataStore,
                 container_running: Callable[[str], bool] | None = None,
                 emit: Callable[[str, str, dict[str, str]], None] | None = None) -> None:
        """``container_running`` tells running from stopped containers when deleting images
        (a running one is a conflict that ``force`` cannot override); without it, the
        container record's ``State.Running`` is used. ``emit(action, actor_id, attributes)``
        publishes Docker's image events (tag, untag, delete, import, load, save, prune)."""
        self.data_root = data_root
        self.db = db
        self._emit = emit
        self.content = LocalStore(os.path.join(data_root, "content"))
        self.snapshots = OverlaySnapshotter(os.path.join(data_root, "snapshots", "overlay"))
        self._tmp = os.path.join(data_root, "tmp")
        os.makedirs(self._tmp, exist_ok=True)
        self._lock = threading.RLock()
        self._ops: list[_Created] = []     # operations in flight (see ``_operation``)
        self._ops_lock = threading.Lock()
        self._container_running = container_running
        self.gc()

    # -- resolving -------------------------------------------------------------
    def _record(self, image_id: str) -> ImageRecord:
        db = self.db.read()
        row = db.execute("SELECT * FROM images WHERE id=?", (image_id,)).fetchone()
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        config = json.loads(row["config"])
        return ImageRecord(
            id=row["id"], config=config, chain_id=row["chain_id"],
            repo_tags=self._tags_of(image_id),
            diff_ids=list((config.get("rootfs") or {}).get("diff_ids") or []),
            size=row["size"], created=row["created"])

    def _refs_of(self, image_id: str) -> list[Reference]:
        rows = self.db.read().execute(
            "SELECT reference FROM tags WHERE image_id=? ORDER BY created, reference",
            (image_id,)).fetchall()
        return [parse_normalized(r[0]) for r in rows]

    def _tags_of(self, image_id: str) -> list[str]:
        return [r.familiar() for r in self._refs_of(image_id) if not r.digest]

    def _digests_of(self, image_id: str) -> list[str]:
        return [f"{r.familiar_name}@{r.digest}" for r in self._refs_of(image_id) if r.digest]

    def _event(self, action: str, actor_id: str, name: str | None = None,
               labels: dict[str, str] | None = None) -> None:
        """Docker's image event: the image's labels, then ``name`` (its reference or ID)."""
        if self._emit is None:
            return
        attributes = dict(labels if labels is not None else self._labels_of(actor_id))
        if name:
            attributes["name"] = name
        self._emit(action, actor_id, attributes)

    def _labels_of(self, image_id: str) -> dict[str, str]:
        row = self.db.read().execute("SELECT config FROM images WHERE id=?",
                                     (image_id,)).fetchone()
        if row is None:
            return {}
        return dict((json.loads(row["config"]).get("config") or {}).get("Labels") or {})

    def _resolve_id(self, ref: str) -> str:
        """Docker's lookup order: an ID; a reference; an ID prefix."""
        parsed = parse_any_reference(ref)
        db = self.db.read()
        if isinstance(parsed, str):
            if db.execute("SELECT 1 FROM images WHERE id=?", (parsed,)).fetchone():
                return parsed
            raise NotFound(f"No such image: {parsed}")
        named = parsed.with_default_tag()
        key = str(named)
        if named.digest and named.tag:
            key = str(Reference(named.domain, named.path, "", named.digest))
        row = db.execute("SELECT image_id FROM tags WHERE reference=?", (key,)).fetchone()
        if row is not None:
            return row[0]
        # name@digest also matches an image whose config digest is that digest.
        if named.digest and db.execute("SELECT 1 FROM images WHERE id=?",
                                       (named.digest,)).fetchone():
            return named.digest
        prefix = ref[len("sha256:"):] if ref.startswith("sha256:") else ref
        if 0 < len(prefix) < 64 and all(c in "0123456789abcdef" for c in prefix):
            rows = db.execute("SELECT id FROM images WHERE substr(id, 8, ?) = ? LIMIT 2",
                              (len(prefix), prefix)).fetchall()
            if len(rows) == 1:
                return rows[0][0]
        raise NotFound(f"No such image: {named.familiar()}")

    def resolve(self, ref: str) -> ImageRecord:
        """The image ``ref`` names: ``name[:tag]``, ``name@digest``, or a (short) ID."""
        return self._record(self._resolve_id(ref))

    # -- loading ---------------------------------------------------------------
    def load(self, stream: BinaryIO, quiet: bool = False) -> Iterator[dict[str, Any]]:
        """``docker load``: yields Docker's JSON message stream. Bad archives raise
        ``InvalidArgument`` before the first message, leaving the store unchanged."""
        import tempfile

        from berth.image.bundle import Bundle, read_bundle

        tmpdir = tempfile.mkdtemp(prefix="load-", dir=self._tmp)
        try:
            bundle = Bundle(tmpdir)
            bundle.extract(stream)
            plans = read_bundle(bundle)
            with self._operation() as op:
                messages: list[dict[str, Any]] = []
                for plan in plans:
                    for msg in self._unpack_plan(plan, op, quiet):
                        messages.append(msg)
                with self._lock:
                    renamed = self._commit_plans(plans)
            for plan in plans:
                self._event("load", plan.image_id, plan.image_id)
            yield from messages
            for plan in plans:
                if plan.tags:
                    for ref in plan.tags:
                        old = renamed.get((str(ref), plan.image_id))
                        if old:
                            yield {"stream": f"The image {ref.familiar()} already exists, renaming"
                                             f" the old one with ID {old} to empty string\n"}
                        yield {"stream": f"Loaded image: {ref.familiar()}\n"}
                else:
                    yield {"stream": f"Loaded image ID: {plan.image_id}\n"}
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _unpack_plan(self, plan: ImagePlan, created: _Created,
                     quiet: bool) -> Iterator[dict[str, Any]]:
        self._put_blob(plan.config_bytes, created)
        chains = chain_ids([layer.diff_id for layer in plan.layers])
        parent: str | None = None
        for layer, chain in zip(plan.layers, chains, strict=True):
            # Touched and looked at under the service lock, which a collection holds from mark
            # to sweep: one that has already chosen this layer cannot sweep it after we saw it
            # (a later layer is unpacked on it); a later one sees it touched and keeps it.
            with self._lock:
                created.touch(chain)
                if layer.blob_digest is not None:
                    created.touch(layer.blob_digest)
                have = self._have_layer(chain)
            if not have:
                size = os.path.getsize(layer.path)
                self._ingest_layer_blob(layer, created)
                self._unpack(layer, chain, parent, created)
                if not quiet:
                    yield {"status": "Loading layer", "progressDetail":
                           {"current": size, "total": size},
                           "progress": _progress(size, size), "id": short_id(layer.diff_id)}
            parent = chain

    def _put_blob(self, data: bytes, created: _Created) -> str:
        from berth.oci import sha256_digest

        digest = sha256_digest(data)
        created.touch(digest)
        if not self.content.exists(digest):
            self.content.put(data, digest)
            created.blobs.append(digest)
        return digest

    def _ingest_layer_blob(self, layer: LayerPlan, created: _Created) -> None:
        with open(layer.path, "rb") as f:
            head = f.read(6)
        from berth.archive import detect

        kind = detect(head)
        if not layer.media_type:
            layer.media_type = _media_type_for(kind)
        existed = layer.blob_digest is not None and self.content.exists(layer.blob_digest)
        if existed:
            return
        with open(layer.path, "rb") as f:
            info = self._ingest(f, created, layer.blob_digest, layer.size)
        layer.blob_digest = info.digest
        layer.size = info.size
        created.blobs.append(info.digest)

    def _ingest(self, stream: BinaryIO, created: _Created, expected: str | None = None,
                size: int | None = None) -> Any:
        """Ingest ``stream``, protected from GC from before it becomes visible."""
        writer = self.content.writer()
        try:
            while chunk := stream.read(1 << 20):
                writer.write(chunk)
            created.touch(str(writer.digest()))
        except BaseException:
            writer.abort()
            raise
        return writer.commit(expected, size)

    def _have_layer(self, chain: str) -> bool:
        row = self.db.read().execute("SELECT 1 FROM layers WHERE chain_id=?",
                                     (chain,)).fetchone()
        if row is None:
            return False
        try:
            self.snapshots.stat(chain)
        except NotFound:
            return False
        return True

    def _unpack(self, layer: LayerPlan, chain: str, parent: str | None,
                created: _Created) -> None:
        """Apply one layer into a new snapshot on ``parent`` and commit it as ``chain``."""
        from berth.image.unpack import apply_in_worker

        try:
            self.snapshots.stat(chain)
            return  # committed by an earlier, interrupted load: the content is verified
        except NotFound:
            pass
        key = f"{EXTRACT_PREFIX}{new_id()[:16]}-{chain}"
        self.snapshots.prepare(key, parent)
        try:
            assert layer.blob_digest is not None
            upper = self.snapshots.upperdir(key)
            # A layer may not expand beyond the free disk (a compression bomb is refused
            # before it fills the disk); ``Limits`` bounds headers and entries too.
            apply_in_worker(self.content.path(layer.blob_digest), upper, layer.diff_id,
                            _free_bytes(upper))
            _syncfs(upper)
            self.snapshots.commit(chain, key)
        except AlreadyExists:
            self.snapshots.remove(key)  # a concurrent load committed the same layer first
            return
        except BaseException:
            with contextlib.suppress(NotFound):
                self.snapshots.remove(key)
            raise
        created.snapshots.append(chain)

    def _commit_plans(self, plans: list[ImagePlan]) -> dict[tuple[str, str], str]:
        """Write all rows of a load in one transaction; say which tags moved from which image."""
        now = rfc3339_nano()
        renamed: dict[tuple[str, str], str] = {}
        with self.db.transaction() as db:
            for plan in plans:
                for ref in plan.tags:
                    row = db.execute("SELECT image_id FROM tags WHERE reference=?",
                                     (str(ref),)).fetchone()
                    if row is not None and row[0] != plan.image_id:
                        renamed[(str(ref), plan.image_id)] = row[0]
                self._write_image(db, plan, now)
        return renamed

    def _write_image(self, db: Any, plan: ImagePlan, now: str) -> None:
        chains = chain_ids([layer.diff_id for layer in plan.layers])
        sizes = []
        parent: str | None = None
        for layer, chain in zip(plan.layers, chains, strict=True):
            size = self.snapshots.usage(chain).size
            sizes.append(size)
            db.execute("INSERT OR IGNORE INTO layers VALUES (?,?,?,?,?)",
                       (chain, layer.diff_id, parent, chain, size))
            if layer.blob_digest is not None:
                db.execute("INSERT OR IGNORE INTO layer_blobs VALUES (?,?,?,?)",
                           (layer.blob_digest, layer.diff_id,
                            layer.media_type or mediatype.DOCKER_LAYER, layer.size or 0))
            parent = chain
        image_id = plan.image_id
        exists = db.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone()
        if not exists:
            db.execute(
                "INSERT INTO images(id, config, created, size, parent, chain_id, manifest,"
                " last_tag_time, added) VALUES (?,?,?,?,?,?,?,?,?)",
                (image_id, plan.config_bytes.decode("utf-8"), plan.config.get("created") or "",
                 sum(sizes), "", chains[-1] if chains else None, plan.manifest_digest, "", now))
            for i, chain in enumerate(chains):
                db.execute("INSERT INTO image_layers VALUES (?,?,?)", (image_id, i, chain))
        for ref in plan.tags:
            self._set_tag(db, ref, image_id, now)

    def _set_tag(self, db: Any, ref: Reference, image_id: str, now: str) -> None:
        db.execute("INSERT OR REPLACE INTO tags VALUES (?,?,?)", (str(ref), image_id, now))
        db.execute("UPDATE images SET last_tag_time=? WHERE id=?", (now, image_id))

    @contextlib.contextmanager
    def _operation(self) -> Iterator[_Created]:
        """A load, import or commit in flight: what it touches is kept from GC, and what it
        created is taken back if it fails. The slow part (ingest, unpack) runs without the
        service lock; only its one transaction takes it, so GC never sees half an image."""
        op = _Created(self._ops_lock)
        with self._ops_lock:
            self._ops.append(op)
        try:
            yield op
        except BaseException:
            with self._lock:
                self._undo(op)
            raise
        finally:
            with self._ops_lock:
                self._ops.remove(op)

    def _protected(self, but: _Created | None = None) -> set[str]:
        """Blobs and snapshots that operations in flight (other than ``but``) rely on."""
        with self._ops_lock:
            return {x for op in self._ops if op is not but for x in op.touched}

    def _undo(self, created: _Created) -> None:
        """Remove what ``created`` added, unless another operation or a row relies on it."""
        keep = self._protected(but=created)
        db = self.db.read()
        known = {r[0] for r in db.execute("SELECT chain_id FROM layers")}
        live = {r[0] for r in db.execute("SELECT id FROM images")}
        live |= {r[0] for r in db.execute("SELECT digest FROM layer_blobs")}
        for chain in reversed(created.snapshots):
            if chain in keep or chain in known:
                continue
            with contextlib.suppress(NotFound, Exception):
                self.snapshots.remove(chain)
        for digest in created.blobs:
            if digest in keep or digest in live:
                continue
            with contextlib.suppress(NotFound):
                self.content.delete(digest)

    # -- importing -------------------------------------------------------------
    def import_rootfs(self, stream: BinaryIO, repo_tag: str | None = None,
                      changes: list[str] | None = None, message: str = "") -> str:
        """``docker import``: a root filesystem tar (maybe compressed) becomes a one-layer
        image; ``changes`` are Dockerfile instructions applied to its config."""
        from berth.archive import open_decompressed
        from berth.image.bundle import ImagePlan, LayerPlan
        from berth.image.unpack import apply_in_worker

        ref: Reference | None = None
        if repo_tag:
            ref = parse_normalized(repo_tag)
            if ref.digest:
                raise InvalidArgument("cannot import digest reference")
            ref = ref.with_default_tag()
        cfg = apply_changes({}, changes or [])
        with self._operation() as created:
            info = self._ingest(stream, created)
            created.blobs.append(info.digest)
            with self.content.open(info.digest) as f:
                _, kind = open_decompressed(f)
            key = f"{EXTRACT_PREFIX}{new_id()[:16]}-import"
            self.snapshots.prepare(key)
            try:
                upper = self.snapshots.upperdir(key)
                result = apply_in_worker(self.content.path(info.digest), upper, None,
                                         _free_bytes(upper))
                _syncfs(upper)
                chain = result["diff_id"]
                created.touch(chain)
                try:
                    self.snapshots.commit(chain, key)
                    created.snapshots.append(chain)
                except AlreadyExists:
                    self.snapshots.remove(key)  # the same layer is there already
            except BaseException:
                with contextlib.suppress(NotFound):
                    self.snapshots.remove(key)
                raise
            now = rfc3339_nano()
            comment = message or "Imported from -"
            config = {
                "architecture": "amd64",
                "comment": comment,
                "config": stored_config(cfg),
                "created": now,
                "history": [{"created": now, "comment": comment}],
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [chain]},
            }
            config_bytes = go_json(config)
            self._put_blob(config_bytes, created)
            layer = LayerPlan(path="", diff_id=Digest(chain),
                              blob_digest=info.digest, media_type=_media_type_for(kind),
                              size=info.size)
            plan = ImagePlan(config_bytes, config, [layer], [ref] if ref else [])
            with self._lock, self.db.transaction() as db:
                self._write_image(db, plan, now)
        self._event("import", plan.image_id, plan.image_id)
        return plan.image_id

    # -- listing and inspecting ------------------------------------------------
    def list(self, all: bool = False, filters: dict[str, Any] | None = None,
             shared_size: bool = False) -> list[dict]:
        """``GET /images/json`` (API 1.44 shape), newest first. Filters: ``dangling``,
        ``label`` (``key`` or ``key=value``), ``reference`` (glob on name or name:tag),
        ``before``/``since`` (an image); others are refused as Docker refuses them."""
        for key in (filters or {}):
            if key not in _LIST_FILTERS:
                raise InvalidArgument(f"invalid filter '{key}'")
        dangling = _filter_values(filters, "dangling")
        for d in dangling:
            if d.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={d}'")
        labels = _filter_values(filters, "label")
        patterns = _filter_values(filters, "reference")
        before = [self._resolve_id(r) for r in _filter_values(filters, "before")]
        since = [self._resolve_id(r) for r in _filter_values(filters, "since")]
        summaries = self._summaries(shared_size=shared_size)
        created_of = {r[0]: parse_created(r[1]) for r in self.db.read().execute(
            "SELECT id, created FROM images")}  # full precision, as Docker compares
        children = {s["ParentId"] for s in summaries if s["ParentId"]}
        out = []
        for summary in summaries:
            image_id = summary["Id"]
            tags = summary["RepoTags"]
            if not tags and not summary["RepoDigests"] and not all and image_id in children:
                continue  # an intermediate image of a build or commit chain
            if dangling:
                want = dangling[0].lower() in ("true", "1")
                if want != (not tags):
                    continue
            if labels and not builtins.all(_label_match(summary["Labels"] or {}, f)
                                           for f in labels):
                continue
            if patterns:
                tags = [t for t in tags if any(_ref_match(p, t) for p in patterns)]
                if not tags:
                    continue
                summary = {**summary, "RepoTags": tags}
            created = created_of[image_id]
            if before and not builtins.all(created < created_of[b] for b in before):
                continue
            if since and not builtins.all(created > created_of[s] for s in since):
                continue
            out.append(summary)
        return out

    def _summaries(self, shared_size: bool = False,
                   containers: dict[str, int] | None = None) -> list[dict[str, Any]]:
        """Every image as ``ImageSummary``; ``SharedSize`` is the size of its layers that
        another image uses too, ``Containers`` how many containers use it (-1: not asked)."""
        db = self.db.read()
        rows = db.execute("SELECT id, config, created, size, parent FROM images").fetchall()
        layer_users: dict[str, int] = {}
        image_layers: dict[str, list[tuple[str, int]]] = {}
        if shared_size:
            for image_id, chain, size in db.execute(
                    "SELECT il.image_id, il.chain_id, l.size FROM image_layers il"
                    " JOIN layers l ON l.chain_id = il.chain_id"):
                layer_users[chain] = layer_users.get(chain, 0) + 1
                image_layers.setdefault(image_id, []).append((chain, size))
        refs: dict[str, list[Reference]] = {}
        for ref, image_id in db.execute("SELECT reference, image_id FROM tags"
                                        " ORDER BY created, reference"):
            refs.setdefault(image_id, []).append(parse_normalized(ref))
        out = []
        precise: dict[str, float] = {}
        for row in rows:
            image_id = row["id"]
            precise[image_id] = parse_created(row["created"])
            mine = refs.get(image_id, [])
            config = json.loads(row["config"])
            shared = -1
            if shared_size:
                shared = sum(size for chain, size in image_layers.get(image_id, [])
                             if layer_users[chain] > 1)
            out.append({
                "Containers": (containers or {}).get(image_id, 0) if containers is not None
                else -1,
                "Created": int(parse_created(row["created"])),
                "Id": image_id,
                "Labels": (config.get("config") or {}).get("Labels"),
                "ParentId": row["parent"],
                "RepoDigests": [f"{r.familiar_name}@{r.digest}" for r in mine if r.digest],
                "RepoTags": [r.familiar() for r in mine if not r.digest],
                "SharedSize": shared,
                "Size": row["size"],
            })
        out.sort(key=lambda d: (precise[d["Id"]], d["Id"]), reverse=True)
        return out

    def disk_usage(self, containers: list[dict[str, Any]],
                   types: list[str] | None = None) -> dict[str, Any]:
        """``GET /system/df``: images with their container counts and shared sizes, the
        containers (given as summaries) with their own writes (``SizeRw``), layers' total."""
        types = types or ["container", "image", "volume", "build-cache"]
        out: dict[str, Any] = {}
        usage: dict[str, int] = {}
        for c in containers:
            image_id = c.get("ImageID") or ""
            usage[image_id] = usage.get(image_id, 0) + 1
        if "image" in types:
            row = self.db.read().execute("SELECT COALESCE(SUM(size), 0) FROM layers").fetchone()
            out["LayersSize"] = row[0]
            out["Images"] = self._summaries(shared_size=True, containers=usage)
        if "container" in types:
            sizes = {r[0]: r[1] for r in self.db.read().execute("SELECT id, size FROM images")}
            listed = []
            for c in containers:
                c = dict(c)
                try:
                    rw = self.snapshots.usage(c["Id"]).size
                except NotFound:
                    rw = 0
                c["SizeRw"] = rw
                c["SizeRootFs"] = rw + sizes.get(c.get("ImageID") or "", 0)
                listed.append(c)
            out["Containers"] = listed
        if "volume" in types:
            out["Volumes"] = []
        if "build-cache" in types:
            out["BuildCache"] = []
        return out

    def prune(self, filters: dict[str, Any] | None = None,
              now: float | None = None) -> dict[str, Any]:
        """``POST /images/prune``: dangling images (or, with ``dangling=false``, every image)
        that no container uses, narrowed by ``label``/``label!`` and ``until``."""
        for key in (filters or {}):
            if key not in ("dangling", "label", "label!", "until"):
                raise InvalidArgument(f"invalid filter '{key}'")
        dangling_only = True
        for d in _filter_values(filters, "dangling"):
            if d.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={d}'")
            dangling_only = d.lower() in ("true", "1")
        until = [parse_until(u, now) for u in _filter_values(filters, "until")]
        labels = _filter_values(filters, "label")
        not_labels = _filter_values(filters, "label!")
        db = self.db.read()
        summaries = self._summaries()
        parents = {s["ParentId"] for s in summaries if s["ParentId"]}
        in_use = {r[0] for r in db.execute("SELECT DISTINCT image_id FROM containers"
                                           " WHERE image_id IS NOT NULL")}
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        for s in summaries:
            image_id = s["Id"]
            if dangling_only and (s["RepoTags"] or image_id in parents):
                continue
            if image_id in in_use:
                continue
            img_labels = s["Labels"] or {}
            if labels and not builtins.all(_label_match(img_labels, f) for f in labels):
                continue
            if not_labels and builtins.any(_label_match(img_labels, f) for f in not_labels):
                continue
            if until and not builtins.all(s["Created"] < u for u in until):
                continue
            sizes = {r[0]: r[1] for r in db.execute("SELECT chain_id, size FROM layers")}
            try:
                if s["RepoTags"] or s["RepoDigests"]:
                    records = []
                    for ref in s["RepoTags"] + s["RepoDigests"]:
                        with contextlib.suppress(NotFound):
                            records += self.delete(ref, force=False, prune=True)
                else:
                    records = self.delete(image_id, force=False, prune=True)
            except (Conflict, NotFound):
                continue  # in use after all, or gone with a child deleted before it
            deleted += records
            reclaimed += sum(sizes.get(r["Deleted"], 0) for r in records if "Deleted" in r)
        if self._emit is not None:
            self._emit("prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def inspect(self, ref: str) -> dict[str, Any]:
        """``GET /images/{name}/json`` (API 1.44: no VirtualSize)."""
        rec = self.resolve(ref)
        row = self.db.read().execute("SELECT parent, last_tag_time FROM images WHERE id=?",
                                     (rec.id,)).fetchone()
        c = rec.config
        out: dict[str, Any] = {
            "Id": rec.id,
            "RepoTags": rec.repo_tags,
            "RepoDigests": self._digests_of(rec.id),
            "Parent": row["parent"],
            "Comment": c.get("comment") or "",
            "Created": c.get("created") or ZERO_TIME,
        }
        if c.get("container"):
            out["Container"] = c["container"]
        if c.get("container_config"):
            out["ContainerConfig"] = container_config(c["container_config"])
        out.update({
            "DockerVersion": c.get("docker_version") or "",
            "Author": c.get("author") or "",
            "Config": container_config(c.get("config")),
            "Architecture": c.get("architecture") or "",
        })
        if c.get("variant"):
            out["Variant"] = c["variant"]
        out["Os"] = c.get("os") or ""
        if c.get("os.version"):
            out["OsVersion"] = c["os.version"]
        out["Size"] = rec.size
        out["GraphDriver"] = self._graph_driver(rec.chain_id)
        out["RootFS"] = {"Type": "layers"}
        if rec.diff_ids:
            out["RootFS"]["Layers"] = rec.diff_ids
        out["Metadata"] = {"LastTagTime": row["last_tag_time"] or ZERO_TIME}
        return out

    def _graph_driver(self, chain_id: str | None) -> dict[str, Any]:
        if chain_id is None:
            return {"Data": None, "Name": "overlay2"}
        dirs = self.snapshots.layer_dirs(chain_id)
        top = self.snapshots.snapshot_dir(chain_id)
        data = {}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(dirs[1:])
        data.update({"MergedDir": os.path.join(top, "merged"), "UpperDir": dirs[0],
                     "WorkDir": os.path.join(top, "work")})
        return {"Data": data, "Name": "overlay2"}

    def history(self, ref: str) -> list[dict[str, Any]]:
        """``GET /images/{name}/history``: newest first; layers are matched to the
        non-empty history entries in order."""
        rec = self.resolve(ref)
        sizes = [r[0] for r in self.db.read().execute(
            "SELECT l.size FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id"
            " WHERE il.image_id=? ORDER BY il.position", (rec.id,))]
        entries = []
        layer = 0
        for h in rec.config.get("history") or []:
            size = 0
            if not h.get("empty_layer"):
                size = sizes[layer] if layer < len(sizes) else 0
                layer += 1
            entries.append({"Id": "<missing>", "Created": int(parse_created(h.get("created"))),
                            "CreatedBy": h.get("created_by") or "", "Tags": None,
                            "Size": size, "Comment": h.get("comment") or ""})
        if not entries:
            entries.append({"Id": "<missing>", "Created": int(parse_created(rec.created)),
                            "CreatedBy": "", "Tags": None, "Size": rec.size, "Comment": ""})
        entries.reverse()
        # As Docker: the newest entry is the image, the next its parent, and so on up the
        # chain of local parents (commits and builds); the rest stay "<missing>".
        image_id: str | None = rec.id
        for entry in entries:
            if not image_id:
                break
            entry["Id"] = image_id
            entry["Tags"] = self._tags_of(image_id) or None
            row = self.db.read().execute("SELECT parent FROM images WHERE id=?",
                                         (image_id,)).fetchone()
            image_id = row[0] if row is not None else None
        return entries

    # -- saving ----------------------------------------------------------------
    def save_plan(self, names: list[str]) -> list[SaveImage]:
        """What ``docker save NAME…`` writes, resolved before the first byte: an ID saves the
        image untagged, ``repo`` every tag of that repository, ``repo:tag`` that tag."""
        from berth.image.save import SaveImage, SaveLayer

        if not names:
            raise InvalidArgument("no images specified")
        order: list[str] = []
        tags: dict[str, list[Reference]] = {}

        def add(image_id: str, ref: Reference | None) -> None:
            if image_id not in tags:
                order.append(image_id)
                tags[image_id] = []
            if ref is not None and all(str(r) != str(ref) for r in tags[image_id]):
                tags[image_id].append(ref)

        db = self.db.read()
        for name in names:
            parsed = parse_any_reference(name)
            if not isinstance(parsed, str) and not parsed.tag and not parsed.digest:
                rows = db.execute("SELECT reference, image_id FROM tags"
                                  " ORDER BY created, reference").fetchall()
                found = [(parse_normalized(r[0]), r[1]) for r in rows]
                found = [(r, i) for r, i in found if r.name == parsed.name and r.tag]
                if found:
                    for ref, image_id in found:
                        add(image_id, ref)
                    continue
            image_id = self._resolve_id(name)
            if isinstance(parsed, str) or self._is_id_ref(image_id, name) and not (
                    isinstance(parsed, Reference) and parsed.tag) or parsed.digest:
                add(image_id, None)
            else:
                add(image_id, parsed.with_default_tag())
        plan = []
        for image_id in order:
            row = db.execute("SELECT config FROM images WHERE id=?", (image_id,)).fetchone()
            if row is None:
                raise NotFound(f"No such image: {image_id}")
            config_bytes = row["config"].encode("utf-8")
            diff_ids = (json.loads(config_bytes).get("rootfs") or {}).get("diff_ids") or []
            plan.append(SaveImage(image_id, config_bytes, [SaveLayer(d) for d in diff_ids],
                                  tags[image_id]))
        return plan

    def save(self, plan: list[SaveImage], out: Any) -> None:
        """Write the archive of ``plan`` (from ``save_plan``) to ``out``."""
        from berth.image.save import write_save

        write_save(plan, out, self._open_layer)
        for image in plan:
            self._event("save", image.image_id, image.image_id)

    @contextlib.contextmanager
    def _open_layer(self, diff_id: str) -> Iterator[tuple[BinaryIO, int]]:
        """The uncompressed layer tar and its size: the stored blob itself when it was kept
        uncompressed, else decompressed into a temp file (a tar header needs the size first)."""
        import tempfile

        from berth.archive import open_decompressed

        rows = self.db.read().execute("SELECT digest FROM layer_blobs WHERE diff_id=?",
                                      (diff_id,)).fetchall()
        digests = sorted((r[0] for r in rows), key=lambda d: d != diff_id)
        for digest in digests:
            try:
                f = self.content.open(digest)
            except NotFound:
                continue
            with f:
                if digest == diff_id:
                    yield f, os.fstat(f.fileno()).st_size
                    return
                source, _ = open_decompressed(f)
                with tempfile.TemporaryFile(dir=self._tmp) as spool:
                    while chunk := source.read(1 << 20):
                        spool.write(chunk)
                    size = spool.tell()
                    spool.seek(0)
                    yield spool, size
                    return
        raise NotFound(f"layer {diff_id}: no blob in the content store")

    # -- tagging and deleting --------------------------------------------------
    def tag(self, ref: str, repo: str, tag: str = "") -> None:
        """``docker tag``: point ``repo:tag`` (tag defaults to ``latest``) at ``ref``'s image."""
        image_id = self._resolve_id(ref)
        new = parse_normalized(repo)
        if new.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        if tag:
            if not is_valid_tag(tag):
                raise InvalidArgument("invalid tag format")
            new = new.with_tag(tag)
        new = new.with_default_tag()
        if new.familiar_name == "sha256":
            raise InvalidArgument(
                "refusing to create an ambiguous tag using digest algorithm as name")
        with self._lock, self.db.transaction() as db:
            self._set_tag(db, new, image_id, rfc3339_nano())
        self._event("tag", image_id, new.familiar())

    def delete(self, ref: str, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        """``docker rmi``, with Docker's rules for untagging versus deleting and its
        conflict messages."""
        with self._lock:
            records: list[dict[str, str]] = []
            happened: list[tuple[str, str, dict[str, str]]] = []
            with self.db.transaction() as db:
                self._delete(db, ref, force, prune, records, happened)
            for action, image_id, labels in happened:
                self._event(action, image_id, image_id, labels)
            self._gc_layers()
            self._gc_content()
            return records

    def _delete(self, db: Any, ref: str, force: bool, prune: bool,
                records: list[dict[str, str]],
                happened: list[tuple[str, str, dict[str, str]]]) -> None:
        """Docker's ImageDelete, step by step: a name untags first and deletes only the last
        reference; an ID deletes, untagging a single repository's references on the way."""
        image_id = self._resolve_id(ref)
        refs = self._refs_of(image_id)
        by_id = self._is_id_ref(image_id, ref)
        labels = self._labels_of(image_id)
        if not by_id:
            named = parse_normalized(ref).with_default_tag()
            if not force and _single_repo(refs):
                users = self.db.containers_using_image(image_id)
                if users:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref}" '
                        f"(must force) - container {short_id(users[0])} is using its "
                        f"referenced image {short_id(image_id)}")
            key = next((r for r in refs if str(r) == str(named)
                        or (named.digest and r.digest == named.digest
                            and r.name == named.name)), named)
            db.execute("DELETE FROM tags WHERE reference=?", (str(key),))
            records.append({"Untagged": key.familiar()})
            happened.append(("untag", image_id, labels))
            remaining = [r for r in refs if str(r) != str(key)]
            if not key.digest and not any(
                    not r.digest and r.name == key.name for r in remaining):
                for r in [r for r in remaining if r.digest and r.name == key.name]:
                    db.execute("DELETE FROM tags WHERE reference=?", (str(r),))
                    records.append({"Untagged": r.familiar()})
                    happened.append(("untag", image_id, labels))
                    remaining.remove(r)
            if remaining:
                return
            self._delete_helper(db, image_id, records, force, prune, quiet=True,
                                happened=happened)
            return
        if _single_repo(refs):
            self._check_conflict(image_id, hard=True, soft=not force,
                                 active_refs=False)
            for r in refs:
                db.execute("DELETE FROM tags WHERE reference=?", (str(r),))
                records.append({"Untagged": r.familiar()})
                happened.append(("untag", image_id, labels))
        self._delete_helper(db, image_id, records, force, prune, quiet=False,
                            happened=happened)

    @staticmethod
    def _is_id_ref(image_id: str, ref: str) -> bool:
        hexpart = image_id.split(":", 1)[1]
        r = ref[len("sha256:"):] if ref.startswith("sha256:") else ref
        return bool(r) and hexpart.startswith(r)

    def _running(self, container_id: str) -> bool:
        if self._container_running is not None:
            return self._container_running(container_id)
        row = self.db.get_container(container_id)
        state = (row.record.get("State") or {}) if row is not None else {}
        return bool(state.get("Running"))

    def _check_conflict(self, image_id: str, hard: bool, soft: bool,
                        active_refs: bool) -> str | None:
        """Raise Docker's delete conflict, or return None. ``hard``: children, running
        containers; ``soft``: remaining tags, stopped containers."""
        db = self.db.read()
        msg: str | None = None
        cannot_force = False
        users = self.db.containers_using_image(image_id)
        if hard and db.execute("SELECT 1 FROM images WHERE parent=? LIMIT 1",
                               (image_id,)).fetchone():
            msg, cannot_force = "image has dependent child images", True
        elif hard and any(self._running(c) for c in users):
            running = next(c for c in users if self._running(c))
            msg = f"image is being used by running container {short_id(running)}"
            cannot_force = True
        elif soft and active_refs and db.execute("SELECT 1 FROM tags WHERE image_id=? LIMIT 1",
                                                 (image_id,)).fetchone():
            msg = "image is referenced in multiple repositories"
        elif soft and users:
            msg = f"image is being used by stopped container {short_id(users[0])}"
        if msg is None:
            return None
        kind = "cannot be forced" if cannot_force else "must be forced"
        raise Conflict(f"conflict: unable to delete {short_id(image_id)} ({kind}) - {msg}")

    def _delete_helper(self, db: Any, image_id: str, records: list[dict[str, str]],
                       force: bool, prune: bool, quiet: bool,
                       happened: list[tuple[str, str, dict[str, str]]]) -> None:
        try:
            self._check_conflict(image_id, hard=True, soft=not force, active_refs=True)
        except Conflict:
            if quiet:
                return  # untagging was the whole job; the image stays for its users
            raise
        parent = db.execute("SELECT parent FROM images WHERE id=?", (image_id,)).fetchone()
        labels = self._labels_of(image_id)
        for r in self._refs_of(image_id):
            db.execute("DELETE FROM tags WHERE reference=?", (str(r),))
            records.append({"Untagged": r.familiar()})
            happened.append(("untag", image_id, labels))
        db.execute("DELETE FROM image_layers WHERE image_id=?", (image_id,))
        db.execute("DELETE FROM images WHERE id=?", (image_id,))
        records.append({"Deleted": image_id})
        happened.append(("delete", image_id, {}))
        # Layers no image references any more go too, top first (children before parents).
        while True:
            orphans = db.execute(
                "SELECT chain_id FROM layers l WHERE NOT EXISTS (SELECT 1 FROM image_layers il"
                " WHERE il.chain_id = l.chain_id) AND NOT EXISTS (SELECT 1 FROM layers c"
                " WHERE c.parent = l.chain_id)").fetchall()
            if not orphans:
                break
            for (chain,) in orphans:
                db.execute("DELETE FROM layers WHERE chain_id=?", (chain,))
                records.append({"Deleted": chain})
        if prune and parent is not None and parent[0]:
            pid = parent[0]
            if db.execute("SELECT 1 FROM images WHERE id=?", (pid,)).fetchone() and \
                    not self._refs_of(pid):
                self._delete_helper(db, pid, records, False, True, quiet=True,
                                    happened=happened)

    # -- container root filesystems -------------------------------------------
    def prepare_rootfs(self, container_key: str, image_id: str) -> list[Mount]:
        """A new writable snapshot on the image's top layer, for a container."""
        rec = self._record(image_id)
        return self.snapshots.prepare(container_key, rec.chain_id,
                                      labels={"berth.image": rec.id})

    def rootfs_mounts(self, container_key: str) -> list[Mount]:
        return self.snapshots.mounts(container_key)

    def remove_rootfs(self, container_key: str) -> None:
        """Drop a container's snapshot; a missing one is fine (removal is retried on crash)."""
        with contextlib.suppress(NotFound):
            self.snapshots.remove(container_key)

    # -- a container's changes: diff, export, commit ---------------------------
    def _container_layers(self, container_key: str) -> tuple[list[str], set[str]]:
        """The container's layer directories (its upper first) and what to leave out."""
        from berth.archive.diff import ignored

        dirs = self.snapshots.layer_dirs(container_key)
        return dirs, ignored(dirs[0], dirs[1:], RUNTIME_MOUNTPOINTS)

    def container_changes(self, container_key: str) -> list[dict[str, Any]]:
        """``GET /containers/{id}/changes``: Docker's A/C/D list from the upper directory."""
        from berth.archive.diff import changes

        dirs, skip = self._container_layers(container_key)
        return [{"Path": p, "Kind": k} for p, k in changes(dirs[0], dirs[1:], skip)]

    def export_container(self, container_key: str, out: Any) -> None:
        """``GET /containers/{id}/export``: the flattened tree, without mounting it."""
        # Docker's export keeps the runtime's mount points (its init layer is part of the
        # tree), so nothing is left out here.
        from berth.archive import write_merged

        write_merged(self.snapshots.layer_dirs(container_key), out)

    def commit(self, container_key: str, image_id: str, config: dict[str, Any], *,
               container_id: str = "", run_config: dict[str, Any] | None = None,
               author: str = "", comment: str = "", reference: str | None = None) -> str:
        """``POST /commit``: a child of ``image_id`` whose new layer is the container's upper
        directory (whiteouts included; nothing if unchanged), with ``config`` as its config.

        The layer tar is a function of the upper tree alone, so the same changes give the
        same diff ID; the blob, the snapshot and the rows are made in the same order as a
        load (blob, snapshot, then one transaction), so a crash leaves no half image."""
        from berth.archive import WhiteoutMode, write_tar
        from berth.image.bundle import ImagePlan, LayerPlan

        ref: Reference | None = None
        if reference:
            ref = parse_normalized(reference)
            if ref.digest:
                raise InvalidArgument("refusing to create a tag with a digest reference")
            ref = ref.with_default_tag()
        parent = self._record(image_id)
        dirs, skip = self._container_layers(container_key)
        upper = dirs[0]
        with self._operation() as created:
            if parent.chain_id:
                created.touch(parent.chain_id)
            writer = self.content.writer()
            try:
                write_tar(upper, writer, whiteouts=WhiteoutMode.OVERLAY,  # type: ignore[arg-type]
                          ignore=skip)
                created.touch(str(writer.digest()))
            except BaseException:
                writer.abort()
                raise
            info = writer.commit()
            diff_id = str(info.digest)
            if diff_id == EMPTY_LAYER:
                with contextlib.suppress(NotFound):
                    if not self._blob_referenced(diff_id) and \
                            diff_id not in self._protected(but=created):
                        self.content.delete(diff_id)
                diff_ids = list(parent.diff_ids)
            else:
                created.blobs.append(diff_id)  # _undo keeps it if a row references it
                diff_ids = [*parent.diff_ids, diff_id]
                chain = chain_ids(diff_ids)[-1]
                with self._lock:  # as in a load: a collection cannot slip in between
                    created.touch(chain)
                    have = self._have_layer(chain)
                if not have:
                    self._snapshot_copy(upper, skip, chain, parent.chain_id, created)
            now = rfc3339_nano()
            cmd = (run_config or {}).get("Cmd") or []
            history = {"created": now, "created_by": " ".join(cmd)}
            if author:
                history["author"] = author
            if comment:
                history["comment"] = comment
            if diff_id == EMPTY_LAYER:
                history["empty_layer"] = True
            pc = parent.config
            image: dict[str, Any] = {
                "architecture": pc.get("architecture") or "amd64",
                "config": stored_config(config),
                "container": container_id,
                "container_config": stored_config(run_config or {}),
                "created": now,
                "docker_version": DOCKER_VERSION,
                "history": [*(pc.get("history") or []), history],
                "os": pc.get("os") or "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
            if author:
                image["author"] = author
            if comment:
                image["comment"] = comment
            if pc.get("variant"):
                image["variant"] = pc["variant"]
            config_bytes = go_json(dict(sorted(image.items())))
            self._put_blob(config_bytes, created)
            layers = [LayerPlan(path="", diff_id=Digest(d)) for d in parent.diff_ids]
            if diff_id != EMPTY_LAYER:
                layers.append(LayerPlan(path="", diff_id=Digest(diff_id),
                                        blob_digest=Digest(diff_id),
                                        media_type=mediatype.DOCKER_LAYER, size=info.size))
            plan = ImagePlan(config_bytes, image, layers, [ref] if ref else [])
            with self._lock, self.db.transaction() as db:
                self._write_image(db, plan, now)
                db.execute("UPDATE images SET parent=? WHERE id=?",
                           (parent.id, plan.image_id))
        if ref is not None:
            self._event("tag", plan.image_id, ref.familiar())
        return plan.image_id

    def _blob_referenced(self, digest: str) -> bool:
        row = self.db.read().execute("SELECT 1 FROM layer_blobs WHERE digest=?",
                                     (digest,)).fetchone()
        return row is not None

    def _snapshot_copy(self, upper: str, skip: set[str], chain: str, parent: str | None,
                       created: _Created) -> None:
        """A committed snapshot ``chain`` holding a copy of ``upper`` (whiteouts, opaque
        markers, hard links and all): ``cp -a`` copies at the speed of the disk."""
        key = f"{EXTRACT_PREFIX}{new_id()[:16]}-{chain}"
        self.snapshots.prepare(key, parent)
        try:
            dest = self.snapshots.upperdir(key)
            subprocess.run(["cp", "-a", "--reflink=auto", "--no-target-directory",
                            upper, dest], check=True, capture_output=True)
            for rel in sorted(skip, key=lambda r: -r.count("/")):
                path = os.path.join(dest, rel)
                if os.path.isdir(path) and not os.path.islink(path):
                    with contextlib.suppress(OSError):
                        os.rmdir(path)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
            _strip_overlay_state(dest)
            _syncfs(dest)
            self.snapshots.commit(chain, key)
        except AlreadyExists:
            self.snapshots.remove(key)  # a concurrent commit of the same changes won
            return
        except subprocess.CalledProcessError as e:
            with contextlib.suppress(NotFound):
                self.snapshots.remove(key)
            raise OSError(f"copying the container's changes failed: "
                          f"{e.stderr.decode(errors='replace').strip()}") from None
        except BaseException:
            with contextlib.suppress(NotFound):
                self.snapshots.remove(key)
            raise
        created.snapshots.append(chain)

    # -- garbage collection ----------------------------------------------------
    def _gc_layers(self) -> None:
        """Delete snapshots of layers no row references (committed ones only: active
        snapshots belong to containers, except our own interrupted extractions)."""
        known = {r[0] for r in self.db.read().execute("SELECT snapshot_key FROM layers")}
        infos = list(self.snapshots.walk())
        known |= self._protected()  # read after the walk: whatever it listed is covered
        children: dict[str, int] = {}
        for info in infos:
            if info.parent:
                children[info.parent] = children.get(info.parent, 0) + 1
        # Remove leaves repeatedly so whole unreferenced stacks go.
        changed = True
        removed: set[str] = set()
        while changed:
            changed = False
            for info in infos:
                if info.key in removed or info.key in known:
                    continue
                if info.kind.value != "committed" or children.get(info.key, 0):
                    continue
                with contextlib.suppress(NotFound, Exception):
                    self.snapshots.remove(info.key)
                    removed.add(info.key)
                    if info.parent:
                        children[info.parent] -= 1
                    changed = True

    def _gc_content(self) -> None:
        """Delete blobs of images and layers that are gone (configs, manifests, layer blobs)."""
        with self.db.transaction() as db:
            live = {r[0] for r in db.execute("SELECT id FROM images")}
            live |= {r[0] for r in db.execute("SELECT manifest FROM images WHERE manifest"
                                              " IS NOT NULL")}
            db.execute("DELETE FROM layer_blobs WHERE diff_id NOT IN"
                       " (SELECT diff_id FROM layers)")
            live |= {r[0] for r in db.execute("SELECT digest FROM layer_blobs")}
        blobs = list(self.content.walk())
        live |= self._protected()
        for info in blobs:
            if info.digest not in live:
                with contextlib.suppress(NotFound):
                    self.content.delete(info.digest)

    def collect(self) -> None:
        """Mark and sweep: delete snapshots and blobs that no row references and no operation
        in flight relies on. Safe at any time (loads and commits may run meanwhile)."""
        with self._lock:
            self._gc_layers()
            self._gc_content()

    def gc(self) -> None:
        """Delete what a crash or a failed operation left: temp dirs, partial ingests,
        interrupted extractions, unreferenced snapshots and blobs. Run when nothing else is
        using the service (at startup)."""
        with self._lock:
            for name in os.listdir(self._tmp):
                shutil.rmtree(os.path.join(self._tmp, name), ignore_errors=True)
            self.content.clean_ingest()
            self.snapshots.cleanup()
            for info in list(self.snapshots.walk()):
                if info.key.startswith(EXTRACT_PREFIX) and info.kind.value == "active":
                    with contextlib.suppress(NotFound, Exception):
                        self.snapshots.remove(info.key)
            self._gc_layers()
            self._gc_content()


class _Created:
    """One operation in flight: what it added (so a failure can take it back) and every
    blob and snapshot it relies on, added or found (so GC leaves them alone meanwhile)."""

    def __init__(self, lock: threading.Lock | None = None) -> None:
        self.lock = lock or threading.Lock()   # the service's, which ``_protected`` takes
        self.blobs: list[str] = []
        self.snapshots: list[str] = []
        self.touched: set[str] = set()

    def touch(self, item: str) -> None:
        with self.lock:
            self.touched.add(item)


def _strip_overlay_state(root: str) -> None:
    """Drop overlayfs' bookkeeping of the container's mount (origin, impure, redirect, …)
    from a copied upper directory: only the opaque marker means something in a layer."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [None, *dirnames, *filenames]:
            path = dirpath if name is None else os.path.join(dirpath, name)
            try:
                keys = os.listxattr(path, follow_symlinks=False)
            except OSError:
                continue
            for key in keys:
                if key.startswith("trusted.overlay.") and key != "trusted.overlay.opaque":
                    with contextlib.suppress(OSError):
                        os.removexattr(path, key, follow_symlinks=False)


def _free_bytes(path: str) -> int:
    vfs = os.statvfs(path)
    return vfs.f_bavail * vfs.f_frsize


def _syncfs(path: str) -> None:
    """Flush the filesystem holding ``path``: a snapshot is committed only once its files
    are on disk, as its rows will say they are."""
    import ctypes

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ctypes.CDLL(None, use_errno=True).syncfs(fd)
    finally:
        os.close(fd)


def _single_repo(refs: list[Reference]) -> bool:
    """Docker's ``isSingleReference``: at most one tag, and all references in one repo."""
    tags = [r for r in refs if not r.digest]
    if len(tags) > 1:
        return False
    return len({r.name for r in refs}) <= 1


def _label_match(labels: dict[str, str], f: str) -> bool:
    key, eq, value = f.partition("=")
    if key not in labels:
        return False
    return not eq or labels[key] == value


def _ref_match(pattern: str, familiar: str) -> bool:
    name, _, tag = familiar.rpartition(":") if ":" in familiar.split("/")[-1] else (
        familiar, "", "")
    if fnmatch.fnmatchcase(familiar, pattern):
        return True
    return ":" not in pattern and fnmatch.fnmatchcase(name, pattern)
