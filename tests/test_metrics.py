"""`GET /metrics` (contract §6.1): Prometheus text, route templates as labels, counters summed over
every gateway process.

The session system runs 2 gunicorn processes; requests here use a fresh connection each so they
spread over both, and every scrape (answered by either process) must report the same totals.
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import submitted

SUBMIT_ROUTE = "/task/submit"
GET_ROUTE = "/task/get/{project}"
RELEASE_ROUTE = "/task/release"


def fresh(w, method: str, path: str, body=None) -> requests.Response:
    """One request on its own connection (so either gateway process may answer it)."""
    headers = {"Connection": "close"}
    if w is not None and w.id is not None:
        headers.update({"X-Worker-ID": str(w.id), "X-Secret": w.secret})
    base = w.base if w is not None else None
    return requests.request(method, base + path, json=body, headers=headers, timeout=30)


def scrape(url: str) -> tuple[requests.Response, dict]:
    """→ (response, {(sample name, frozenset(labels)): value})."""
    r = requests.get(url + "/metrics", headers={"Connection": "close"}, timeout=30)
    assert r.status_code == 200, r.text
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return r, samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def http_count(samples, method, route, status) -> float:
    return value(samples, "tt_http_requests_total", method=method, route=route, status=str(status))


TASK_COUNTERS = ("tt_tasks_submitted_total", "tt_tasks_assigned_total", "tt_tasks_closed_total")


def task_counts(samples) -> dict[str, float]:
    return {name: value(samples, name) for name in TASK_COUNTERS}


@pytest.fixture
def queue(api, make_project, grant):
    pid = make_project(public=True)
    w = api.new_worker("metrics")
    grant(w, pid)
    return pid, w


# --- format -----------------------------------------------------------------------------------------
def test_metrics_is_prometheus_text(api, queue, system):
    pid, w = queue
    assert w.post("/task/submit", {"project": pid, "recipe": "m"}).status_code == 200
    assert w.get(f"/task/get/{pid}").status_code == 200
    r = requests.get(system.url + "/metrics", timeout=30)
    assert r.status_code == 200
    content_type = r.headers["Content-Type"]
    assert content_type.startswith("text/plain") and "version=0.0.4" in content_type, content_type
    text = r.text
    for name in ("tt_http_requests_total", "tt_http_request_duration_seconds_bucket",
                 "tt_http_request_duration_seconds_count", "tt_http_request_duration_seconds_sum",
                 *TASK_COUNTERS):
        assert re.search(rf"^{name}[{{ ]", text, re.M), f"{name} missing"
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["tt_http_requests"].type == "counter"
    assert families["tt_http_request_duration_seconds"].type == "histogram"
    for name in ("tt_tasks_submitted", "tt_tasks_assigned", "tt_tasks_closed"):
        assert families[name].type == "counter", name
    labels = {frozenset(s.labels) for s in families["tt_http_requests"].samples if s.name.endswith("_total")}
    assert labels == {frozenset({"method", "route", "status"})}, labels
    buckets = {frozenset(set(s.labels) - {"le"}) for s in families["tt_http_request_duration_seconds"].samples
               if s.name.endswith("_bucket")}
    assert buckets == {frozenset({"method", "route"})}, buckets


def test_metrics_needs_no_credentials_and_is_not_an_envelope(system):
    r = requests.get(system.url + "/metrics", timeout=30)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()


def test_histogram_is_consistent(queue, system):
    pid, w = queue
    for _ in range(3):
        assert w.get(f"/task/get/{pid}").status_code == 200
    _, samples = scrape(system.url)
    labels = {"method": "GET", "route": GET_ROUTE}
    count = value(samples, "tt_http_request_duration_seconds_count", **labels)
    assert count >= 3
    assert value(samples, "tt_http_request_duration_seconds_sum", **labels) > 0
    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                      if k[0] == "tt_http_request_duration_seconds_bucket"
                      and {x for x in k[1] if x[0] != "le"} == set(labels.items())), key=lambda b: b[0])
    assert buckets and buckets[-1][0] == float("inf") and buckets[-1][1] == count
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:], strict=False)), buckets  # cumulative


# --- route labels ------------------------------------------------------------------------------------------
def test_route_label_is_the_template_never_the_raw_path(api, queue, system):
    pid, w = queue
    marker = uuid.uuid4().hex
    assert w.get(f"/task/get/{pid}").status_code == 200
    assert api.get(f"/project/get/{pid}").status_code == 200
    assert api.get(f"/worker/get/{w.id}").status_code == 200
    assert api.get(f"/worker/get/{10 ** 15 + 7}").status_code == 404
    assert api.get(f"/project/get/{marker}").status_code == 400
    assert api.get(f"/no/such/route/{marker}/123456").status_code == 404
    assert api.get(f"/task/get/{pid}/{marker}").status_code == 404
    r, samples = scrape(system.url)
    assert marker not in r.text
    routes = {dict(k[1])["route"] for k in samples if "route" in dict(k[1])}
    assert GET_ROUTE in routes, routes
    for route in routes:
        assert not any(seg.isdigit() for seg in route.split("/")), f"raw path as label: {route}"
    got = {(dict(k[1])["method"], dict(k[1])["route"], dict(k[1])["status"])
           for k, v in samples.items() if k[0] == "tt_http_requests_total" and v > 0}
    assert ("GET", GET_ROUTE, "200") in got
    project_routes = {route for m, route, s in got if route.startswith("/project/get/") and s == "200"}
    assert len(project_routes) == 1 and project_routes.pop().endswith("}"), got
    worker_404 = {route for m, route, s in got if route.startswith("/worker/get/") and s == "404"}
    assert len(worker_404) == 1 and worker_404.pop().endswith("}"), got


# --- counters summed over both processes -------------------------------------------------------------
def test_counters_count_every_request_exactly_once_across_processes(queue, system):
    pid, w = queue
    _, before = scrape(system.url)
    for i in range(10):
        r = fresh(w, "POST", SUBMIT_ROUTE, {"project": pid, "recipe": f"c{i}"})
        assert submitted(r), r.text
    tids = []
    for _ in range(10):
        r = fresh(w, "GET", f"/task/get/{pid}")
        assert r.status_code == 200 and r.json()["ok"] is True, r.text
        tids.append(r.json()["content"]["task"]["id"])
    for tid in tids:
        r = fresh(w, "POST", RELEASE_ROUTE, {"task_id": tid, "result": 0})
        assert r.status_code == 200 and r.json() == {"ok": True, "content": {"updated": True}}, r.text

    scrapes = [scrape(system.url)[1] for _ in range(5)]
    views = []
    for after in scrapes:
        views.append({
            **{name: after_value - value(before, name)
               for name, after_value in task_counts(after).items()},
            "submit 200": http_count(after, "POST", SUBMIT_ROUTE, 200) - http_count(before, "POST", SUBMIT_ROUTE, 200),
            "get 200": http_count(after, "GET", GET_ROUTE, 200) - http_count(before, "GET", GET_ROUTE, 200),
            "release 200": (http_count(after, "POST", RELEASE_ROUTE, 200)
                            - http_count(before, "POST", RELEASE_ROUTE, 200)),
            "submit latency count": (
                value(after, "tt_http_request_duration_seconds_count", method="POST", route=SUBMIT_ROUTE)
                - value(before, "tt_http_request_duration_seconds_count", method="POST", route=SUBMIT_ROUTE)),
        })
    expected = {"tt_tasks_submitted_total": 10, "tt_tasks_assigned_total": 10, "tt_tasks_closed_total": 10,
                "submit 200": 10, "get 200": 10, "release 200": 10, "submit latency count": 10}
    for view in views:
        assert view == expected, views


def test_task_counters_count_what_happened(queue, system):
    pid, w = queue
    _, before = scrape(system.url)
    # bulk of 5 with one duplicate: 4 stored
    items = [{"project": pid, "recipe": f"b{i}", "hash64": h} for i, h in enumerate([11, 12, 13, 14, 11])]
    r = fresh(w, "POST", "/task/bulk_submit", {"requests": items})
    assert r.status_code == 200 and r.json()["content"] == {"submitted": 4, "duplicates": 1}, r.text
    # a duplicate single submit stores nothing
    r = fresh(w, "POST", SUBMIT_ROUTE, {"project": pid, "recipe": "dup", "hash64": 12})
    assert r.status_code == 409, r.text
    # count=3 hands out 3; a get with nothing left hands out none
    r = fresh(w, "GET", f"/task/get/{pid}?count=3")
    assert r.status_code == 200 and len(r.json()["content"]["tasks"]) == 3, r.text
    tasks = r.json()["content"]["tasks"]
    r = fresh(w, "GET", f"/task/get/{pid}")
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    r = fresh(w, "GET", f"/task/get/{pid}")
    assert r.status_code == 200 and r.json() == {"ok": False, "message": "No task available"}, r.text
    # one closes, one is skipped (no closure), one fails (no closure)
    for task, result in zip(tasks, (0, 2, 1), strict=True):
        r = fresh(w, "POST", RELEASE_ROUTE, {"task_id": task["id"], "result": result})
        assert r.status_code == 200 and r.json()["content"]["updated"] is True, r.text
    for _ in range(3):
        _, after = scrape(system.url)
        delta = {name: after_value - value(before, name) for name, after_value in task_counts(after).items()}
        assert delta == {"tt_tasks_submitted_total": 4, "tt_tasks_assigned_total": 4, "tt_tasks_closed_total": 1}
        assert http_count(after, "POST", SUBMIT_ROUTE, 409) - http_count(before, "POST", SUBMIT_ROUTE, 409) == 1


def test_refused_requests_are_counted_by_status(api, queue, system):
    pid, w = queue
    _, before = scrape(system.url)
    for _ in range(3):
        r = fresh(api, "POST", SUBMIT_ROUTE, {"project": pid, "recipe": "anon"})
        assert r.status_code == 401, r.text
        r = fresh(w, "POST", SUBMIT_ROUTE, {"project": pid, "recipe": ""})
        assert r.status_code == 400, r.text
    _, after = scrape(system.url)
    assert http_count(after, "POST", SUBMIT_ROUTE, 401) - http_count(before, "POST", SUBMIT_ROUTE, 401) == 3
    assert http_count(after, "POST", SUBMIT_ROUTE, 400) - http_count(before, "POST", SUBMIT_ROUTE, 400) == 3
    assert task_counts(after) == task_counts(before)
