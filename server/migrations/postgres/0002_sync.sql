-- Documents as a sequenced change log with snapshots (sync-core DocumentStore), and the
-- per-device delivery log (sync-core DeliveryLog).
CREATE TABLE documents (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('visit', 'hazard')),
    enterprise_id TEXT NOT NULL,
    last_seq      BIGINT NOT NULL,
    snapshot      BYTEA,
    snapshot_seq  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX documents_enterprise ON documents (enterprise_id);

CREATE TABLE changes (
    seq           BIGSERIAL PRIMARY KEY,
    doc_id        TEXT NOT NULL REFERENCES documents (id),
    enterprise_id TEXT NOT NULL,
    hash          BYTEA NOT NULL,
    bytes         BYTEA NOT NULL,
    UNIQUE (doc_id, hash)
);
CREATE INDEX changes_enterprise_seq ON changes (enterprise_id, seq);
CREATE INDEX changes_doc_seq ON changes (doc_id, seq);

CREATE TABLE sync_kv (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE deliveries (
    device_id     TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (device_id, enterprise_id)
);
