"""Fixtures of the fuzz: the request statistics (tests/fuzz/stats.py), printed at the end of the run."""

from __future__ import annotations

import os
import shutil
import tempfile

import hypothesis.configuration
import pytest

from tests.fuzz.stats import FuzzStats

STATS = pytest.StashKey[FuzzStats]()
HYPOTHESIS_HOME = pytest.StashKey[str]()


def pytest_configure(config):
    config.stash[STATS] = FuzzStats()
    # Hypothesis keeps caches (constants, Unicode tables) under ./.hypothesis: not in the working tree.
    config.stash[HYPOTHESIS_HOME] = tempfile.mkdtemp(prefix="tt-fuzz-hypothesis-")
    hypothesis.configuration.set_hypothesis_home_dir(config.stash[HYPOTHESIS_HOME])


def pytest_unconfigure(config):
    home = config.stash.get(HYPOTHESIS_HOME, None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def fuzz_stats(request) -> FuzzStats:
    return request.config.stash[STATS]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = config.stash.get(STATS, None)
    if stats is None or not stats.identities:
        return
    terminalreporter.section("fuzz summary (schemathesis)")
    for line in stats.lines(verbose=os.environ.get("TT_FUZZ_VERBOSE") == "1"):
        terminalreporter.write_line(line)
