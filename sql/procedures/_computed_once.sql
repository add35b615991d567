-- Its argument, unchanged: wrapped around one column of a subquery, it keeps that subquery a
-- level of its own without stopping parallel workers. PostgreSQL pulls a subquery up into the
-- query around it by putting its columns' expressions wherever that query names them, so a
-- CASE the levels above read five times is computed five times; it never pulls up a subquery
-- whose select list calls a VOLATILE function. The usual fence, OFFSET 0, also keeps every
-- level above it out of parallel workers (at 100,000 journeys a full run compared its 3.9 million
-- candidates with the stored rows in the leader alone). Once the subquery is kept, the call is
-- inlined away: an SQL function of one expression, with no SET clause, costs nothing per row.
-- It reads nothing and names nothing, so it is PARALLEL SAFE and needs no search_path (a test
-- holds its body to its argument alone). Polymorphic, so that it depends on no type of the
-- pipeline's (a migration's rollback drops those), which a standard body cannot be.
CREATE OR REPLACE FUNCTION pipeline._computed_once(p_value anyelement)
RETURNS anyelement
LANGUAGE sql
VOLATILE
PARALLEL SAFE
AS $$
    SELECT p_value
$$;

-- A marker in the run's candidate query, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._computed_once(anyelement) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._computed_once(anyelement) IS
    'Returns its argument; in a subquery''s select list it keeps the subquery from being pulled up (computed '
    'once) while letting parallel workers run the levels above.';
