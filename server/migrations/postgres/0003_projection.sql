-- Read models projected from the documents (server/src/projection.rs). They can be dropped and
-- rebuilt from the `changes` log at any time.
CREATE TABLE visits_view (
    id                TEXT PRIMARY KEY,
    enterprise_id     TEXT NOT NULL,
    agency_id         TEXT NOT NULL,
    township_id       TEXT NOT NULL,
    visit_kind        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    inspectors        TEXT NOT NULL,
    started_at        BIGINT NOT NULL,
    ended_at          BIGINT,
    place             TEXT NOT NULL,
    checklist_total   BIGINT NOT NULL,
    checklist_failed  BIGINT NOT NULL,
    signed_by         TEXT,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX visits_view_enterprise ON visits_view (enterprise_id, started_at);
CREATE INDEX visits_view_township ON visits_view (township_id, started_at);

CREATE TABLE hazards_view (
    id                 TEXT PRIMARY KEY,
    visit_id           TEXT NOT NULL,
    enterprise_id      TEXT NOT NULL,
    agency_id          TEXT NOT NULL,
    township_id        TEXT NOT NULL,
    location           TEXT NOT NULL,
    description        TEXT NOT NULL,
    category           TEXT NOT NULL,
    grade              TEXT NOT NULL,
    criterion          TEXT NOT NULL,
    measure            TEXT NOT NULL,
    deadline           TEXT NOT NULL,
    current_deadline   TEXT,
    responsible_person TEXT NOT NULL,
    state              TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    closed_at          BIGINT,
    reported_at        BIGINT,
    under_supervision  BIGINT NOT NULL,
    photo_count        BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX hazards_view_township_state ON hazards_view (township_id, state);
CREATE INDEX hazards_view_enterprise ON hazards_view (enterprise_id);
CREATE INDEX hazards_view_agency ON hazards_view (agency_id);
CREATE INDEX hazards_view_state_deadline ON hazards_view (state, current_deadline);
CREATE INDEX hazards_view_grade ON hazards_view (grade, state);

CREATE TABLE hazard_events_view (
    hazard_id  TEXT NOT NULL,
    position   BIGINT NOT NULL,
    event_id   TEXT NOT NULL,
    at         BIGINT NOT NULL,
    author     TEXT NOT NULL,
    role       TEXT NOT NULL,
    device     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL,
    ignored    TEXT,
    PRIMARY KEY (hazard_id, position)
);

-- Major hazards reported to their township automatically when first seen by the server.
CREATE TABLE major_hazard_reports (
    hazard_id    TEXT PRIMARY KEY,
    township_id  TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    reported_at  BIGINT NOT NULL
);
CREATE INDEX major_hazard_reports_township ON major_hazard_reports (township_id, reported_at);
