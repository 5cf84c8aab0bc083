#!/usr/bin/env bash
# One command: set up the environment, lint, and run the whole test suite against real RabbitMQ and
# PostgreSQL (each run makes its own throwaway database and AMQP virtual host).
# Extra arguments go to pytest (e.g. ./test.sh -k tasks, ./test.sh --tt-replicas 2).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
.venv/bin/ruff check .
exec .venv/bin/pytest "$@"
