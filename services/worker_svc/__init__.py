"""worker_svc plugin."""

from tracker.plugins import Plugin

PLUGIN = Plugin(
    name="worker_svc",
    service="services.worker_svc.service:WorkerService",
    routes="services.worker_svc.routes:ROUTES",
    tables="services.worker_svc.tables",
)
