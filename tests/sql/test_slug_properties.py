"""Property-based tests of pipeline.parse_schedule_slug (hypothesis, issue 4): any string parses
to a window that does not end before it starts or raises SQLSTATE 22023; slugs generated from
spec/slug-grammar.md parse to the offsets the grammar gives; no input takes more than a few
milliseconds.

The expected results come from this file's own reading of the grammar (`reference` and the
`valid_slugs` strategy), never from the SQL. All examples run in one database of the module's
own, through `probe`, a wrapper that calls the parser once, catches its error and times the
call on the server (so that neither the network nor the client is measured)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from pytools.config import with_database
from pytools.migrations import migrate
from pytools.sql_files import sample_file
from tests.helpers.databases import TEMPLATE, create_database, drop_database

Window = tuple[int | None, int | None, str | None]
Conn = psycopg.Connection[dict[str, Any]]

# --- the grammar, as spec/slug-grammar.md states it -----------------------------------------

UNIT_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
MAX_DAYS = 36_500
SPEC_ALIASES = {
    "op": "operation",
    "operation": "operation",
    "appt": "appointment",
    "appointment": "appointment",
    "inv": "invitation",
    "invitation": "invitation",
    "reg": "registration",
    "registration": "registration",
    "dis": "discharge",
    "discharge": "discharge",
    "consent": "consent",
}
# Aliases are data: one the test adds must behave like the initial ones.
ADDED_ALIAS = ("surgery", "operation")
ALIASES = {**SPEC_ALIASES, ADDED_ALIAS[0]: ADDED_ALIAS[1]}
CANONICAL = set(SPEC_ALIASES.values())
# "White space" for trimming: Unicode's White_Space property (PropList.txt), the same in every
# database locale. Anything else outside ASCII fails: every token of the grammar is ASCII.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)

# The Forms table: token pattern -> window. `o` = offset, `opo` = offset glued to po, `d` = d<N>,
# `MS` = milestone alias; the function gets the numbers (in days) in slug order.
FORMS: dict[tuple[str, ...], Callable[[list[int]], tuple[int | None, int | None]]] = {
    ("o", "o", "pre", "MS"): lambda n: (-n[0], -n[1]),
    ("o", "o", "post", "MS"): lambda n: (n[0], n[1]),
    ("o", "pre", "MS"): lambda n: (-n[0], 0),
    ("o", "post", "MS"): lambda n: (n[0], None),
    ("o", "MS"): lambda n: (n[0], None),
    ("o", "pre", "o", "post", "MS"): lambda n: (-n[0], n[1]),
    ("o", "pre", "opo"): lambda n: (-n[0], n[1]),
    ("opo",): lambda n: (n[0], None),
    ("MS", "o", "post", "MS"): lambda n: (0, n[0]),
    ("MS", "o", "pre", "MS"): lambda n: (-n[0], 0),
    ("o", "MS", "pre", "MS"): lambda n: (-n[0], 0),
    ("o", "MS", "post", "MS"): lambda n: (0, n[0]),
    ("pre", "MS"): lambda n: (None, 0),
    ("post", "MS"): lambda n: (0, None),
    ("MS",): lambda n: (0, None),
    ("MS", "d"): lambda n: (n[0], n[0]),
}
OFFSET = re.compile(r"([0-9]+)([dwmy])(po)?", re.ASCII)
DAY = re.compile(r"d([0-9]+)", re.ASCII)


def reference(slug: str) -> Window | None:
    """What the grammar says a slug parses to; None when it must fail."""
    text = slug.strip(WHITE_SPACE)
    if not text.isascii():
        return None
    text = text.lower()
    if text == "always":
        return (None, None, None)
    kinds: list[str] = []
    numbers: list[int] = []
    milestones: list[str] = []
    for token in text.split("-"):
        if token in ("pre", "post"):
            kinds.append(token)
        elif offset := OFFSET.fullmatch(token):
            kinds.append("opo" if offset[3] else "o")
            numbers.append(int(offset[1]) * UNIT_DAYS[offset[2]])
        elif day := DAY.fullmatch(token):
            kinds.append("d")
            numbers.append(int(day[1]))
        elif token in ALIASES:
            kinds.append("MS")
            milestones.append(ALIASES[token])
        else:  # blank, stray "-", unknown unit or alias, spaces or "_" inside, ...
            return None
    shape = tuple(kinds)
    if shape not in FORMS or len(set(milestones)) > 1 or any(n > MAX_DAYS for n in numbers):
        return None
    start, end = FORMS[shape](numbers)
    if start is not None and end is not None and end < start:
        return None
    return (start, end, milestones[0] if milestones else "operation")


# --- strategies -------------------------------------------------------------------------------


def offsets(max_days: int = MAX_DAYS) -> st.SearchStrategy[tuple[str, int]]:
    """An offset token without `po` (leading zeros, any unit, either case) and its days."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, int]:
        unit = draw(st.sampled_from(sorted(UNIT_DAYS)))
        number = draw(st.integers(0, max_days // UNIT_DAYS[unit]))
        zeros = "0" * draw(st.sampled_from([0, 0, 0, 1, 2, 25]))
        return f"{zeros}{number}{draw(st.sampled_from([unit, unit.upper()]))}", number * UNIT_DAYS[unit]

    return build()


def alias_of(milestone: str | None = None) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(a for a, m in ALIASES.items() if milestone in (None, m)))


@st.composite
def form_slugs(draw: st.DrawFn, *, valid: bool) -> tuple[str, Window | None]:
    """A slug of a form the grammar lists, with the window the Forms table gives for it. When
    `valid`, its offsets are within the limit and in order; otherwise they may be neither, and
    the expected outcome is then None (SQLSTATE 22023)."""
    form = draw(st.sampled_from(sorted(FORMS)))
    alias = draw(alias_of())
    milestone = ALIASES[alias]
    same = draw(alias_of(milestone))  # the second alias of a "same milestone" form
    limit = MAX_DAYS if valid else MAX_DAYS + 1000
    o1, o2 = draw(offsets(limit)), draw(offsets(limit))
    in_order = valid or draw(st.booleans())

    def _ordered(first: tuple[str, int], second: tuple[str, int], ascending: bool) -> list[tuple[str, int]]:
        return sorted([first, second], key=lambda o: o[1], reverse=not ascending) if in_order else [o1, o2]

    tokens: list[str]
    window: tuple[int | None, int | None]
    match form:
        case ("o", "o", "pre", "MS"):  # -o1 <= -o2: the larger first
            (t1, d1), (t2, d2) = _ordered(o1, o2, ascending=False)
            tokens, window = [t1, t2, "pre", alias], (-d1, -d2)
        case ("o", "o", "post", "MS"):
            (t1, d1), (t2, d2) = _ordered(o1, o2, ascending=True)
            tokens, window = [t1, t2, "post", alias], (d1, d2)
        case ("o", "pre", "MS"):
            tokens, window = [o1[0], "pre", alias], (-o1[1], 0)
        case ("o", "post", "MS"):
            tokens, window = [o1[0], "post", alias], (o1[1], None)
        case ("o", "MS"):
            tokens, window = [o1[0], alias], (o1[1], None)
        case ("o", "pre", "o", "post", "MS"):
            tokens, window = [o1[0], "pre", o2[0], "post", alias], (-o1[1], o2[1])
        case ("o", "pre", "opo"):
            tokens, window, milestone = [o1[0], "pre", o2[0] + "po"], (-o1[1], o2[1]), "operation"
        case ("opo",):
            tokens, window, milestone = [o1[0] + "po"], (o1[1], None), "operation"
        case ("MS", "o", "post", "MS"):
            tokens, window = [alias, o1[0], "post", same], (0, o1[1])
        case ("MS", "o", "pre", "MS"):
            tokens, window = [alias, o1[0], "pre", same], (-o1[1], 0)
        case ("o", "MS", "pre", "MS"):
            tokens, window = [o1[0], alias, "pre", same], (-o1[1], 0)
        case ("o", "MS", "post", "MS"):
            tokens, window = [o1[0], alias, "post", same], (0, o1[1])
        case ("pre", "MS"):
            tokens, window = ["pre", alias], (None, 0)
        case ("post", "MS"):
            tokens, window = ["post", alias], (0, None)
        case ("MS",):
            tokens, window = [alias], (0, None)
        case ("MS", "d"):
            day = draw(st.integers(0, limit))
            zeros = "0" * draw(st.sampled_from([0, 0, 1, 3]))
            tokens, window = [alias, f"d{zeros}{day}"], (day, day)
        case _:
            raise AssertionError(form)
    slug = "-".join(tokens)
    # Case-insensitive: upper-case any subset of the letters.
    upper = draw(st.lists(st.booleans(), min_size=len(slug), max_size=len(slug)))
    slug = "".join(c.upper() if u else c for c, u in zip(slug, upper, strict=True))
    # Surrounding white space is trimmed.
    space = st.text(alphabet=WHITE_SPACE, max_size=3)
    slug = draw(space) + slug + draw(space)
    start, end = window
    days = [abs(d) for d in window if d is not None]
    if any(d > MAX_DAYS for d in days) or (start is not None and end is not None and end < start):
        return slug, None
    return slug, (start, end, milestone)


def valid_slugs() -> st.SearchStrategy[tuple[str, Window]]:
    return form_slugs(valid=True).map(lambda case: (case[0], _must(case[1])))


def _must(window: Window | None) -> Window:
    assert window is not None
    return window


# Near-misses: grammar tokens and hostile ones glued by right and wrong separators.
TOKENS = st.one_of(
    st.sampled_from(["pre", "post", "always", "po", "d", "", *ALIASES]),
    offsets(max_days=MAX_DAYS + 400).map(lambda o: o[0]),
    offsets().map(lambda o: o[0] + "po"),
    st.integers(0, MAX_DAYS + 3).map(lambda n: f"d{n}"),
    # more digits than int4 (or numeric sanity) holds
    st.integers(2**31 - 2, 10**40).map(lambda n: f"{n}d"),
    st.integers(2**31 - 2, 10**40).map(lambda n: f"d{n}"),
    st.sampled_from(["3q", "4h", "1dd", "d1d", "-1d", "+1d", "1.5d", "1e3d", "0x10d", "1 d", "4d_2d"]),
    # regex metacharacters and SQL fragments
    st.sampled_from([".*", "[a-z]+", "op|reg", "(op)", "^op$", "op\\", "\\d", "%", "_", "op?", "o{1,2}p"]),
    st.sampled_from(["'", "''", '"', "';--", "1'; DROP TABLE pipeline.milestone; --", "$$", "E'\\x00'"]),
    st.sampled_from(["OR 1=1", "/*", "*/", ";", "NULL", "null", "\\N", "op\tpre"]),
)
SEPARATORS = st.sampled_from(["-", "-", "-", "-", "--", "_", " ", "", "\t"])


@st.composite
def slug_like(draw: st.DrawFn) -> str:
    """A string made of grammar tokens and near-misses, in any case, possibly padded:
    either tokens drawn at random or a valid slug with one token replaced, dropped, doubled or
    moved (a near-miss that gets deep into the parser)."""
    tokens: list[str]
    if draw(st.booleans()):
        tokens = draw(st.lists(TOKENS, min_size=1, max_size=6))
    else:
        tokens = draw(valid_slugs())[0].strip(WHITE_SPACE).split("-")
        at = draw(st.integers(0, len(tokens) - 1))
        edit = draw(st.sampled_from(["replace", "insert", "drop", "double", "swap", "none"]))
        if edit == "replace":
            tokens[at] = draw(TOKENS)
        elif edit == "insert":
            tokens.insert(at, draw(TOKENS))
        elif edit == "drop" and len(tokens) > 1:
            del tokens[at]
        elif edit == "double":
            tokens.insert(at, tokens[at])
        elif edit == "swap" and at + 1 < len(tokens):
            tokens[at], tokens[at + 1] = tokens[at + 1], tokens[at]
    text = tokens[0]
    for token in tokens[1:]:
        text += draw(SEPARATORS) + token
    if draw(st.booleans()):
        text = text.upper() if draw(st.booleans()) else text.title()
    space = st.text(alphabet=WHITE_SPACE, max_size=2)
    return draw(space) + text + draw(space)


UNICODE = st.characters(codec="utf-8", exclude_characters="\x00")


@st.composite
def decorated(draw: st.DrawFn) -> str:
    """A slug of some form with any character (unicode white space, digits of other scripts,
    letters that case-fold to ASCII, ...) put somewhere in it."""
    slug = draw(form_slugs(valid=False))[0]
    at = draw(st.integers(0, len(slug)))
    return slug[:at] + draw(st.text(UNICODE, min_size=1, max_size=2)) + slug[at:]


# Anything PostgreSQL text can hold: every code point but NUL (and lone surrogates, which are
# not UTF-8). Mostly strings close to the grammar, since random text rarely gets past its
# first token.
ANY_TEXT = st.one_of(
    st.text(UNICODE, max_size=40),
    # white space of every kind, and characters that look like it but are not (U+001C, which
    # Python's isspace() takes for space, zero-width space, byte order mark)
    st.text(
        st.sampled_from(
            "0123456789dwmypreostaiconsgDWMYPO- \t\n_\u00e9\U0001f600\x1c\u200b\ufeff" + WHITE_SPACE
        ),
        max_size=30,
    ),
    slug_like(),
    form_slugs(valid=False).map(lambda case: case[0]),
    decorated(),
)

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("SLUG_PROPERTY_EXAMPLES", "300")),
    deadline=None,  # time is asserted on the server, per call, below
    derandomize=True,  # the same examples on every run, so CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# The issue asks that no input take more than "a few milliseconds". Measured on the server
# (clock_timestamp around the call), the slowest inputs here, 100,000 characters, take about
# 10 ms and typical slugs 0.2 ms. The bound is 50 ms: a generous multiple for a shared,
# loaded CI machine, yet an order of magnitude below what a quadratic regex or a scan per
# token over such inputs would cost. A call over the bound is measured twice more and its
# fastest time counts: a slow input is slow every time, a descheduled backend is not.
MAX_MS_PER_CALL = 50.0


# --- the database -----------------------------------------------------------------------------

PROBE = """
CREATE FUNCTION public.slug_probe(p_slug text, OUT error_code text, OUT error_message text, OUT rows integer,
                                  OUT start_offset_days integer, OUT end_offset_days integer,
                                  OUT milestone_slug text, OUT elapsed_ms double precision)
LANGUAGE plpgsql AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
BEGIN
    rows := 0;
    BEGIN
        FOR start_offset_days, end_offset_days, milestone_slug IN
            SELECT * FROM pipeline.parse_schedule_slug(p_slug)
        LOOP
            rows := rows + 1;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS error_code = RETURNED_SQLSTATE, error_message = MESSAGE_TEXT;
    END;
    elapsed_ms := extract(epoch FROM clock_timestamp() - v_started) * 1000;
END;
$$;
"""


@pytest.fixture(scope="module")
def slug_db(server: str, template_url: str) -> Iterator[Conn]:
    """One migrated database for all examples of this module, with the alias the test adds."""
    name = f"pjp_slug_properties_{os.getpid()}"
    url = create_database(server, name, template=TEMPLATE)
    try:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            conn.execute(PROBE)
            conn.execute(
                "INSERT INTO pipeline.milestone_alias (alias, milestone_slug) VALUES (%s, %s)", ADDED_ALIAS
            )
            yield conn
    finally:
        drop_database(server, name)


@pytest.fixture(scope="module")
def turkish_db(server: str, template_url: str) -> Iterator[Conn]:
    """A database whose default locale is Turkish (ICU `tr`), where lower('I') is a dotless i."""
    name = f"pjp_slug_turkish_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as conn:
        if conn.execute("SELECT FROM pg_collation WHERE collname = 'tr-x-icu'").fetchone() is None:
            pytest.skip("this PostgreSQL has no ICU Turkish collation")
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' "
            "LOCALE_PROVIDER icu ICU_LOCALE 'tr'"
        )
    url = with_database(server, name)
    try:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            conn.execute(sample_file("source_tables.sql").read_text().encode())
            migrate(url)
            conn.execute(PROBE)
            conn.execute(
                "INSERT INTO pipeline.milestone_alias (alias, milestone_slug) VALUES (%s, %s)", ADDED_ALIAS
            )
            assert conn.execute("SELECT lower('I') AS i").fetchone() == {"i": "\u0131"}
            yield conn
    finally:
        drop_database(server, name)


def probe(conn: Conn, slug: str) -> dict[str, Any]:
    result = conn.execute("SELECT * FROM public.slug_probe(%s)", (slug,)).fetchone()
    assert result is not None
    if result["elapsed_ms"] >= MAX_MS_PER_CALL:
        again = [conn.execute("SELECT * FROM public.slug_probe(%s)", (slug,)).fetchone() for _ in range(2)]
        fastest = min(r["elapsed_ms"] for r in again if r is not None)
        assert fastest < MAX_MS_PER_CALL, f"{slug[:80]!r} took {fastest:.1f} ms on the server"
    return dict(result)


def outcome(result: dict[str, Any]) -> Window | None:
    """The parsed window, or None when the parser raised 22023 (any other error fails here)."""
    if result["error_code"] is not None:
        assert result["error_code"] == "22023", result
        return None
    assert result["rows"] == 1, result
    return (result["start_offset_days"], result["end_offset_days"], result["milestone_slug"])


def assert_window_or_22023(slug: str, result: dict[str, Any]) -> None:
    window = outcome(result)
    if window is None:
        return
    start, end, milestone = window
    if milestone is None:  # only `always` has no milestone, and then no window either
        assert (start, end) == (None, None) and slug.strip(WHITE_SPACE).lower() == "always", result
        return
    assert milestone in CANONICAL, result
    assert start is not None or end is not None, result  # a window is open at one end at most
    if start is not None and end is not None:
        assert start <= end, result
    assert all(-MAX_DAYS <= d <= MAX_DAYS for d in (start, end) if d is not None), result


# --- properties -------------------------------------------------------------------------------


def test_the_alias_table_starts_with_the_aliases_the_grammar_lists(slug_db: Conn) -> None:
    rows = slug_db.execute("SELECT alias, milestone_slug FROM pipeline.milestone_alias").fetchall()
    assert {r["alias"]: r["milestone_slug"] for r in rows} == ALIASES


@PROPERTY_SETTINGS
@given(slug=ANY_TEXT)
def test_any_string_parses_to_a_window_that_does_not_end_before_it_starts_or_raises_22023(
    slug_db: Conn, slug: str
) -> None:
    result = probe(slug_db, slug)
    assert_window_or_22023(slug, result)
    assert outcome(result) == reference(slug), result


@PROPERTY_SETTINGS
@given(slug=slug_like())
def test_grammar_tokens_in_any_arrangement_parse_exactly_as_the_grammar_says(
    slug_db: Conn, slug: str
) -> None:
    result = probe(slug_db, slug)
    assert_window_or_22023(slug, result)
    assert outcome(result) == reference(slug), result


@PROPERTY_SETTINGS
@given(case=valid_slugs())
def test_generated_valid_slugs_round_trip_to_the_offsets_of_the_grammar(
    slug_db: Conn, case: tuple[str, Window]
) -> None:
    slug, expected = case
    assert outcome(probe(slug_db, slug)) == expected


@PROPERTY_SETTINGS
@given(case=form_slugs(valid=False))
def test_slugs_of_every_form_with_any_offsets_parse_or_fail_as_the_grammar_says(
    slug_db: Conn, case: tuple[str, Window | None]
) -> None:
    slug, expected = case  # None: offsets beyond 36500 days, or a window ending before it starts
    assert outcome(probe(slug_db, slug)) == expected


LONG = 100_000
HOSTILE = [
    # Case-insensitive means ASCII case: a dotted capital I (U+0130) is no "I", whatever the
    # database's locale makes of lower('\u0130').
    pytest.param("\u0130nv", id="dotted-capital-I-inv"),
    pytest.param("2d-pre-d\u0130s", id="dotted-capital-I-dis"),
    pytest.param("REG\u0130STRAT\u0130ON-d0", id="dotted-capital-I-registration"),
    # digits beyond int4 must be a bad slug (22023), not numeric_value_out_of_range (22003)
    pytest.param("99999999999d-1d-pre-op", id="int4-overflow-offset"),
    pytest.param("2147483648d-op", id="int4-max-plus-one"),
    pytest.param("2147483647d-pre-op", id="int4-max"),
    pytest.param("op-d2147483648", id="int4-overflow-day"),
    pytest.param("1d-pre-99999999999999999999dpo", id="overflow-po"),
    pytest.param("9" * LONG + "d-op", id="100k-digit-offset"),
    pytest.param("op-d" + "9" * LONG, id="100k-digit-day"),
    pytest.param("-" * LONG, id="100k-dashes"),
    pytest.param("a-" * (LONG // 2), id="100k-tokens"),
    pytest.param("a" * LONG, id="100k-letter-alias"),
    pytest.param("x" + " " * LONG + "x", id="100k-inner-spaces"),
    pytest.param(" " * LONG + "x", id="100k-leading-spaces"),
    pytest.param("always" + " \t" * (LONG // 2) + "-op", id="100k-spaces-after-always"),
    pytest.param("\U0001f600" * LONG, id="100k-emoji"),
    pytest.param("\u00e9" * LONG + "-op", id="100k-accented"),
    pytest.param("[" * LONG, id="100k-open-brackets"),
    pytest.param("(a*)*" * (LONG // 5), id="100k-regex-bomb-text"),
    pytest.param("4d-2d-pre-op" + "'; DROP TABLE x; --" * 5000, id="100k-sql"),
]


@pytest.mark.parametrize("slug", HOSTILE)
def test_hostile_and_very_long_strings_raise_22023_within_a_few_milliseconds(
    slug_db: Conn, slug: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        slug_db.execute("SELECT * FROM pipeline.parse_schedule_slug(%s)", (slug,))
    assert caught.value.sqlstate == "22023"
    assert len(caught.value.diag.message_primary or "") < 400  # the slug is cut in the message
    assert probe(slug_db, slug)["error_code"] == "22023"  # and timed on the server


@pytest.mark.parametrize(
    ("slug", "expected"),
    [
        ((" \t" * (LONG // 2)) + "4d-2d-pre-op" + ("\n " * (LONG // 2)), (-4, -2, "operation")),
        ("0" * LONG + "7d-op", (7, None, "operation")),
        ("reg-d" + "0" * LONG + "36500", (36500, 36500, "registration")),
    ],
    ids=["100k-surrounding-space", "100k-leading-zeros", "100k-zeros-in-day"],
)
def test_very_long_valid_slugs_parse_within_a_few_milliseconds(
    slug_db: Conn, slug: str, expected: Window
) -> None:
    assert outcome(probe(slug_db, slug)) == expected


TURKISH_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=100)


@TURKISH_SETTINGS
@given(case=valid_slugs())
def test_slugs_parse_alike_whatever_the_database_locale(turkish_db: Conn, case: tuple[str, Window]) -> None:
    """Case-insensitive is locale-independent: in a Turkish database '2D-PRE-DIS' is still
    discharge, not the unknown alias "d\u0131s" (dotless i) that lower() gives there."""
    slug, expected = case
    assert outcome(probe(turkish_db, slug.upper())) == expected
    assert outcome(probe(turkish_db, slug)) == expected


@TURKISH_SETTINGS
@given(slug=ANY_TEXT)
def test_any_string_parses_alike_whatever_the_database_locale(turkish_db: Conn, slug: str) -> None:
    assert outcome(probe(turkish_db, slug)) == reference(slug)
