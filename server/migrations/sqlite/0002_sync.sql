-- Documents as a sequenced change log with snapshots (sync-core DocumentStore), and the
-- per-device delivery log (sync-core DeliveryLog).
CREATE TABLE documents (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('visit', 'hazard')),
    enterprise_id TEXT NOT NULL,
    last_seq      INTEGER NOT NULL,
    snapshot      BLOB,
    snapshot_seq  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX documents_enterprise ON documents (enterprise_id);

CREATE TABLE changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id        TEXT NOT NULL REFERENCES documents (id),
    enterprise_id TEXT NOT NULL,
    hash          BLOB NOT NULL,
    bytes         BLOB NOT NULL,
    UNIQUE (doc_id, hash)
) STRICT;
CREATE INDEX changes_enterprise_seq ON changes (enterprise_id, seq);
CREATE INDEX changes_doc_seq ON changes (doc_id, seq);

CREATE TABLE sync_kv (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE deliveries (
    device_id     TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    PRIMARY KEY (device_id, enterprise_id)
) STRICT;
