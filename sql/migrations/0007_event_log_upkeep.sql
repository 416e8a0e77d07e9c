-- Less background work on the event log, which only grows (docs/performance.md).
--
-- ANALYZE samples 30,000 rows and builds statistics for every column; for the
-- event jsonb that means reading and comparing large values, and no query
-- filters on it (reads go by event_id, received_at or event_type).
ALTER TABLE hub_event_log ALTER COLUMN event SET STATISTICS 0;

-- Autovacuum's insert-driven pass (PostgreSQL 13 and later) rescans the log
-- each time 20 % more rows arrived, only to set visibility bits nothing here
-- reads. Once for every doubling is enough; retention deletes still trigger
-- the ordinary vacuum.
ALTER TABLE hub_event_log SET (autovacuum_vacuum_insert_scale_factor = 1.0);
