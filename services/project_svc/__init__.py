"""project_svc plugin."""

from tracker.plugins import Plugin

PLUGIN = Plugin(
    name="project_svc",
    service="services.project_svc.service:ProjectService",
    routes="services.project_svc.routes:ROUTES",
    tables="services.project_svc.tables",
)
