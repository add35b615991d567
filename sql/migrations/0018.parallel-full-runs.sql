-- depends: 0017.mark-fewer-held-back
-- pipeline._prepare_candidates gains p_parallel (a full run's tables out of pg_temp, so that
-- parallel workers can read them); migrate re-creates it.
DROP FUNCTION IF EXISTS pipeline._prepare_candidates(boolean);
