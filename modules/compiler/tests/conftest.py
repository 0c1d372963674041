import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def plan_cache_in_tmp(tmp_path_factory, monkeypatch):
    """The CLI caches plans: never in the user's home during tests."""
    monkeypatch.setenv("NPU_PLAN_CACHE", str(tmp_path_factory.getbasetemp() / "plan-cache"))
