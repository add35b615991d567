-- Days in one offset token's number and unit; numeric so that no input can overflow.
CREATE OR REPLACE FUNCTION pipeline._offset_days(p_number text, p_unit text)
RETURNS numeric
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_number::numeric * CASE p_unit WHEN 'd' THEN 1 WHEN 'w' THEN 7 WHEN 'm' THEN 30 WHEN 'y' THEN 365 END
$$;

COMMENT ON FUNCTION pipeline._offset_days(text, text) IS
    'Days of an offset: N times 1 (d), 7 (w), 30 (m) or 365 (y). Digits only; the caller checks the 36500-day limit.';
