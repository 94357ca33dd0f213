-- 1. Tallies that cannot deadlock (issue #21).
--
-- The trigger of 0007 decremented the old rows and incremented the new ones in the order of the
-- statements, so two projections moving hazards in opposite directions (state A -> B and B -> A,
-- or a hazard created in one month and closed in another beside one the other way round) took
-- the same tally rows in opposite orders and PostgreSQL killed one of them after
-- deadlock_timeout. Here each table's deltas are netted per key first (an edit that leaves the
-- key unchanged touches no tally row at all) and applied in one statement in key order, the
-- tables always in the order hazard_tallies, hazard_month_tallies, hazard_close_tallies. Every
-- projection therefore takes the tally rows it needs in one global order, which cannot form a
-- cycle. The tallies hold the same numbers as before.
CREATE OR REPLACE FUNCTION hazards_view_tally() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    has_old boolean := TG_OP IN ('UPDATE', 'DELETE');
    has_new boolean := TG_OP IN ('UPDATE', 'INSERT');
    old_closed boolean := false;
    new_closed boolean := false;
BEGIN
    IF has_old THEN
        old_closed := OLD.state = 'closed' AND OLD.closed_at IS NOT NULL;
    END IF;
    IF has_new THEN
        new_closed := NEW.state = 'closed' AND NEW.closed_at IS NOT NULL;
    END IF;

    INSERT INTO hazard_tallies AS t (enterprise_id, agency_id, township_id, state, grade, n)
    SELECT d.e, d.a, d.tw, d.s, d.g, SUM(d.n)
    FROM (
        SELECT OLD.enterprise_id AS e, OLD.agency_id AS a, OLD.township_id AS tw,
               OLD.state AS s, OLD.grade AS g, -1 AS n WHERE has_old
        UNION ALL
        SELECT NEW.enterprise_id, NEW.agency_id, NEW.township_id, NEW.state, NEW.grade, 1 WHERE has_new
    ) d
    GROUP BY d.e, d.a, d.tw, d.s, d.g
    HAVING SUM(d.n) <> 0
    ORDER BY d.e, d.a, d.tw, d.s, d.g
    ON CONFLICT (enterprise_id, agency_id, township_id, state, grade)
    DO UPDATE SET n = t.n + excluded.n;

    INSERT INTO hazard_month_tallies AS t (enterprise_id, month, created, closed)
    SELECT d.e, d.m, SUM(d.c), SUM(d.k)
    FROM (
        SELECT OLD.enterprise_id AS e, china_month(OLD.created_at) AS m, -1 AS c, 0 AS k WHERE has_old
        UNION ALL
        SELECT OLD.enterprise_id, china_month(OLD.closed_at), 0, -1 WHERE old_closed
        UNION ALL
        SELECT NEW.enterprise_id, china_month(NEW.created_at), 1, 0 WHERE has_new
        UNION ALL
        SELECT NEW.enterprise_id, china_month(NEW.closed_at), 0, 1 WHERE new_closed
    ) d
    GROUP BY d.e, d.m
    HAVING SUM(d.c) <> 0 OR SUM(d.k) <> 0
    ORDER BY d.e, d.m
    ON CONFLICT (enterprise_id, month)
    DO UPDATE SET created = t.created + excluded.created, closed = t.closed + excluded.closed;

    INSERT INTO hazard_close_tallies AS t (enterprise_id, tenths, n)
    SELECT d.e, d.tenths, SUM(d.n)
    FROM (
        SELECT OLD.enterprise_id AS e,
               GREATEST(0, (OLD.closed_at - OLD.created_at + 4320000) / 8640000) AS tenths,
               -1 AS n WHERE old_closed
        UNION ALL
        SELECT NEW.enterprise_id, GREATEST(0, (NEW.closed_at - NEW.created_at + 4320000) / 8640000), 1
        WHERE new_closed
    ) d
    GROUP BY d.e, d.tenths
    HAVING SUM(d.n) <> 0
    ORDER BY d.e, d.tenths
    ON CONFLICT (enterprise_id, tenths)
    DO UPDATE SET n = t.n + excluded.n;

    RETURN NULL;
END
$$;

-- 2. Which heads each document has, and which heads its read model was built from.
--
-- `heads` is kept by every append (in the same transaction as the changes); `projected_heads`
-- by every projection (in the same transaction as the read-model rows). Where they differ the
-- read model is behind the document, and the reconciler (server/src/reconcile.rs) projects it
-- again. `heads` is NULL for a document stored before this migration until the reconciler
-- reads it once. The partial index holds only the documents that need the reconciler, so
-- finding them costs nothing when there are none.
ALTER TABLE documents ADD COLUMN heads TEXT;
ALTER TABLE documents ADD COLUMN projected_heads TEXT;
CREATE INDEX documents_unprojected ON documents (id)
    WHERE heads IS NULL OR projected_heads IS NULL OR projected_heads <> heads;
