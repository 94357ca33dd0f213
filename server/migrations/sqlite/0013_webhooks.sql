-- Events out (issue #17, ADR 0013): webhooks per organisation, the events derived from the
-- documents, and one delivery per event and subscription, retried until delivered.
--
-- `webhook_events` is written by the hazard's projection, in the projection's transaction, from
-- the events that took effect (and by the scheduler for what time derives: overdue, reminders).
-- The reconciler runs every projection that did not happen, so no event is lost across a crash.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organisations (id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    disabled_at INTEGER
) STRICT;
CREATE INDEX webhooks_org ON webhooks (org_id);

CREATE TABLE webhook_events (
    hazard_id     TEXT NOT NULL,
    -- The hazard event's id, or for a derived event its kind and date (`overdue:2026-03-05`).
    event_id      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    agency_id     TEXT NOT NULL,
    township_id   TEXT NOT NULL,
    detail        TEXT NOT NULL,
    -- When it happened (the device's time for a recorded event).
    at            INTEGER NOT NULL,
    author        TEXT NOT NULL,
    -- When the server first derived it.
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (hazard_id, event_id)
) STRICT;
CREATE INDEX webhook_events_enterprise ON webhook_events (enterprise_id, created_at);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    hazard_id       TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    webhook_id      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    failed_at       INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    PRIMARY KEY (hazard_id, event_id, webhook_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, next_attempt_at);
