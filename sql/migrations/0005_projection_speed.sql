-- Cheaper writes for the projector, measured with bench/projector (see
-- docs/performance.md).

-- Most events update a row that already exists. Free space on each page lets
-- PostgreSQL update in place (HOT: no new index entries) while no indexed
-- column changes.
ALTER TABLE young_people SET (fillfactor = 70);
ALTER TABLE transition_plans SET (fillfactor = 70);
ALTER TABLE meeting_actions SET (fillfactor = 70);
ALTER TABLE group_state SET (fillfactor = 50);
ALTER TABLE hub_consumer_offsets SET (fillfactor = 50);

-- received_at only grows, so a BRIN index serves the retention prune at a
-- fraction of a B-tree's upkeep on every insert.
DROP INDEX hub_event_log_received_at;
CREATE INDEX hub_event_log_received_at ON hub_event_log USING brin (received_at);

-- Three values: a B-tree on it never beats a scan, and every insert paid for it.
DROP INDEX young_people_local_authority;

-- PL/pgSQL keeps its plan between calls (an SQL function with a FROM clause is
-- planned again in every statement that calls it), and most unions add nothing.
-- Every stored set is sorted and the projector sends sorted sets, so when b
-- adds nothing, a is already the sorted union.
CREATE OR REPLACE FUNCTION hub_text_union(a text[], b text[]) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF b IS NULL OR b <@ a THEN
        RETURN coalesce(a, '{}');
    END IF;
    RETURN ARRAY(SELECT DISTINCT x FROM unnest(coalesce(a, '{}') || b) AS x ORDER BY x);
END
$$;
