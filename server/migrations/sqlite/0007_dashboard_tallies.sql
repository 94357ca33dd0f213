-- Dashboard tallies, maintained by triggers on hazards_view in the same transaction as the row
-- they count, so the dashboard reads a few hundred rows instead of scanning every hazard.
-- `rebuild` (DELETE + re-INSERT of hazards_view) keeps them true through the same triggers.

-- Hazards per (enterprise, agency, township, state, grade).
CREATE TABLE hazard_tallies (
    enterprise_id TEXT NOT NULL,
    agency_id     TEXT NOT NULL,
    township_id   TEXT NOT NULL,
    state         TEXT NOT NULL,
    grade         TEXT NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (enterprise_id, agency_id, township_id, state, grade)
);

-- Hazards found and closed per China month (UTC+8, no daylight saving), per enterprise.
CREATE TABLE hazard_month_tallies (
    enterprise_id TEXT NOT NULL,
    month         TEXT NOT NULL,
    created       BIGINT NOT NULL,
    closed        BIGINT NOT NULL,
    PRIMARY KEY (enterprise_id, month)
);

-- Closed hazards per enterprise and time to close in tenths of a day (for the median).
CREATE TABLE hazard_close_tallies (
    enterprise_id TEXT NOT NULL,
    tenths        BIGINT NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (enterprise_id, tenths)
);

CREATE TRIGGER hazards_view_tally_insert AFTER INSERT ON hazards_view
BEGIN
    INSERT INTO hazard_tallies (enterprise_id, agency_id, township_id, state, grade, n)
    VALUES (NEW.enterprise_id, NEW.agency_id, NEW.township_id, NEW.state, NEW.grade, 1)
    ON CONFLICT (enterprise_id, agency_id, township_id, state, grade) DO UPDATE SET n = n + 1;
    INSERT INTO hazard_month_tallies (enterprise_id, month, created, closed)
    VALUES (NEW.enterprise_id, strftime('%Y-%m', NEW.created_at / 1000 + 28800, 'unixepoch'), 1, 0)
    ON CONFLICT (enterprise_id, month) DO UPDATE SET created = created + 1;
    INSERT INTO hazard_month_tallies (enterprise_id, month, created, closed)
    SELECT NEW.enterprise_id, strftime('%Y-%m', NEW.closed_at / 1000 + 28800, 'unixepoch'), 0, 1
    WHERE NEW.state = 'closed' AND NEW.closed_at IS NOT NULL
    ON CONFLICT (enterprise_id, month) DO UPDATE SET closed = closed + 1;
    INSERT INTO hazard_close_tallies (enterprise_id, tenths, n)
    SELECT NEW.enterprise_id, MAX(0, (NEW.closed_at - NEW.created_at + 4320000) / 8640000), 1
    WHERE NEW.state = 'closed' AND NEW.closed_at IS NOT NULL
    ON CONFLICT (enterprise_id, tenths) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER hazards_view_tally_delete AFTER DELETE ON hazards_view
BEGIN
    UPDATE hazard_tallies SET n = n - 1
    WHERE enterprise_id = OLD.enterprise_id AND agency_id = OLD.agency_id
      AND township_id = OLD.township_id AND state = OLD.state AND grade = OLD.grade;
    UPDATE hazard_month_tallies SET created = created - 1
    WHERE enterprise_id = OLD.enterprise_id
      AND month = strftime('%Y-%m', OLD.created_at / 1000 + 28800, 'unixepoch');
    UPDATE hazard_month_tallies SET closed = closed - 1
    WHERE OLD.state = 'closed' AND OLD.closed_at IS NOT NULL AND enterprise_id = OLD.enterprise_id
      AND month = strftime('%Y-%m', OLD.closed_at / 1000 + 28800, 'unixepoch');
    UPDATE hazard_close_tallies SET n = n - 1
    WHERE OLD.state = 'closed' AND OLD.closed_at IS NOT NULL AND enterprise_id = OLD.enterprise_id
      AND tenths = MAX(0, (OLD.closed_at - OLD.created_at + 4320000) / 8640000);
END;

CREATE TRIGGER hazards_view_tally_update AFTER UPDATE OF enterprise_id, agency_id, township_id, state, grade, created_at, closed_at ON hazards_view
BEGIN
    UPDATE hazard_tallies SET n = n - 1
    WHERE enterprise_id = OLD.enterprise_id AND agency_id = OLD.agency_id
      AND township_id = OLD.township_id AND state = OLD.state AND grade = OLD.grade;
    UPDATE hazard_month_tallies SET created = created - 1
    WHERE enterprise_id = OLD.enterprise_id
      AND month = strftime('%Y-%m', OLD.created_at / 1000 + 28800, 'unixepoch');
    UPDATE hazard_month_tallies SET closed = closed - 1
    WHERE OLD.state = 'closed' AND OLD.closed_at IS NOT NULL AND enterprise_id = OLD.enterprise_id
      AND month = strftime('%Y-%m', OLD.closed_at / 1000 + 28800, 'unixepoch');
    UPDATE hazard_close_tallies SET n = n - 1
    WHERE OLD.state = 'closed' AND OLD.closed_at IS NOT NULL AND enterprise_id = OLD.enterprise_id
      AND tenths = MAX(0, (OLD.closed_at - OLD.created_at + 4320000) / 8640000);
    INSERT INTO hazard_tallies (enterprise_id, agency_id, township_id, state, grade, n)
    VALUES (NEW.enterprise_id, NEW.agency_id, NEW.township_id, NEW.state, NEW.grade, 1)
    ON CONFLICT (enterprise_id, agency_id, township_id, state, grade) DO UPDATE SET n = n + 1;
    INSERT INTO hazard_month_tallies (enterprise_id, month, created, closed)
    VALUES (NEW.enterprise_id, strftime('%Y-%m', NEW.created_at / 1000 + 28800, 'unixepoch'), 1, 0)
    ON CONFLICT (enterprise_id, month) DO UPDATE SET created = created + 1;
    INSERT INTO hazard_month_tallies (enterprise_id, month, created, closed)
    SELECT NEW.enterprise_id, strftime('%Y-%m', NEW.closed_at / 1000 + 28800, 'unixepoch'), 0, 1
    WHERE NEW.state = 'closed' AND NEW.closed_at IS NOT NULL
    ON CONFLICT (enterprise_id, month) DO UPDATE SET closed = closed + 1;
    INSERT INTO hazard_close_tallies (enterprise_id, tenths, n)
    SELECT NEW.enterprise_id, MAX(0, (NEW.closed_at - NEW.created_at + 4320000) / 8640000), 1
    WHERE NEW.state = 'closed' AND NEW.closed_at IS NOT NULL
    ON CONFLICT (enterprise_id, tenths) DO UPDATE SET n = n + 1;
END;
