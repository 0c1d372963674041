"""Dynamic batching: concurrent requests merge along the batch dimension, run once, and split."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from npu_serving import ModelConfig
from npu_serving.batching import DynamicBatcher, Durations, Policy, merged

from serving_helpers import DenseReluBackend, expected_output, served, wait_ready


def run_batches(requests, max_batch_size, delay_s=0.05, fail=False):
    """Submit every request at once; returns (per-request outputs, sizes of executed batches)."""
    executed = []

    async def execute(batch, instance):
        inputs = merged(batch)
        executed.append(len(inputs["x"]))
        assert instance == 0
        if fail:
            raise RuntimeError("device lost")
        return {"y": inputs["x"] * 2}, {"batch_size": len(inputs["x"])}

    async def main():
        batcher = DynamicBatcher(execute, max_batch_size, delay_s)
        batcher.start()
        try:
            results = await asyncio.gather(
                *(batcher.submit({"x": x}) for x in requests), return_exceptions=True
            )
            return [r if isinstance(r, Exception) else r[0] for r in results]
        finally:
            await batcher.stop()

    return asyncio.run(main()), executed


def test_concurrent_requests_merge_and_split_in_order():
    requests = [np.full((size, 2), i, dtype=np.float32) for i, size in enumerate([1, 2, 1])]
    results, executed = run_batches(requests, max_batch_size=8)
    assert executed == [4]
    for x, result in zip(requests, results):
        np.testing.assert_array_equal(result["y"], x * 2)


def test_a_lone_request_gets_its_outputs_whole():
    """A model without batching may answer outputs whose first axis is not its input's (a
    recognizer's sequence of 20 steps for one image, a scalar): none is cut to the input's."""
    async def execute(batch, instance):
        x = merged(batch)["x"]
        return {"seq": np.repeat(x, 20, axis=0), "score": np.float32(x.sum())}, {}

    async def main():
        batcher = DynamicBatcher(execute, 0, 0.0)
        batcher.start()
        try:
            return await batcher.submit({"x": np.ones((1, 3), np.float32)})
        finally:
            await batcher.stop()

    outputs, _ = asyncio.run(main())
    assert outputs["seq"].shape == (20, 3) and outputs["score"] == 3.0


def test_batches_never_exceed_max_batch_size():
    requests = [np.full((size, 2), i, dtype=np.float32) for i, size in enumerate([2, 2, 3, 1])]
    results, executed = run_batches(requests, max_batch_size=4)
    assert executed == [4, 4]
    for x, result in zip(requests, results):
        np.testing.assert_array_equal(result["y"], x * 2)


def test_requests_of_other_shapes_are_not_merged():
    requests = [np.zeros((1, 2), np.float32), np.zeros((1, 3), np.float32), np.zeros((1, 2), np.float32)]
    results, executed = run_batches(requests, max_batch_size=8)
    assert executed == [1, 1, 1]
    assert [r["y"].shape for r in results] == [(1, 2), (1, 3), (1, 2)]


def test_a_failed_batch_fails_each_of_its_requests():
    results, executed = run_batches([np.zeros((1, 2), np.float32)] * 3, max_batch_size=8, fail=True)
    assert executed == [3]
    assert all(isinstance(r, RuntimeError) and str(r) == "device lost" for r in results)


def test_server_batches_concurrent_http_requests(make_client):
    backend = DenseReluBackend()
    # The batch fills up (4 of 4) long before the generous delay, which only guards slow machines.
    config = ModelConfig(max_batch_size=4, max_queue_delay_us=5_000_000, instance_count=1)
    client = make_client(served(backend=backend, config=config))
    wait_ready(client)
    xs = [np.full((1, 4), i / 4, dtype=np.float32) for i in range(4)]

    def post(x):
        request = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x.ravel().tolist()}]}
        return client.post("/v2/models/dense/infer", json=request)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(post, xs))
    for x, response in zip(xs, responses):
        assert response.status_code == 200, response.text
        data = np.array(response.json()["outputs"][0]["data"], np.float32).reshape(1, 3)
        np.testing.assert_allclose(data, expected_output(x), rtol=1e-6)
    assert backend.batches == [4]
    metrics = client.get("/metrics").text
    assert 'npu_serving_batch_size_count{model="dense",version="1"} 1.0' in metrics
    assert 'npu_serving_batch_size_sum{model="dense",version="1"} 4.0' in metrics
    assert 'npu_serving_queue_duration_seconds_count{model="dense",version="1"} 4.0' in metrics


@pytest.mark.parametrize("max_batch_size", [0, 4])
def test_batching_off_runs_each_request_alone(make_client, max_batch_size):
    backend = DenseReluBackend()
    config = ModelConfig(max_batch_size=max_batch_size, dynamic_batching=False)
    client = make_client(served(backend=backend, config=config))
    wait_ready(client)
    request = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [0.5] * 8}]}

    def post(_):
        return client.post("/v2/models/dense/infer", json=request).status_code

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(post, range(3))) == [200] * 3
    assert backend.batches == [2, 2, 2]


def test_metrics_count_outcomes(make_client):
    client = make_client(served())
    wait_ready(client)
    good = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}]}
    bad = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT32", "data": [0] * 4}]}
    for request in (good, good, bad):
        client.post("/v2/models/dense/infer", json=request)
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'npu_serving_inference_requests_total{model="dense",outcome="success",version="1"} 2.0' in text
    assert 'npu_serving_inference_requests_total{model="dense",outcome="client_error",version="1"} 1.0' in text
    assert 'npu_serving_request_duration_seconds_count{model="dense",version="1"} 3.0' in text
    assert 'npu_serving_compute_duration_seconds_count{model="dense",version="1"} 2.0' in text
    assert 'npu_serving_model_ready{model="dense",version="1"} 1.0' in text


def run_planned(seconds=None, requests: int = 7):
    """7 requests of one image on one instance with plans for 1, 2, 4 and 8; returns the sizes
    executed and each request's output."""
    executed = []

    async def execute(batch, instance):
        inputs = merged(batch)
        executed.append(len(inputs["x"]))
        return {"y": inputs["x"]}, {}

    async def main():
        batcher = DynamicBatcher(execute, policy=Policy(max_batch_size=8, max_queue_delay_s=0.05,
                                                        planned_batch_sizes=(1, 2, 4, 8)),
                                 seconds=seconds)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit({"x": np.full((1, 2), i, np.float32)})
                                          for i in range(requests)))
        finally:
            await batcher.stop()

    results = asyncio.run(main())
    assert [float(r[0]["y"][0, 0]) for r in results] == list(range(requests))
    return executed


def test_batches_are_cut_to_planned_sizes():
    assert run_planned() == [4, 2, 1]  # 7 waiting, times unknown: planned sizes, nothing padded


def test_a_batch_is_padded_when_the_next_plan_serves_more_per_second():
    # A device whose batch of 8 takes little more than a batch of 4: 7 padded to 8 serve
    # 7 / 1.1 s against 4 / 1.0 s cut back.
    assert run_planned({4: 1.0, 8: 1.1}.get) == [7]


def test_a_batch_is_cut_when_padding_would_serve_fewer():
    # A flat device (8 take twice as long as 4): the padded image would be work for nothing.
    assert run_planned({4: 1.0, 8: 2.0}.get) == [4, 2, 1]


def test_durations_follow_the_latest_executions():
    durations = Durations()
    assert durations(4) is None
    durations.observe(4, 1.0)
    assert durations(4) == 1.0
    for _ in range(40):
        durations.observe(4, 2.0)
    assert durations(4) == pytest.approx(2.0, rel=1e-3)


def run_on_instances(requests: int, instances: int, busy_s: float = 0.05):
    """`requests` one-image requests at once on `instances` instances (max batch 8, a long
    delay); returns the (instance, size) of each execution."""
    executed = []

    async def execute(batch, instance):
        executed.append((instance, len(batch)))
        await asyncio.sleep(busy_s)
        return {"y": merged(batch)["x"]}, {}

    async def main():
        batcher = DynamicBatcher(execute, policy=Policy(max_batch_size=8, max_queue_delay_s=0.2,
                                                        instances=instances))
        batcher.start()
        try:
            await asyncio.gather(*(batcher.submit({"x": np.zeros((1, 2), np.float32)})
                                   for _ in range(requests)))
        finally:
            await batcher.stop()

    asyncio.run(main())
    return executed


def test_idle_instances_share_the_waiting_requests():
    # Four requests and two idle instances: two batches of two side by side, not one of four
    # while the other instance idles (nor a wait for the delay when nothing more can come).
    assert sorted(run_on_instances(4, instances=2)) == [(0, 2), (1, 2)]


def test_a_lone_free_instance_takes_all_that_waits():
    assert run_on_instances(4, instances=1) == [(0, 4)]
