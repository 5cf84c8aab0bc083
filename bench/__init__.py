"""Benchmark suite of the task tracker: ``python -m bench --help`` (see bench/README.md)."""
