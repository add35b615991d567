"""pipeline.parse_schedule_slug against the slug grammar (spec/slug-grammar.md), on real
PostgreSQL: what parses, what fails and how, hostile input, aliases as data."""

import psycopg
import pytest

OP, APPT, INV, REG, DIS = "operation", "appointment", "invitation", "registration", "discharge"
CONSENT = "consent"

ALIASES = {
    "op": OP,
    "operation": OP,
    "appt": APPT,
    "appointment": APPT,
    "inv": INV,
    "invitation": INV,
    "reg": REG,
    "registration": REG,
    "dis": DIS,
    "discharge": DIS,
    "consent": CONSENT,
}

PARSES = [
    # The grammar's Forms table, example by example.
    ("4d-2d-pre-op", -4, -2, OP),
    ("1d-7d-post-op", 1, 7, OP),
    ("2w-6w-post-dis", 14, 42, DIS),
    ("42d-pre-op", -42, 0, OP),
    ("3m-post-op", 90, None, OP),
    ("7d-op", 7, None, OP),
    ("2w-pre-6w-post-op", -14, 42, OP),
    ("1d-pre-1dpo", -1, 1, OP),
    ("6wpo", 42, None, OP),
    ("op-10d-post-op", 0, 10, OP),
    ("op-3d-pre-op", -3, 0, OP),
    ("4d-op-pre-op", -4, 0, OP),
    ("4d-op-post-op", 0, 4, OP),
    ("pre-op", None, 0, OP),
    ("post-op", 0, None, OP),
    ("reg", 0, None, REG),
    ("reg-d0", 0, 0, REG),
    ("op-d14", 14, 14, OP),
    ("always", None, None, None),
    # Two offsets: the direction applies to both and the numbers keep their order.
    ("1m-0d-pre-op", -30, 0, OP),
    ("12d-4w-post-op", 12, 28, OP),
    # Every initial alias.
    *[(f"2d-pre-{alias}", -2, 0, milestone) for alias, milestone in ALIASES.items()],
    # Case-insensitive, surrounding white space trimmed.
    (" 4D-2D-PRE-OP ", -4, -2, OP),
    ("\t4d-2d-pre-op\n", -4, -2, OP),
    ("\r\n Op-D14 \t", 14, 14, OP),
    ("6WPO", 42, None, OP),
    (" ALWAYS\n", None, None, None),
    # Leading zeros.
    ("007d-op", 7, None, OP),
    ("0000000000000000000007d-op", 7, None, OP),
    ("reg-d007", 7, 7, REG),
    ("0d-pre-op", 0, 0, OP),
    # Units.
    ("1d-op", 1, None, OP),
    ("1w-op", 7, None, OP),
    ("1m-op", 30, None, OP),
    ("1y-op", 365, None, OP),
    # 36500 days is the limit, inclusive.
    ("100y-op", 36500, None, OP),
    ("36500d-pre-op", -36500, 0, OP),
    ("36500d-36500d-post-op", 36500, 36500, OP),
    ("op-d36500", 36500, 36500, OP),
    ("1201m-op", 36030, None, OP),
    ("1216m-op", 36480, None, OP),
    ("5214w-op", 36498, None, OP),
]
PARSE_IDS = [repr(case[0]) for case in PARSES]

FAILS = [
    pytest.param(None, None, id="NULL"),
    pytest.param("", None, id="empty"),
    pytest.param("   ", None, id="blank"),
    pytest.param(" \t\n ", None, id="white-space"),
    pytest.param("3q-pre-op", None, id="unknown-unit"),
    pytest.param("4d_2d-pre-op", None, id="underscore"),
    pytest.param("4d -2d-pre-op", None, id="space-before-dash"),
    pytest.param("4d 2d-pre-op", None, id="space-as-separator"),
    pytest.param("4d-2d-pre-op-", None, id="trailing-dash"),
    pytest.param("-4d-2d-pre-op", None, id="leading-dash"),
    pytest.param("4d--2d-pre-op", None, id="doubled-dash"),
    pytest.param("7d-post-surgery", "surgery", id="unknown-alias"),
    pytest.param("reg-10d-post-op", None, id="two-milestones"),
    pytest.param("3m-1d-post-op", None, id="ends-before-start-post"),
    pytest.param("2d-4d-pre-op", None, id="ends-before-start-pre"),
    pytest.param("36501d-op", "36500", id="36501d"),
    pytest.param("101y-post-op", "36500", id="101y"),
    pytest.param("1217m-op", "36500", id="1217m"),
    pytest.param("36501d-pre-op", "36500", id="36501d-pre"),
    pytest.param("op-d36501", "36500", id="d36501"),
    pytest.param("pre", None, id="pre-alone"),
    pytest.param("4d", None, id="offset-alone"),
    pytest.param("op-op", None, id="op-op"),
    pytest.param("4d-2d-op", None, id="two-offsets-no-direction"),
    pytest.param("1d-pre-1dpo-op", None, id="po-with-milestone"),
]

LONG = 10_000
HOSTILE = [
    pytest.param("99999999999999999999999999d-op", id="26-digit-offset"),
    pytest.param("9" * 5000 + "d-op", id="5000-digit-offset"),
    pytest.param("9" * 5000 + "wpo", id="5000-digit-po"),
    pytest.param("op-d" + "9" * 5000, id="5000-digit-day"),
    pytest.param("1" + "0" * 5000 + "d-pre-op", id="5000-digit-power-of-ten"),
    pytest.param("\u0663d-pre-op", id="arabic-indic-digit"),
    pytest.param("\uff14d-pre-op", id="fullwidth-digit"),
    pytest.param("\u0969d-pre-op", id="devanagari-digit"),
    pytest.param("op-d\u0663", id="arabic-indic-day"),
    pytest.param("4d\x01-pre-op", id="control-SOH"),
    pytest.param("\x1b[31m4d-pre-op", id="control-ESC"),
    pytest.param("4d-pre-op\x7f", id="control-DEL"),
    pytest.param("a" * LONG, id="10k-letters"),
    pytest.param("-" * LONG, id="10k-dashes"),
    pytest.param("a-" * (LONG // 2), id="10k-a-dash"),
    pytest.param("1" * LONG, id="10k-digits"),
    pytest.param("4d-" * (LONG // 3) + "op", id="10k-offsets"),
    pytest.param("\U0001f52a-op", id="emoji-offset"),
    pytest.param("4d-pre-\U0001f3e5", id="emoji-milestone"),
    pytest.param("op'; DROP TABLE pipeline.milestone; --", id="sql-drop"),
    pytest.param("4d-pre-op' OR '1'='1", id="sql-or"),
    pytest.param("$$; SELECT 1; $$", id="sql-dollar-quote"),
]


def parse(db, slug):
    return db.execute("SELECT * FROM pipeline.parse_schedule_slug(%s)", (slug,)).fetchall()


def parse_error(db, slug):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        parse(db, slug)
    assert caught.value.sqlstate == "22023"
    return caught.value.diag


@pytest.mark.parametrize(("slug", "start", "end", "milestone"), PARSES, ids=PARSE_IDS)
def test_parses(db, slug, start, end, milestone):
    assert parse(db, slug) == [
        {"start_offset_days": start, "end_offset_days": end, "milestone_slug": milestone}
    ]


@pytest.mark.parametrize(("slug", "mentions"), FAILS)
def test_fails_naming_slug_and_reason(db, slug, mentions):
    message = parse_error(db, slug).message_primary
    # Control characters are shown as "?" in messages.
    shown = "NULL" if slug is None else "".join(c if c.isprintable() else "?" for c in slug)
    assert shown in message
    after_slug = message.split(shown, 1)[1] if shown else message
    assert len(after_slug.strip(" \"':")) > 10, message  # a reason follows the slug
    if mentions:
        assert mentions in message


@pytest.mark.parametrize("slug", HOSTILE)
def test_hostile_input_is_a_bad_slug(db, slug):
    diag = parse_error(db, slug)
    assert len(diag.message_primary) < 400
    assert len(diag.message_hint or "") < 400
    assert db.execute("SELECT count(*) AS n FROM pipeline.milestone").fetchone() == {"n": 6}


def test_aliases_are_data(db):
    diag = parse_error(db, "7d-post-surgery")
    assert "surgery" in diag.message_primary
    assert "milestone_alias" in (diag.message_hint or "")
    add_alias = "INSERT INTO pipeline.milestone_alias (alias, milestone_slug) VALUES (%s, %s)"
    db.execute(add_alias, ("surgery", "operation"))
    assert parse(db, "7d-post-surgery") == [
        {"start_offset_days": 7, "end_offset_days": None, "milestone_slug": OP}
    ]


@pytest.mark.parametrize("slug", ["4d-2d-pre-op", "always"])
def test_returns_exactly_the_three_columns(db, slug):
    cur = db.execute("SELECT * FROM pipeline.parse_schedule_slug(%s)", (slug,))
    assert [(c.name, c.type_code) for c in cur.description] == [
        ("start_offset_days", 23),  # int4
        ("end_offset_days", 23),
        ("milestone_slug", 25),  # text
    ]
    assert len(cur.fetchall()) == 1
