"""task_svc plugin."""

from tracker.plugins import Plugin

PLUGIN = Plugin(
    name="task_svc",
    service="services.task_svc.service:TaskService",
    routes="services.task_svc.routes:ROUTES",
    tables="services.task_svc.tables",
)
