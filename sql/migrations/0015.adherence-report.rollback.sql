-- CASCADE removes pipeline.adherence and pipeline.activity_adherence, which read it; `migrate`
-- of the earlier release creates them again (and 0013's rollback drops them anyway).
DROP FUNCTION IF EXISTS pipeline._adherence(date) CASCADE;
