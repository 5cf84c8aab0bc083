"""log_svc plugin."""

from tracker.plugins import Plugin

PLUGIN = Plugin(
    name="log_svc",
    service="services.log_svc.service:LogService",
    routes="services.log_svc.routes:ROUTES",
    tables="services.log_svc.tables",
)
