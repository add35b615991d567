"""The alternative a DBA would write first: a materialized view of the same windows, refreshed
with REFRESH MATERIALIZED VIEW CONCURRENTLY, measured beside our pipeline on the same data.

The view holds every pair a journey prescribes whose slug parses, with the window table's
window columns and each pair's survey result count: the slugs are parsed once per schedule
with pipeline.parse_schedule_slug (a slug that does not parse is left out, as a DBA's wrapper
would do, rather than failing the refresh), and the milestone date comes from the five
milestone columns. It has none of what else a run does: no failures logged, no held-back
pairs, no completion date, no retired pairs, and every refresh recomputes every pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

TRY_PARSE = """
CREATE OR REPLACE FUNCTION public.bench_try_parse(p_slug text)
RETURNS TABLE (start_offset_days int, end_offset_days int, milestone_slug text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT * FROM pipeline.parse_schedule_slug(p_slug);
EXCEPTION WHEN OTHERS THEN
    RETURN;  -- a slug that does not parse: no window
END;
$$
"""

VIEW = """
CREATE MATERIALIZED VIEW public.bench_mv AS
WITH parsed AS (
    SELECT s.id AS schedule_id, s.slug, p.*
    FROM public.schedule AS s CROSS JOIN LATERAL public.bench_try_parse(s.slug) AS p
), results AS (
    SELECT patient_journey_id, activity_id, count(*)::int AS result_count
    FROM public.survey_result GROUP BY 1, 2
), pairs AS (
    SELECT pj.patient_id, pj.id AS patient_journey_id, a.id AS activity_id, a.content_slug,
           p.schedule_id, p.slug, p.start_offset_days, p.end_offset_days, p.milestone_slug,
           CASE p.milestone_slug
               WHEN 'operation' THEN pj.operation_date::date
               WHEN 'invitation' THEN pj.invitation_date::date
               WHEN 'registration' THEN pj.registration_date::date
               WHEN 'discharge' THEN pj.discharge_date::date
               WHEN 'consent' THEN pj.consent_date::date
           END AS milestone_date
    FROM public.patient_journey AS pj
    JOIN public.journey_activity AS ja ON ja.journey_id = pj.journey_id
    JOIN public.activity AS a ON a.id = ja.activity_id
    JOIN parsed AS p ON p.schedule_id = a.schedule_id
)
SELECT DISTINCT ON (x.patient_journey_id, x.activity_id)
       x.patient_id, x.patient_journey_id, x.activity_id, x.content_slug AS activity_content_slug,
       x.schedule_id, x.slug AS schedule_slug, x.start_offset_days AS schedule_start_offset_days,
       x.end_offset_days AS schedule_end_offset_days, x.milestone_slug AS schedule_milestone_slug,
       x.milestone_date, x.milestone_date + x.start_offset_days AS window_start_date,
       x.milestone_date + x.end_offset_days AS window_end_date, coalesce(r.result_count, 0) AS result_count
FROM pairs AS x
LEFT JOIN results AS r USING (patient_journey_id, activity_id)
ORDER BY x.patient_journey_id, x.activity_id
WITH NO DATA
"""


def create_view(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP MATERIALIZED VIEW IF EXISTS public.bench_mv")
    conn.execute(TRY_PARSE)
    conn.execute(VIEW)
    # REFRESH ... CONCURRENTLY needs a unique index on plain columns
    conn.execute("CREATE UNIQUE INDEX ON public.bench_mv (patient_journey_id, activity_id)")


def measure_view(
    conn: psycopg.Connection[Any],
    median_of: Callable[[Callable[[], Any], Callable[[], Any]], float],
    small_change: Callable[[], None],
) -> dict[str, float]:
    """The view's full load (a plain REFRESH into an empty view), its no-op refresh and its
    refresh after the small change, each with CONCURRENTLY where a DBA would use it (readers
    keep reading meanwhile, as they do during our runs)."""
    create_view(conn)
    full = median_of(
        lambda: conn.execute("REFRESH MATERIALIZED VIEW public.bench_mv WITH NO DATA"),
        lambda: conn.execute("REFRESH MATERIALIZED VIEW public.bench_mv"),
    )
    row = conn.execute("SELECT count(*) FROM public.bench_mv").fetchone()
    concurrently = "REFRESH MATERIALIZED VIEW CONCURRENTLY public.bench_mv"
    noop = median_of(lambda: None, lambda: conn.execute(concurrently))
    small = median_of(small_change, lambda: conn.execute(concurrently))
    conn.execute("DROP MATERIALIZED VIEW public.bench_mv")
    conn.execute("DROP FUNCTION public.bench_try_parse(text)")
    return {"mv_full_s": full, "mv_noop_s": noop, "mv_small_change_s": small, "mv_rows": row[0] if row else 0}
