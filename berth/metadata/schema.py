"""The schema of ``<data-root>/berth.db``, as an append-only list of migrations.

Version 1::

    schema_migrations(version INTEGER PRIMARY KEY, name TEXT, applied TEXT)

    images(id TEXT PRIMARY KEY,           -- "sha256:<hex>" = digest of the config bytes
           config TEXT NOT NULL,          -- the config JSON exactly as loaded (ids depend on it)
           created TEXT NOT NULL,         -- the config's "created", RFC 3339
           size INTEGER NOT NULL,         -- sum of the layers' sizes, as Docker reports
           parent TEXT NOT NULL DEFAULT '',       -- local parent image (builds), else ''
           chain_id TEXT,                 -- chain ID of the top layer; NULL for no layers
           manifest TEXT,                 -- digest of the manifest it came with, if any
           last_tag_time TEXT NOT NULL DEFAULT '',
           added TEXT NOT NULL)           -- when this engine stored it

    tags(reference TEXT PRIMARY KEY,      -- normalised: "docker.io/library/busybox:latest",
                                          -- or "name@sha256:…" for a digest reference
         image_id TEXT NOT NULL REFERENCES images(id),
         created TEXT NOT NULL)

    layers(chain_id TEXT PRIMARY KEY,     -- names the stack; also the committed snapshot key
           diff_id TEXT NOT NULL,         -- sha256 of the uncompressed layer tar
           parent TEXT REFERENCES layers(chain_id),
           snapshot_key TEXT NOT NULL,
           size INTEGER NOT NULL)         -- bytes of this layer's own files

    image_layers(image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
                 position INTEGER NOT NULL,      -- 0 = base layer
                 chain_id TEXT NOT NULL REFERENCES layers(chain_id),
                 PRIMARY KEY (image_id, position))

    layer_blobs(digest TEXT PRIMARY KEY,  -- a (compressed) blob in the content store
                diff_id TEXT NOT NULL,    -- what it decompresses to
                media_type TEXT NOT NULL, size INTEGER NOT NULL)

    containers(id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL,  -- name with its leading "/"
               image_id TEXT, snapshot_key TEXT, created TEXT,
               record TEXT)               -- JSON, owned by the container service

Add a table or column by appending a migration; never edit one that has shipped.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "images, tags, layers, containers", """
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created TEXT NOT NULL,
    size INTEGER NOT NULL,
    parent TEXT NOT NULL DEFAULT '',
    chain_id TEXT,
    manifest TEXT,
    last_tag_time TEXT NOT NULL DEFAULT '',
    added TEXT NOT NULL
);
CREATE TABLE tags (
    reference TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    created TEXT NOT NULL
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT REFERENCES layers(chain_id),
    snapshot_key TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_chain ON image_layers(chain_id);
CREATE TABLE layer_blobs (
    digest TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    image_id TEXT,
    snapshot_key TEXT,
    created TEXT,
    record TEXT
);
CREATE INDEX containers_image ON containers(image_id);
"""),
]
