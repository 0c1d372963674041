"""Scheduling observed through states, not durations: the model's executions wait behind a gate
the test opens (serving_helpers.GatedBackend), so two instances executing at once and the order
in which priorities leave the queue are facts on any machine load.

The requests go through the real HTTP application (TestClient) and the real scheduler; the
live-server tests (test_live_triton_features.py) cover the same paths with tritonclient."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from npu_serving import ModelConfig

from serving_helpers import GatedBackend, expected_output, served, wait_ready, wait_until


def infer_request(value: float, priority: int | None = None) -> dict:
    request = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                           "data": [value] * 4}]}
    if priority is not None:
        request["parameters"] = {"priority": priority}
    return request


def post(client, value, priority=None):
    response = client.post("/v2/models/dense/infer", json=infer_request(value, priority))
    assert response.status_code == 200, response.text
    data = np.array(response.json()["outputs"][0]["data"], np.float32).reshape(1, 3)
    np.testing.assert_allclose(data, expected_output(np.full((1, 4), value, np.float32)),
                               rtol=1e-6)
    return response.json()


def pending(client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('nv_inference_pending_request_count{model="dense"'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no nv_inference_pending_request_count for dense")


def gated(make_client, **config):
    """A started server of model 'dense' on a GatedBackend (its executions wait for the test
    to open the gate), without queue delay; the backend, the model and the client."""
    backend = GatedBackend()
    model = served(backend=backend, config=ModelConfig(max_queue_delay_us=0, **config))
    client = make_client(model)
    wait_ready(client)
    return backend, model, client


def test_two_instances_execute_at_once(make_client):
    backend, _, client = gated(make_client, max_batch_size=4, instance_count=2)
    with ThreadPoolExecutor(2) as pool:
        # One after the other: sent together, both could wait in the queue at once and leave
        # it as one batch of two (as they did in a CI run on a loaded machine).
        futures = [pool.submit(post, client, 0.0)]
        backend.wait_started(1)
        futures.append(pool.submit(post, client, 1.0))
        backend.wait_started(2)  # both inside the model before either may finish
        assert backend.running == 2
        backend.open(2)
        instances = sorted(f.result()["parameters"]["instance"] for f in futures)
    assert instances == [0, 1] and backend.most_running == 2


def test_one_instance_executes_one_batch_at_a_time(make_client):
    """The check above fails when instances do not run at once: with one instance, the second
    request waits in the queue while the first executes."""
    backend, _, client = gated(make_client, max_batch_size=4, instance_count=1)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, client, 0.0)
        backend.wait_started(1)
        second = pool.submit(post, client, 1.0)
        wait_until(lambda: pending(client) == 1, "the second request waits in the queue")
        assert backend.running == 1
        backend.open(2)
        first.result(), second.result()
    assert backend.most_running == 1


def test_priority_levels_order_the_queue(make_client):
    # No batching of waiting requests (max_batch_size 1): each execution takes one request,
    # so the order of executions is the order requests leave the queue.
    backend, _, client = gated(make_client, max_batch_size=1, instance_count=1,
                               priority_levels=2, default_priority_level=2)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(post, client, 0.0)]  # occupies the instance
        backend.wait_started(1)
        futures.append(pool.submit(post, client, 1.0, 2))  # low, first to arrive
        wait_until(lambda: pending(client) == 1, "low waits")
        futures.append(pool.submit(post, client, 3.0))  # default level (2, low)
        wait_until(lambda: pending(client) == 2, "default waits")
        futures.append(pool.submit(post, client, 2.0, 1))  # high, last to arrive
        wait_until(lambda: pending(client) == 3, "high waits")
        backend.open(4)
        for future in futures:
            future.result()
    assert [value for _, value in backend.started] == [0.0, 2.0, 1.0, 3.0]


def test_unload_answers_the_executing_and_the_queued_requests(make_client):
    # The executing batch's requests were never answered (their scheduler task was cancelled
    # under them) and the queued ones were told the server was shutting down.
    backend, model, client = gated(make_client, max_batch_size=4, instance_count=1)
    body = infer_request(0.0)
    with ThreadPoolExecutor(4) as pool:
        executing = pool.submit(client.post, "/v2/models/dense/infer", json=body)
        backend.wait_started(1)
        queued = [pool.submit(client.post, "/v2/models/dense/infer", json=body) for _ in range(2)]
        wait_until(lambda: pending(client) == 2, "two requests wait behind the executing one")
        unloading = pool.submit(client.portal.call, model.unload)
        wait_until(lambda: model.state == "unloaded", "the unload began")
        assert client.post("/v2/models/dense/infer", json=body).status_code == 503
        backend.open(1)
        assert executing.result(timeout=GatedBackend.LIMIT_S).status_code == 200
        for request in queued:
            response = request.result(timeout=GatedBackend.LIMIT_S)
            assert response.status_code == 503, response.text
            assert "'dense' version 1 was unloaded before the request ran" in response.text
        unloading.result(timeout=GatedBackend.LIMIT_S)
    assert len(backend.started) == 1 and pending(client) == 0


def test_a_request_whose_client_disconnected_never_executes(make_client):
    # Every abandoned request executed: ten clients giving up after 50 ms on a 0.1 s model
    # cost ten executions. The request waiting behind the executing one leaves the queue.
    import asyncio

    import pytest

    from npu_serving.errors import ClientGone
    from npu_serving.server import _unless_disconnected

    backend, model, client = gated(make_client, max_batch_size=1, instance_count=1)

    class Leaving:  # the ASGI request of a client that disconnects when the test says
        gone: asyncio.Event

        async def receive(self):
            self.gone = asyncio.Event()
            await self.gone.wait()
            return {"type": "http.disconnect"}

    leaving = Leaving()

    async def abandoned():
        return await _unless_disconnected(leaving, model.infer(
            {"x": np.full((1, 4), 1.0, np.float32)}))

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, client, 0.0)
        backend.wait_started(1)
        second = pool.submit(client.portal.call, abandoned)
        wait_until(lambda: pending(client) == 1, "the second request waits in the queue")
        client.portal.call(lambda: leaving.gone.set())
        with pytest.raises(ClientGone):
            second.result(timeout=GatedBackend.LIMIT_S)
        backend.open(2)
        first.result(timeout=GatedBackend.LIMIT_S)
    post(client, 2.0)  # served on
    assert [value for _, value in backend.started] == [0.0, 2.0] and pending(client) == 0
