"""Python client for the task tracker: ``Client`` (HTTP calls with correct retries), ``Worker`` (the
worker loop with lease keeping and graceful stop) and ``TrackerLogHandler``. See README.md."""

from task_tracker_client.client import Client, ClientStats, RetryPolicy
from task_tracker_client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PausedWorker,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TrackerError,
    Unauthorized,
    Unavailable,
)
from task_tracker_client.loghandler import TrackerLogHandler
from task_tracker_client.models import BulkResult, Project, Result, Task
from task_tracker_client.worker import Fail, Skip, Worker, WorkerStats

__version__ = "0.1.0"

__all__ = [
    "BadRequest", "BulkResult", "Client", "ClientStats", "Conflict", "Fail", "Forbidden", "NotFound", "PausedWorker",
    "PayloadTooLarge", "Project", "RateLimited", "Result", "RetryPolicy", "ServerError", "Skip", "Task",
    "TrackerError", "TrackerLogHandler", "Unauthorized", "Unavailable", "Worker", "WorkerStats",
]
