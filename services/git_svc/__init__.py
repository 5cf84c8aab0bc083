"""git_svc plugin."""

from tracker.plugins import Plugin

PLUGIN = Plugin(
    name="git_svc",
    service="services.git_svc.service:GitService",
    routes="services.git_svc.routes:ROUTES",
    tables="services.git_svc.tables",
)
