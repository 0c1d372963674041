"""Fixtures of the serving tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from npu_serving import InferenceServer, ServedModel
from npu_serving.server import create_app

# The helpers beside these tests import by plain name under --import-mode=importlib too.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def make_client():
    """make_client(*served_models) -> a TestClient whose lifespan (model loading) has started."""
    clients = []

    def make(*models: ServedModel) -> TestClient:
        client = TestClient(create_app(InferenceServer(list(models))))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
