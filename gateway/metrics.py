"""Prometheus metrics of the gateway (contract §6.1 ``/metrics``), correct across gunicorn workers.

Every gunicorn worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by
gateway/gunicorn_conf.py before any worker starts); a scrape, answered by whichever worker,
merges the files of all of them, dead ones included, so counters never go backwards when a worker
restarts. Task counters are fed by the services' replies (``counts``), so the gateway counts
what the database actually did, not what was asked.
"""

from __future__ import annotations

import os
import time

import falcon
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

REQUESTS = Counter("tt_http_requests", "HTTP requests answered", ["method", "route", "status"])
DURATION = Histogram("tt_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
                     buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
TASKS = {
    "submitted": Counter("tt_tasks_submitted", "Tasks stored by submit and bulk_submit"),
    "assigned": Counter("tt_tasks_assigned", "Tasks handed out to workers"),
    "closed": Counter("tt_tasks_closed", "Tasks closed by a release"),
}
# One per call sent to a service, a long-poll's every re-ask included: what a parked request costs.
CALLS = Counter("tt_rpc_calls", "Calls sent to the services", ["service", "operation"])
UNMATCHED = "unmatched"  # the route label of requests no route matched (never the raw path)


def count_tasks(counts: dict | None) -> None:
    for name, value in (counts or {}).items():
        if value and name in TASKS:
            TASKS[name].inc(value)


class RequestMetrics:
    """Falcon middleware: one count and one latency sample per answered request."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        route = req.uri_template or UNMATCHED
        REQUESTS.labels(req.method, route, str(resp.status_code)).inc()
        started = getattr(req.context, "started", None)
        if started is not None:
            DURATION.labels(req.method, route).observe(time.perf_counter() - started)


class MetricsResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            resp.data = generate_latest(registry)
        else:  # a single process (e.g. the app run without gateway/gunicorn_conf.py)
            resp.data = generate_latest()
        resp.content_type = CONTENT_TYPE_PLAIN_0_0_4
