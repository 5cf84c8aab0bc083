#!/usr/bin/env bash
# One command: set up the environment, migrate the database, run every service and the gateway.
# Extra arguments go to `tracker run` (e.g. ./run.sh --scale task_svc=2 --gateway-workers 4).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
# The local broker is one RabbitMQ node: a quorum queue has no other node to replicate to there,
# and costs a log write per request (measured: classic queues gave 23 % more worker cycles and half
# RabbitMQ's CPU; docs/PERFORMANCE.md). So, unless told otherwise (TT_QUEUE_TYPE, or TT_AMQP_URI
# naming a broker of its own), the service queues here are classic queues.
if [ -z "${TT_QUEUE_TYPE:-}" ] && [ -z "${TT_AMQP_URI:-}" ]; then
  export TT_QUEUE_TYPE=classic
fi
exec .venv/bin/tracker run "$@"
