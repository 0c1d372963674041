"""The fault suite's fixtures and its table: each test records the row it proved (fault,
recorded cause, results kept, resumed) and the table prints at the end of the session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from faultstack import ROWS, FaultRepo  # noqa: E402


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One build cache for every night of the suite (the fake modules build once)."""
    return tmp_path_factory.mktemp("faults-cache")


@pytest.fixture
def repo(tmp_path, shared_cache):
    return FaultRepo(tmp_path, shared_cache)


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    headers = ("fault", "recorded cause", "results kept", "resumed")
    widths = [min(90, max(len(headers[i]), *(len(row[i]) for row in ROWS))) for i in range(4)]
    write = terminalreporter.write_line
    terminalreporter.section("fault table")
    write("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    write("  ".join("-" * w for w in widths))
    for row in ROWS:
        write("  ".join(cell[:w].ljust(w) for cell, w in zip(row, widths)))
