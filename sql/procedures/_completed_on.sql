-- The date that decides a done_* status of a pair with more than two dated survey results (the
-- run's candidates decide the others from the first and last date): the first result in the
-- window, else the first after it, else the last before it. A function, not the subquery it
-- holds: a subquery over a row's array is a correlated SubPlan, which PostgreSQL 15 keeps out
-- of parallel workers, and with it everything the candidate query does above the pairs (their
-- windows, held_back, the comparison with the stored rows) ran in the leader alone. Declared
-- PARALLEL SAFE: it reads nothing but its arguments. A standard body, bound when it is created:
-- no name in it is looked up on a caller's search_path, and no SET clause costs each call.
CREATE OR REPLACE FUNCTION pipeline._completed_on(p_result_dates date[], p_window_start_date date,
                                                  p_window_end_date date)
RETURNS date
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(min(d.d) FILTER (WHERE (d.d >= p_window_start_date OR p_window_start_date IS NULL)
                                       AND (d.d <= p_window_end_date OR p_window_end_date IS NULL)),
                    min(d.d) FILTER (WHERE d.d > p_window_end_date),
                    max(d.d) FILTER (WHERE d.d < p_window_start_date))
    FROM unnest(p_result_dates) AS d (d);
END;

-- A step of the run's candidate query, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._completed_on(date[], date, date) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._completed_on(date[], date, date) IS
    'Of a pair''s result dates, the one that decides its done_* status: the first in the window, else the first '
    'after it, else the last before it.';
