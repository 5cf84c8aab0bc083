"""bench/admin.py's pure helpers: the recipes part ``admin`` loads and the windows it reports.

The big project is loaded by SQL (``RECIPE_SQL``) and the bulk rows are made in Python
(``recipe``): the two must make the same recipes, with the search term in exactly 0.1 % of them
and the no-match term in none, or the search rows of the benchmark measure something else.
"""

from __future__ import annotations

import pytest

from bench.admin import NO_MATCH, RARE, RARE_EVERY, RECIPE_SQL, overlap, recipe, summary_ms, window_for


def test_recipes_are_json_ish_and_100_to_300_characters():
    lengths = [len(recipe(g)) for g in range(1, 5001)]
    assert min(lengths) >= 100 and max(lengths) <= 300
    assert recipe(7).startswith('{"job": "') and recipe(7).endswith('"}')


def test_the_rare_term_is_in_one_recipe_in_a_thousand_case_insensitively():
    hits = [g for g in range(1, 20_001) if RARE in recipe(g).lower()]
    assert len(hits) == 20_000 // RARE_EVERY
    assert all(RARE not in recipe(g) for g in hits)  # stored capitalised: only ILIKE finds it


def test_the_no_match_term_is_in_none():
    assert not any(NO_MATCH in recipe(g).lower() for g in range(1, 20_001))


def test_sql_and_python_make_the_same_recipes(conn):
    raw = conn.connection.driver_connection
    rows = raw.execute(f"SELECT g, {RECIPE_SQL} FROM generate_series(%s::int, %s::int) g", (1, 1500)).fetchall()
    assert [r for _, r in rows] == [recipe(g) for g, _ in rows]


def test_summary_ms_is_nearest_rank_in_milliseconds():
    s = summary_ms([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert (s["n"], s["p50"], s["p95"], s["max"]) == (100, 50.0, 95.0, 100.0)
    assert summary_ms([])["p50"] is None


@pytest.mark.parametrize(("action_s", "lead_s", "window_s", "expected"), [
    (30.0, 0.7, 10.0, 1.0),    # the action outlasts the window
    (5.7, 0.7, 10.0, 0.5),     # it ends half-way
    (0.5, 0.7, 10.0, 0.0),     # it ends before the window opens
    (3.0, 0.0, 0.0, 0.0),      # no window
])
def test_overlap_is_the_share_of_the_window_the_action_covered(action_s, lead_s, window_s, expected):
    assert overlap(action_s, lead_s, window_s) == expected


def test_window_is_most_of_the_action_within_bounds():
    assert window_for(20.0) == 16.0
    assert window_for(1.0) == 3.0
    assert window_for(500.0, cap_s=30.0) == 30.0
