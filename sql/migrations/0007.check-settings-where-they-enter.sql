-- depends: 0005.record-who-ran
-- Settings are checked where they enter (issue 8): a retention of '300000 years' passed the
-- old CHECK and then every run failed with "timestamp out of range", naming nothing; work_mem
-- was free text without a cap, applied to every run with set_config. An UPDATE now refuses a
-- value a run could not use, and names the constraint it breaks.
--
-- A value already stored that the new checks refuse stops this migration with the UPDATE that
-- fixes it, instead of being changed behind the DBA's back.
DO $$
DECLARE
    v_retention interval;
    v_work_mem text;
BEGIN
    SELECT s.retention, s.work_mem INTO v_retention, v_work_mem FROM pipeline.settings AS s;
    IF v_retention > interval '100 years' THEN
        RAISE EXCEPTION 'pipeline.settings.retention is %, more than the 100 years a run can purge by', v_retention
            USING ERRCODE = 'check_violation',
                  HINT = 'UPDATE pipeline.settings SET retention = interval ''100 years''; then run migrate again';
    END IF;
    IF NOT (v_work_mem ~ '^[0-9]{1,7}(kB|MB|GB)$'
            AND substring(v_work_mem FROM '^[0-9]+')::bigint
                * CASE substring(v_work_mem FROM '.B$') WHEN 'kB' THEN 1 WHEN 'MB' THEN 1024 ELSE 1048576 END
                BETWEEN 64 AND 2097152) THEN
        RAISE EXCEPTION 'pipeline.settings.work_mem is %, not a memory size from 64kB to 2GB', quote_literal(v_work_mem)
            USING ERRCODE = 'check_violation',
                  HINT = 'UPDATE pipeline.settings SET work_mem = ''256MB''; then run migrate again';
    END IF;
END
$$;

ALTER TABLE pipeline.settings
    ADD CONSTRAINT settings_retention_at_most_100_years CHECK (retention <= interval '100 years');

COMMENT ON CONSTRAINT settings_retention_at_most_100_years ON pipeline.settings IS
    'now() - retention must stay a valid timestamp, or every run fails while purging.';

-- An integer with a unit, as postgresql.conf writes it; the CASE keeps a malformed value from
-- reaching the cast (a CHECK that errors would name the cast, not the setting).
ALTER TABLE pipeline.settings
    ADD CONSTRAINT settings_work_mem_from_64kb_to_2gb CHECK (
        CASE WHEN work_mem ~ '^[0-9]{1,7}(kB|MB|GB)$'
             THEN substring(work_mem FROM '^[0-9]+')::bigint
                  * CASE substring(work_mem FROM '.B$') WHEN 'kB' THEN 1 WHEN 'MB' THEN 1024 ELSE 1048576 END
                  BETWEEN 64 AND 2097152
             ELSE false
        END);

COMMENT ON CONSTRAINT settings_work_mem_from_64kb_to_2gb ON pipeline.settings IS
    'work_mem is an integer followed by kB, MB or GB, from 64kB to 2GB: every run applies it with set_config.';

COMMENT ON COLUMN pipeline.settings.retention IS
    'Runs and failures older than this are purged by the next run; from 1 hour to 100 years.';
COMMENT ON COLUMN pipeline.settings.work_mem IS
    'work_mem for the run''s own transaction: room to join and sort millions of pairs in memory. '
    'An integer with kB, MB or GB, from 64kB to 2GB (e.g. ''256MB'').';
