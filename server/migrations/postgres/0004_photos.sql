-- Photos: metadata of stored photos (EXIF kept here, stripped from what is served) and which
-- documents reference which photo (who may see it).
CREATE TABLE photos (
    sha256       TEXT PRIMARY KEY,
    byte_size    BIGINT NOT NULL,
    media_type   TEXT NOT NULL,
    width        BIGINT NOT NULL,
    height       BIGINT NOT NULL,
    captured_at  TEXT,
    gps_lat      DOUBLE PRECISION,
    gps_lon      DOUBLE PRECISION,
    uploaded_by  TEXT NOT NULL,
    uploaded_at  BIGINT NOT NULL,
    meta         TEXT NOT NULL
);

CREATE TABLE photo_refs (
    sha256        TEXT NOT NULL,
    doc_id        TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    PRIMARY KEY (sha256, doc_id)
);
CREATE INDEX photo_refs_enterprise ON photo_refs (sha256, enterprise_id);
