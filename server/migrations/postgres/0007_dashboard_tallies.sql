-- Dashboard tallies, maintained by a trigger on hazards_view in the same transaction as the row
-- they count, so the dashboard reads a few hundred rows instead of scanning every hazard.
-- `rebuild` (DELETE + re-INSERT of hazards_view) keeps them true through the same trigger.
-- The SQLite migration of the same number holds the same tables and rules.

CREATE TABLE hazard_tallies (
    enterprise_id TEXT NOT NULL,
    agency_id     TEXT NOT NULL,
    township_id   TEXT NOT NULL,
    state         TEXT NOT NULL,
    grade         TEXT NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (enterprise_id, agency_id, township_id, state, grade)
);

CREATE TABLE hazard_month_tallies (
    enterprise_id TEXT NOT NULL,
    month         TEXT NOT NULL,
    created       BIGINT NOT NULL,
    closed        BIGINT NOT NULL,
    PRIMARY KEY (enterprise_id, month)
);

CREATE TABLE hazard_close_tallies (
    enterprise_id TEXT NOT NULL,
    tenths        BIGINT NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (enterprise_id, tenths)
);

-- China month (UTC+8, no daylight saving) of a millisecond timestamp.
CREATE FUNCTION china_month(ms BIGINT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS
$$ SELECT to_char(to_timestamp((ms / 1000 + 28800)::double precision) AT TIME ZONE 'UTC', 'YYYY-MM') $$;

CREATE FUNCTION hazards_view_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE hazard_tallies SET n = n - 1
        WHERE enterprise_id = OLD.enterprise_id AND agency_id = OLD.agency_id
          AND township_id = OLD.township_id AND state = OLD.state AND grade = OLD.grade;
        UPDATE hazard_month_tallies SET created = created - 1
        WHERE enterprise_id = OLD.enterprise_id AND month = china_month(OLD.created_at);
        IF OLD.state = 'closed' AND OLD.closed_at IS NOT NULL THEN
            UPDATE hazard_month_tallies SET closed = closed - 1
            WHERE enterprise_id = OLD.enterprise_id AND month = china_month(OLD.closed_at);
            UPDATE hazard_close_tallies SET n = n - 1
            WHERE enterprise_id = OLD.enterprise_id
              AND tenths = GREATEST(0, (OLD.closed_at - OLD.created_at + 4320000) / 8640000);
        END IF;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO hazard_tallies (enterprise_id, agency_id, township_id, state, grade, n)
        VALUES (NEW.enterprise_id, NEW.agency_id, NEW.township_id, NEW.state, NEW.grade, 1)
        ON CONFLICT (enterprise_id, agency_id, township_id, state, grade)
        DO UPDATE SET n = hazard_tallies.n + 1;
        INSERT INTO hazard_month_tallies (enterprise_id, month, created, closed)
        VALUES (NEW.enterprise_id, china_month(NEW.created_at), 1, 0)
        ON CONFLICT (enterprise_id, month) DO UPDATE SET created = hazard_month_tallies.created + 1;
        IF NEW.state = 'closed' AND NEW.closed_at IS NOT NULL THEN
            INSERT INTO hazard_month_tallies (enterprise_id, month, created, closed)
            VALUES (NEW.enterprise_id, china_month(NEW.closed_at), 0, 1)
            ON CONFLICT (enterprise_id, month) DO UPDATE SET closed = hazard_month_tallies.closed + 1;
            INSERT INTO hazard_close_tallies (enterprise_id, tenths, n)
            VALUES (NEW.enterprise_id, GREATEST(0, (NEW.closed_at - NEW.created_at + 4320000) / 8640000), 1)
            ON CONFLICT (enterprise_id, tenths) DO UPDATE SET n = hazard_close_tallies.n + 1;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER hazards_view_tally_insert_delete AFTER INSERT OR DELETE ON hazards_view
    FOR EACH ROW EXECUTE FUNCTION hazards_view_tally();
CREATE TRIGGER hazards_view_tally_update
    AFTER UPDATE OF enterprise_id, agency_id, township_id, state, grade, created_at, closed_at ON hazards_view
    FOR EACH ROW EXECUTE FUNCTION hazards_view_tally();
