#!/usr/bin/env bash
# Run the benchmark suite with the project's venv: ./bench/run.sh [--quick] [--parts …] [...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m bench "$@"
