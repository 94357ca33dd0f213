-- Reminders by email (issue #17, ADR 0013): a user's address, and one delivery per reminder and
-- user of the hazard's enterprise, agency and township that has one.
ALTER TABLE users ADD COLUMN email TEXT;

CREATE TABLE email_deliveries (
    hazard_id       TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT,
    last_error      TEXT,
    PRIMARY KEY (hazard_id, event_id, user_id)
);
CREATE INDEX email_deliveries_due ON email_deliveries (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
