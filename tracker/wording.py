"""Words and names that more than one layer spells: the gateway and the services, or a service and
the gateway's long-poll listener. Each is written here once and imported where it is used, so that
a client matching a message (the Python client matches PAUSED) or a listener matching a channel
cannot drift from what is sent."""

from __future__ import annotations

# --- messages (contract §1.4, §6.5) --------------------------------------------------------------
UNAUTHORIZED = "Unauthorized"
WORKER_CREDENTIALS_REQUIRED = "Worker credentials required"
INVALID_WORKER_CREDENTIALS = "Invalid worker credentials"
PAUSED = "A manager has paused you"  # 400 of a paused worker's task get: the gateway's or task_svc's
UNAVAILABLE = "Service unavailable"  # 503

# --- HTTP names --------------------------------------------------------------------------------------
WORKER_ID_HEADER = "X-Worker-ID"
SECRET_HEADER = "X-Secret"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SESSION_COOKIE = "tt"

# --- PostgreSQL channels -------------------------------------------------------------------------------
# task_svc notifies it ('<project>') when a task becomes assignable; each gateway process listens.
TASK_READY_CHANNEL = "tt_task_ready"
