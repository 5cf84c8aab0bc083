"""The bulk's fast validation (BulkSubmit.fast_params) never accepts what the model refuses, and
answers exactly the model's params when it accepts. Unit level: no system needed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.task_svc.messages import BulkSubmit

BIG = (1 << 64) - 1

ITEMS = [
    {"recipe": "r"},
    {"recipe": "r", "priority": -5, "max_retries": 3, "max_assign_time": 60, "verification_count": 2},
    {"recipe": "r", "hash64": 7},
    {"recipe": "r", "hash64": BIG},
    {"recipe": "r", "hash64": 1 << 63},
    {"recipe": "r", "hash64": -(1 << 63)},
    {"recipe": "r", "hash_u64": BIG},
    {"recipe": "r", "hash64": 0, "unique_string": "u"},
    {"recipe": "r", "unique_string": ""},
    {"recipe": "r", "extra": [1, {"x": 2}]},
    {"recipe": "r", "verification_count": 0},
    {"recipe": "r", "verification_count": 1},
]
REFUSED = [
    # refused by the model: the fast path must refuse too (or defer with None)
    {"recipe": ""},
    {"recipe": "a\x00b"},
    {"recipe": "a\ud800"},
    {"recipe": "r", "unique_string": "\x00"},
    {"recipe": 5},
    {"recipe": "r", "priority": True},
    {"recipe": "r", "priority": 1.0},
    {"recipe": "r", "priority": "1"},
    {"recipe": "r", "priority": 40_000},
    {"recipe": "r", "max_retries": -1},
    {"recipe": "r", "max_assign_time": 1 << 31},
    {"recipe": "r", "verification_count": 32_768},
    {"recipe": "r", "hash64": BIG + 1},
    {"recipe": "r", "hash64": -(1 << 63) - 1},
    {"recipe": "r", "hash64": 1, "hash_u64": 1},
    {"recipe": "r", "hash64": 3, "unique_string": "u"},
    {"recipe": "r", "hash_u64": 3, "unique_string": "u"},
    {},
]


def model_params(body: dict) -> dict | None:
    try:
        return BulkSubmit.model_validate(body).to_params()
    except ValidationError:
        return None


@pytest.mark.parametrize("item", ITEMS, ids=repr)
def test_fast_path_answers_the_models_params(item):
    body = {"requests": [{"project": 3, "recipe": "first"}, {"project": 3, **item}]}
    fast = BulkSubmit.fast_params(body)
    assert fast is not None
    assert fast == model_params(body)


@pytest.mark.parametrize("item", REFUSED, ids=repr)
def test_fast_path_never_accepts_what_the_model_refuses(item):
    body = {"requests": [{"project": 3, "recipe": "first"}, {"project": 3, **item}]}
    assert model_params(body) is None
    assert BulkSubmit.fast_params(body) is None


@pytest.mark.parametrize("body", [
    {"requests": []},
    {"requests": [{"project": 1, "recipe": "a"}] * 10_001},
    {"requests": [{"project": 1, "recipe": "a"}, {"project": 2, "recipe": "b"}]},
    {"requests": [{"project": 0, "recipe": "a"}]},
    {"requests": "nope"},
    {},
])
def test_fast_path_refuses_bad_bulks(body):
    assert model_params(body) is None
    assert BulkSubmit.fast_params(body) is None


def test_fast_path_takes_the_common_bulk():
    body = {"requests": [{"project": 9, "recipe": f"r{i}", "hash64": i} for i in range(1, 1001)]}
    fast = BulkSubmit.fast_params(body)
    assert fast is not None and fast == model_params(body)
    assert fast["rows"][0] == [0, "r1", 0, 0, 1, 1]


def test_a_rule_never_breaks_without_a_field_it_needs():
    """``ModelRule.needs`` lets the fast path skip rules for items without those fields: every
    combination of the other fields' values (absent included) must then pass the rule."""
    import itertools

    from services.task_svc.messages import SubmitTask

    samples = {"hash64": [0, 3, BIG], "hash_u64": [0, 3, BIG], "unique_string": ["", "u"], "priority": [0, 5]}
    for rule in SubmitTask.rules:
        assert rule.needs, "a rule without needs is called for every item: declare them"
        others = [name for name in samples if name not in rule.needs]
        for values in itertools.product(*([None, *samples[name]] for name in others)):
            item = {"project": 1, "recipe": "r", **{k: v for k, v in zip(others, values, strict=True) if v is not None}}
            assert rule.problem(item) is None, (rule.problem.__name__, item)


@pytest.mark.parametrize("items, folded", [
    ([{"project": 1, "recipe": "a"}] * 3, None),  # spelled exactly: the same list, not a copy
    ([{"project": 1, "Recipe": "a"}, {"project": 1, "recipe": "b"}],
     [{"project": 1, "recipe": "a"}, {"project": 1, "recipe": "b"}]),
    ([5, "Recipe", {"PROJECT": 2, "recipe": "c"}], [5, "Recipe", {"project": 2, "recipe": "c"}]),
    (["project", {"project": 2}], None),  # a string item's letters are not keys
    ([], None),
])
def test_bulk_items_fold_whatever_else_the_list_holds(items, folded):
    from gateway.inputs import fold_keys

    body = {"requests": items}
    out = fold_keys(BulkSubmit, body)
    if folded is None:
        assert out is body
    else:
        assert out == {"requests": folded}
