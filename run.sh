#!/usr/bin/env bash
# One command: set up the environment, migrate the database, run every service and the gateway.
# Extra arguments go to `tracker run` (e.g. ./run.sh --scale task_svc=2 --gateway-workers 4).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
exec .venv/bin/tracker run "$@"
