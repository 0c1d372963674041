"""Shared by the harness's tests: the fakes beside them import by plain name."""

import sys
from pathlib import Path

# The helpers beside these tests import by plain name under --import-mode=importlib too.
sys.path.insert(0, str(Path(__file__).parent))

import itertools  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402

import pgserver  # noqa: E402

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (tests/pgserver.py). Skipped with the
    reason where none can be had, unless STACKCI_REQUIRE_POSTGRES is set (.ci/run sets it:
    CI installs the server, so there a missing one is a failure, not a skip)."""
    server, reason = pgserver.server_or_skip_reason()
    if server is None:
        if os.environ.get("STACKCI_REQUIRE_POSTGRES"):
            pytest.fail(f"STACKCI_REQUIRE_POSTGRES is set but {reason}")
        pytest.skip(reason)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a new empty database on the session's PostgreSQL server."""
    return postgres_server.create_database(f"test_{os.getpid()}_{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh results database on each backend the store supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'deep' / 'results.db'}"
    return request.getfixturevalue("postgres_url")
