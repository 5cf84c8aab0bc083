"""Field names in request bodies match case-insensitively (contract §1.1), bulk items included."""

from __future__ import annotations

from tests.security.util import assert_error, assert_ok


def _recipes(system, pid):
    return [r for (r,) in system.sql("SELECT recipe FROM task WHERE project = %s ORDER BY id", pid)]


def test_capitalised_submit_fields(system, feeder):
    pid, w = feeder
    tid = assert_ok(w.post("/task/submit", {"Project": pid, "Recipe": "x", "PRIORITY": 7}))["content"]["id"]
    assert system.sql("SELECT recipe, priority FROM task WHERE id = %s", tid) == [("x", 7)]


def test_the_exactly_cased_key_wins_and_losers_are_not_validated(system, feeder):
    pid, w = feeder
    assert_ok(w.post("/task/submit", {"RECIPE": 5, "project": pid, "recipe": "exact", "Recipe": None}))
    assert _recipes(system, pid) == ["exact"]


def test_among_other_spellings_the_last_wins(system, feeder):
    pid, w = feeder
    assert_ok(w.post("/task/submit", raw=f'{{"project": {pid}, "Recipe": "first", "RECIPE": "last"}}'))
    assert _recipes(system, pid) == ["last"]


def test_bulk_items_fold_too(system, feeder):
    pid, w = feeder
    body = {"Requests": [{"Project": pid, "Recipe": "a", "Hash64": 1}, {"project": pid, "RECIPE": "b"},
                         {"PROJECT": pid, "recipe": "c", "hash_U64": 1}]}
    answer = assert_ok(w.post("/task/bulk_submit", body))
    assert answer["content"] == {"submitted": 2, "duplicates": 1}
    assert _recipes(system, pid) == ["a", "b"]


def test_a_folded_field_is_still_validated(system, feeder):
    pid, w = feeder
    assert_error(w.post("/task/submit", {"Project": pid, "Recipe": ""}), 400, "recipe")
    assert_error(w.post("/task/bulk_submit", [{"project": pid, "recipe": "ok"}, {"Project": pid, "PRIORITY": 1e9}]),
                 400, "requests[1]")
    assert _recipes(system, pid) == []


def test_query_parameters_are_not_folded(feeder):
    pid, w = feeder
    assert_ok(w.post("/task/submit", {"project": pid, "recipe": "q"}))
    r = w.get(f"/task/get/{pid}?COUNT=2")  # unknown parameter: ignored, the single-task shape
    assert "task" in assert_ok(r)["content"]
