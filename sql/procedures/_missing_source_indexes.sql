-- The indexes on the source tables that make a routine run's reads follow its change, each
-- listed when the table exists and no index serves it: a valid, whole (not partial) btree
-- index of the default operator class whose first key column is the one a run looks up,
-- holding (as keys or INCLUDE columns) every column the run reads there (read_columns: the
-- looked-up column first, then the others, which the CREATE INDEX includes). migrate prints them
-- as notes, each with a CREATE INDEX CONCURRENTLY (which blocks no writer of a production
-- table), and names the plain index on the same column that the covering one can replace;
-- nothing needs them, for without them a run scans instead.
-- The covering one on survey_result matters most: the survey results of one patient journey
-- arrive over weeks, between everyone else's, so each lies on a page of its own, and reading
-- a rescheduled journey's results through a plain index reads one table page per result
-- (at 100,000 journeys, the results of a small change's 1,000 journeys lay on 30,000 pages);
-- from the covering index they are a few index pages, with no table page read once VACUUM
-- has marked the pages all-visible.
CREATE OR REPLACE FUNCTION pipeline._missing_source_indexes()
RETURNS TABLE (table_name text, definition text, purpose text, replaces text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH recommended (table_name, read_columns, purpose) AS (
        VALUES
            ('public.patient_journey', ARRAY['id'],
             'routine runs look up the patient journeys they recompute by id, else they scan the table'),
            ('public.patient_journey', ARRAY['journey_id'],
             'routine runs find the patient journeys of a changed journey or activity, else they scan the table'),
            ('public.survey_result', ARRAY['patient_journey_id', 'activity_id', 'start_time', 'end_time'],
             'routine runs read the survey results of the patient journeys they recompute from it alone, '
             'else from one table page per result'),
            ('public.survey_result', ARRAY['activity_id'],
             'routine runs find the survey results of a changed activity, else they scan the table')
    )
    SELECT r.table_name,
           -- the key column, and the other columns read as INCLUDE columns
           format('CREATE INDEX CONCURRENTLY ON %s (%s)%s', r.table_name, r.read_columns[1],
                  CASE WHEN cardinality(r.read_columns) > 1
                       THEN format(' INCLUDE (%s)', array_to_string(r.read_columns[2:], ', ')) ELSE '' END),
           r.purpose,
           -- a plain index on the key column alone, which the covering one serves for too
           (SELECT min(i.indexrelid::regclass::text)
            FROM pg_catalog.pg_index AS i
            JOIN pg_catalog.pg_attribute AS k ON k.attrelid = i.indrelid AND k.attnum = i.indkey[0]
            WHERE cardinality(r.read_columns) > 1 AND i.indrelid = t.oid AND i.indnatts = 1
              AND i.indpred IS NULL AND k.attname = r.read_columns[1])
    FROM recommended AS r
    JOIN pg_catalog.pg_class AS t ON t.oid = to_regclass(r.table_name) AND t.relkind IN ('r', 'p')
    WHERE NOT EXISTS (
          SELECT FROM pg_catalog.pg_index AS i
          JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
          JOIN pg_catalog.pg_am AS am ON am.oid = ic.relam
          JOIN pg_catalog.pg_opclass AS o ON o.oid = i.indclass[0]
          JOIN pg_catalog.pg_attribute AS k ON k.attrelid = i.indrelid AND k.attnum = i.indkey[0]
          WHERE i.indrelid = t.oid
            AND i.indisvalid AND i.indpred IS NULL AND am.amname = 'btree' AND o.opcdefault
            AND k.attname = r.read_columns[1]
            -- every column read is a plain column of the index (an expression's attnum is 0)
            AND r.read_columns <@ ARRAY(SELECT a.attname::text
                                        FROM unnest(i.indkey::int2[]) AS x (attnum)
                                        JOIN pg_catalog.pg_attribute AS a
                                            ON a.attrelid = i.indrelid AND a.attnum = x.attnum))
    ORDER BY 1, 2
$$;

COMMENT ON FUNCTION pipeline._missing_source_indexes() IS
    'The recommended indexes on the source tables that no index serves: their CREATE INDEX, what each is for, '
    'and the plain index it can replace.';

-- For migrate, which runs as the owner.
REVOKE ALL ON FUNCTION pipeline._missing_source_indexes() FROM PUBLIC;
