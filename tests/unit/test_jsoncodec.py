"""tracker/jsoncodec.py answers exactly what the standard library answers, through orjson where
they agree and through ``json`` where they do not (big integers, NaN, lone surrogates, deep
nesting, non-str keys), so no request body and no RPC message changes meaning."""

from __future__ import annotations

import json

import pytest

from tracker import jsoncodec

SAME = [
    b'{"requests": [{"project": 1, "recipe": "r", "hash64": 18446744073709551615}]}',
    b'{"a": -9223372036854775808, "b": 9223372036854775807, "c": 1.5e300, "d": 1e19, "e": -0, "f": 1.0}',
    b'{"a": 1, "a": 2, "A": 3}',  # the last duplicate wins, in the first one's place
    '{"s": "\u00fcn\u00efcode \u20ac \\ud83d\\ude00 \\n\\t"}'.encode(),
    b'[true, false, null, [], {}, ""]',
]
DIFFERENT = [  # orjson alone would answer another value or refuse
    b'{"big": 18446744073709551616}',
    b'{"big": -9223372036854775809}',
    b'{"big": [123456789012345678901234567890]}',
    b'{"s": "\\ud800"}',  # a lone surrogate escape
    b'{"x": 1e400}',
]


@pytest.mark.parametrize("raw", SAME + DIFFERENT)
def test_loads_answers_what_json_answers(raw):
    expected = json.loads(raw)
    got = jsoncodec.loads(raw)
    assert got == expected and repr(got) == repr(expected)  # repr: 2**64 and 1.8e19 are ==-equal
    text = raw.decode()
    assert repr(jsoncodec.loads(text)) == repr(expected)


@pytest.mark.parametrize("raw", [b'{"x": NaN}', b'[Infinity]', b'{"x": 1,}', b'{"x": "\xff"}', b'[1] 2'])
def test_loads_errors_are_json_errors_with_its_words(raw):
    def reject(name):
        raise ValueError(f"{name} is not valid JSON")

    with pytest.raises(ValueError) as expected:
        json.loads(raw, parse_constant=reject)
    with pytest.raises(ValueError) as got:
        jsoncodec.loads(raw, parse_constant=reject)
    assert str(got.value) == str(expected.value)


def test_nesting_deeper_than_orjson_allows_is_jsons_to_judge():
    with pytest.raises(RecursionError):  # the gateway answers "nested too deeply"
        jsoncodec.loads(b"[" * 100_000 + b"]" * 100_000)
    deep = b'{"a": ' * 900 + b"[" * 200 + b"]" * 200 + b"}" * 900  # 1,100 levels: orjson refuses
    assert _outcome(jsoncodec.loads, deep) == _outcome(json.loads, deep)


def _outcome(decode, raw):
    try:
        return repr(decode(raw))
    except RecursionError:
        return "RecursionError"


def test_dumps_has_no_spaces():
    assert jsoncodec.dumps({"a": [1, {"b": "c d"}]}) == b'{"a":[1,{"b":"c d"}]}'


def test_loads_with_an_object_hook_is_jsons():
    def hook(obj):
        return {k: v for k, v in obj.items() if v is not None}

    assert jsoncodec.loads(b'{"a": null, "b": {"c": null, "d": 1}}', object_hook=hook) == {"b": {"d": 1}}


@pytest.mark.parametrize("obj", [
    {"args": [[{"worker_id": 1}, "bulk_submit", {"project": 1, "rows": [[0, "r\t\n\\", 0, 0, 1, -5]]}]], "kwargs": {}},
    {1: "non-str key"}, {"big": 2**64}, {"s": "\ud800"}, [[[[]]]] * 3, {"u": "ünï €"},
])
def test_dumps_round_trips_as_json_reads_it(obj):
    raw = jsoncodec.dumps(obj)
    assert isinstance(raw, bytes)
    assert json.loads(raw) == json.loads(json.dumps(obj))
    assert jsoncodec.dumps_str(obj) == raw.decode()


def test_dumps_falls_back_beyond_orjsons_depth():
    deep: list = []
    for _ in range(300):
        deep = [deep]
    assert json.loads(jsoncodec.dumps(deep)) == deep


def test_kombu_json_serializer_is_replaced_and_keeps_kombus_types():
    import datetime
    import decimal

    from kombu.serialization import dumps, loads, register_json

    try:
        jsoncodec.register_kombu()
        when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        message = {"result": [{"n": 2**63 - 1, "when": when, "amount": decimal.Decimal("1.5")}], "error": None}
        content_type, encoding, body = dumps(message, "json")
        assert content_type == "application/json" and encoding == "utf-8"
        assert loads(body, content_type, encoding) == message  # via kombu's own {"__type__": …}
        plain = {"result": [[1, "ünï", 18446744073709551615]], "error": None}
        _, _, body = dumps(plain, "json")
        assert isinstance(body, bytes) and loads(body, content_type, encoding) == plain
        assert loads(b'{"n": 18446744073709551616}', content_type, encoding) == {"n": 2**64}
        assert loads(b'{"d": {"__type__": "decimal", "__value__": "2"}}', content_type, encoding) == {
            "d": decimal.Decimal(2)}
        assert loads(b'{"d": {"\\u005f_type__": "decimal", "__value__": "2"}}', content_type, encoding) == {
            "d": decimal.Decimal(2)}
    finally:
        register_json()  # kombu's own again, for the rest of the session
