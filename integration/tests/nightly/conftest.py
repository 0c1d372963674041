"""Fixtures of the nightly's tests: a workspace on this repository and a fresh SQLite store."""

from pathlib import Path

import pytest

from stackci.results.store import Store
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def ws(tmp_path):
    return Workspace(repo=REPO, home=tmp_path / "home")


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()
