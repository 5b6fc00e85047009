"""The metadata schema, written once for every engine.

Three things differ between engines: the type of byte strings (``BLOB``, ``BYTEA``),
the auto-numbered primary key of ``nodes`` (SQLite's ``INTEGER PRIMARY KEY`` rowid
alias, PostgreSQL's ``BIGSERIAL``), and the collation of
the names the hub sorts (``{collate}``): names list in code-point order (= UTF-8 byte
order), which is SQLite's default ``BINARY`` and PostgreSQL's ``COLLATE "C"`` (a
database's default collation may be a locale's, which would sort "a" before "B").
Every other column type is spelled so both accept it (SQLite gives ``BIGINT`` integer
affinity).
"""

from __future__ import annotations

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY, name TEXT{collate} NOT NULL UNIQUE, created BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS filespaces (
    id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name TEXT{collate} NOT NULL, block_size BIGINT NOT NULL, created BIGINT NOT NULL,
    seq BIGINT NOT NULL DEFAULT 0, root_id BIGINT,
    UNIQUE (workspace_id, name));
CREATE TABLE IF NOT EXISTS tokens (
    key_id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    secret_hash TEXT NOT NULL, filespaces TEXT, read_only BIGINT NOT NULL,
    admin BIGINT NOT NULL, created BIGINT NOT NULL, revoked BIGINT, description TEXT);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, filespace_id TEXT NOT NULL REFERENCES filespaces(id),
    key_id TEXT NOT NULL, client TEXT, created BIGINT NOT NULL, expires BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id {serial_pk}, filespace_id TEXT NOT NULL, parent_id BIGINT,
    name TEXT{collate} NOT NULL, type TEXT NOT NULL, size BIGINT NOT NULL DEFAULT 0,
    mtime BIGINT NOT NULL, ctime BIGINT NOT NULL, version BIGINT NOT NULL DEFAULT 1,
    UNIQUE (parent_id, name));
CREATE INDEX IF NOT EXISTS nodes_filespace ON nodes (filespace_id, type);
CREATE TABLE IF NOT EXISTS file_blocks (
    node_id BIGINT NOT NULL, idx BIGINT NOT NULL, filespace_id TEXT NOT NULL,
    hash TEXT NOT NULL, length BIGINT NOT NULL, used BIGINT NOT NULL,
    PRIMARY KEY (node_id, idx));
CREATE INDEX IF NOT EXISTS file_blocks_hash ON file_blocks (filespace_id, hash);
CREATE TABLE IF NOT EXISTS blocks (
    filespace_id TEXT NOT NULL, hash TEXT NOT NULL, length BIGINT NOT NULL,
    state TEXT NOT NULL, last_seen BIGINT NOT NULL,
    PRIMARY KEY (filespace_id, hash));
CREATE TABLE IF NOT EXISTS changes (
    filespace_id TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL,
    op TEXT NOT NULL, node_id BIGINT, type TEXT, path TEXT NOT NULL, new_path TEXT,
    size BIGINT, version BIGINT, session_id TEXT,
    PRIMARY KEY (filespace_id, seq));
-- Each commit's footprint, so a partial overwrite built on an older version can be
-- merged at block granularity or refused (lucidlink/hub/core/files.py, "merge rule").
CREATE TABLE IF NOT EXISTS file_changes (
    node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE, version BIGINT NOT NULL,
    slots TEXT NOT NULL, resized BIGINT NOT NULL, size BIGINT NOT NULL,
    PRIMARY KEY (node_id, version));
-- Small blocks kept in the metadata store itself (lucidlink/hub/core/inline_blocks.py):
-- a block of at most the hub's inline limit lives here instead of the block store, so a
-- small file is written and read with its metadata, in one transaction and one answer.
CREATE TABLE IF NOT EXISTS block_data (
    filespace_id TEXT NOT NULL, hash TEXT NOT NULL, data {blob} NOT NULL,
    PRIMARY KEY (filespace_id, hash));
-- The SHA-256 of each fixed-size chunk of a block, computed by the hub from the bytes it
-- verified (lucidlink/hub/core/chunks.py): a client reading a small range of a block
-- fetches and verifies only the chunks it needs. ``digests`` is the concatenated raw
-- 32-byte digests, in chunk order.
CREATE TABLE IF NOT EXISTS block_chunks (
    filespace_id TEXT NOT NULL, hash TEXT NOT NULL, chunk_size BIGINT NOT NULL,
    digests {blob} NOT NULL, PRIMARY KEY (filespace_id, hash));
-- Commits already applied, by their client-generated change id: a retried commit is
-- answered with the first result instead of being applied twice.
CREATE TABLE IF NOT EXISTS applied_changes (
    filespace_id TEXT NOT NULL, change_id TEXT NOT NULL, result TEXT NOT NULL,
    created BIGINT NOT NULL, PRIMARY KEY (filespace_id, change_id));
CREATE INDEX IF NOT EXISTS applied_changes_created ON applied_changes (created);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    id TEXT PRIMARY KEY, filespace_id TEXT NOT NULL, path TEXT{collate} NOT NULL,
    session_id TEXT NOT NULL, mode TEXT NOT NULL, state TEXT NOT NULL,
    ticket BIGINT NOT NULL, created BIGINT NOT NULL, expires BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS locks_path ON locks (filespace_id, path, ticket);
CREATE INDEX IF NOT EXISTS locks_session ON locks (session_id);
-- Byte-range locks (lucidlink/hub/core/range_locks.py): [start_at, end_at) of a file,
-- held by a handle of a session (request_id: the client's, to answer a retry).
CREATE TABLE IF NOT EXISTS range_locks (
    id TEXT PRIMARY KEY, request_id TEXT NOT NULL, filespace_id TEXT NOT NULL, path TEXT NOT NULL,
    session_id TEXT NOT NULL, handle TEXT NOT NULL, mode TEXT NOT NULL,
    start_at BIGINT NOT NULL, end_at BIGINT NOT NULL, created BIGINT NOT NULL,
    expires BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS range_locks_path ON range_locks (filespace_id, path, start_at);
CREATE INDEX IF NOT EXISTS range_locks_session ON range_locks (session_id, handle);
CREATE INDEX IF NOT EXISTS range_locks_request ON range_locks (session_id, request_id);
-- Symbolic links (lucidlink/hub/core/links.py): a node of type 'link' has its target
-- text here (a table rather than a column, so a store made before links needs no migration).
CREATE TABLE IF NOT EXISTS symlinks (
    node_id BIGINT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
    filespace_id TEXT NOT NULL, target TEXT NOT NULL);
-- Connect (lucidlink/hub/connect.py): data stores and the files linked from them.
CREATE TABLE IF NOT EXISTS data_stores (
    id TEXT PRIMARY KEY, filespace_id TEXT NOT NULL REFERENCES filespaces(id),
    name TEXT{collate} NOT NULL, kind TEXT NOT NULL, access_key TEXT NOT NULL,
    secret_sealed TEXT NOT NULL, config TEXT NOT NULL, key_id TEXT NOT NULL,
    rekey_state TEXT NOT NULL, created BIGINT NOT NULL, updated BIGINT NOT NULL,
    UNIQUE (filespace_id, name));
CREATE TABLE IF NOT EXISTS external_files (
    node_id BIGINT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
    filespace_id TEXT NOT NULL, store_id TEXT NOT NULL REFERENCES data_stores(id),
    object_id TEXT NOT NULL, size BIGINT NOT NULL, etag TEXT, checksum TEXT,
    object_mtime BIGINT, linked BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS external_files_store ON external_files (store_id, node_id);
-- end Connect
"""


SORTED_COLUMNS = (("workspaces", "name"), ("filespaces", "name"), ("nodes", "name"), ("locks", "path"),
                  ("data_stores", "name"))
"""The text columns the hub sorts by: declared with ``{collate}``."""


def schema(serial_pk: str, collate: str = "", blob: str = "BLOB") -> str:
    """The DDL, with ``serial_pk`` as the definition of ``nodes.id``, ``collate`` after sorted
    names and ``blob`` as the type of byte strings (``BYTEA`` on PostgreSQL)."""
    return _SCHEMA.format(serial_pk=serial_pk, collate=collate, blob=blob)
