"""manager_svc plugin."""

from tracker.plugins import Plugin

PLUGIN = Plugin(
    name="manager_svc",
    service="services.manager_svc.service:ManagerService",
    routes="services.manager_svc.routes:ROUTES",
    tables="services.manager_svc.tables",
    cli="services.manager_svc.cli:register",
)
