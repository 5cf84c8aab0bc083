"""bench/many_clients.py's pure helpers: how an answer, the gateway's metrics and memory are read.

The benchmark's verdict rests on them: a long-poll answer misread as "No task available" would hide a
lost wake-up, a 5xx the metrics parser misses would pass a failing gateway.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.many_clients import metric_sum, per_item_kib, summarise
from bench.many_clients_load import classify, read_response

METRICS = """\
# HELP tt_rpc_calls_total Calls sent to the services
# TYPE tt_rpc_calls_total counter
tt_rpc_calls_total{operation="get_tasks",service="task_svc"} 10042.0
tt_rpc_calls_total{operation="release_tasks",service="task_svc"} 7.0
tt_rpc_calls_total{operation="get_tasks",service="other_svc"} 3.0
tt_http_requests_total{method="GET",route="/task/get/{project}",status="200"} 500.0
tt_http_requests_total{method="GET",route="/task/get/{project}",status="503"} 2.0
tt_http_requests_total{method="POST",route="/task/release",status="500"} 1.0
tt_http_requests_total{method="POST",route="/task/release",status="429"} 4.0
tt_http_requests_created{method="GET",route="/task/get/{project}",status="503"} 1.7e9
"""


def test_metric_sum_adds_the_samples_whose_labels_match():
    assert metric_sum(METRICS, "tt_rpc_calls_total", operation="get_tasks") == 10045.0
    assert metric_sum(METRICS, "tt_rpc_calls_total", operation="get_tasks", service="task_svc") == 10042.0
    assert metric_sum(METRICS, "tt_rpc_calls_total") == 10052.0


def test_metric_sum_5xx_matches_every_server_error_and_nothing_else():
    assert metric_sum(METRICS, "tt_http_requests_total", status="5xx") == 3.0
    assert metric_sum(METRICS, "tt_http_requests_total", status="4xx") == 4.0
    assert metric_sum(METRICS, "tt_http_requests_total", status="404") == 0.0
    assert metric_sum("", "tt_http_requests_total", status="5xx") == 0.0


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, b'{"ok": true, "content": {"task": {"id": 17, "recipe": "x"}}}', ("task", 17)),
    (200, b'{"ok": false, "message": "No task available"}', ("no-task", None)),
    (503, b'{"ok": false, "message": "Service unavailable"}', ("status 503", None)),
    (200, b'{"ok": false, "message": "Worker is paused"}', ("bad-body", None)),
    (200, b'{"ok": true, "content": {}}', ("bad-body", None)),
    (200, b"not json", ("bad-body", None)),
    (200, b"[1]", ("bad-body", None)),
])
def test_classify_tells_a_task_from_no_task_from_anything_else(status, body, expected):
    assert classify(status, body) == expected


def test_read_response_reads_exactly_one_answer_by_content_length():
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 4\r\n\r\n"
                         b"{\"a\"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n")
        reader.feed_eof()
        return await read_response(reader), await read_response(reader)

    assert asyncio.run(go()) == ((200, b'{"a"'), (204, b""))


def test_per_item_kib():
    assert per_item_kib(100 * 1024 * 1024, 300 * 1024 * 1024, 10_000) == 20.48
    assert per_item_kib(None, 5, 10) is None
    assert per_item_kib(1, 5, 0) is None


def test_summarise_reports_answered_latencies_and_every_error():
    records = [("task get", 0.010, "ok"), ("task get", 0.020, "ok"), ("task get", None, "ConnectionResetError"),
               ("task get", 0.030, "status 503"), ("project get", 0.005, "ok")]
    out = summarise(records, 2.0)
    assert out["task get"] == {"n": 4, "per_s": 2.0, "p50_ms": 20.0, "p99_ms": 30.0, "max_ms": 30.0, "errors": 2,
                               "error_kinds": {"ConnectionResetError": 1, "status 503": 1}, "slow": 0,
                               "slow_at_s_ms": []}
    assert out["project get"]["errors"] == 0 and out["project get"]["p50_ms"] == 5.0


def test_summarise_says_when_slow_answers_started():
    records = [("task get", 0.010, "ok", 0.5), ("task get", 2.5, "ok", 7.25), ("task get", 1.2, "status 503", 9.0)]
    out = summarise(records, 10.0)["task get"]
    assert out["slow"] == 2 and out["slow_at_s_ms"] == [(7.25, 2500), (9.0, 1200)]
    assert out["max_ms"] == 2500.0
