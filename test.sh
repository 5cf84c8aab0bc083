#!/usr/bin/env bash
# One command: set up the environment, lint, and run the whole test suite against real RabbitMQ and
# PostgreSQL (each run makes its own throwaway database and AMQP virtual host).
# Extra arguments go to pytest (e.g. ./test.sh -k tasks, ./test.sh --tt-replicas 2).
# The suite runs in TT_TEST_PROCESSES pytest processes (pytest-xdist, default 2), each with a system
# of its own; `./test.sh -n 0` runs it in one process.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
.venv/bin/ruff check .
parallel=(-n "${TT_TEST_PROCESSES:-2}" --dist loadgroup)
for arg in "$@"; do
  case "$arg" in -n | -n[0-9]* | --numprocesses* | no:xdist) parallel=() ;; esac
done
exec .venv/bin/pytest "${parallel[@]}" "$@"
