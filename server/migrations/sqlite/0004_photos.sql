-- Photos: metadata of stored photos (EXIF kept here, stripped from what is served) and which
-- documents reference which photo (who may see it).
CREATE TABLE photos (
    sha256       TEXT PRIMARY KEY,
    byte_size    INTEGER NOT NULL,
    media_type   TEXT NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    captured_at  TEXT,
    gps_lat      REAL,
    gps_lon      REAL,
    uploaded_by  TEXT NOT NULL,
    uploaded_at  INTEGER NOT NULL,
    meta         TEXT NOT NULL
) STRICT;

CREATE TABLE photo_refs (
    sha256        TEXT NOT NULL,
    doc_id        TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    PRIMARY KEY (sha256, doc_id)
) STRICT;
CREATE INDEX photo_refs_enterprise ON photo_refs (sha256, enterprise_id);
