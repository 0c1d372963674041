"""The server's metrics: the simulated devices' gauges follow the model instances served."""

from __future__ import annotations

from npu_serving.metrics import Metrics


def test_an_unloaded_instance_leaves_the_device_memory_total():
    metrics = Metrics()
    for instance in range(2):
        metrics.device_attached("npu-edge", ("dense", "1", instance), 512)
    metrics.device_execution("npu-edge", ("dense", "1", 0), 10.0, 64)
    metrics.device_detached("npu-edge", ("dense", "1", 1))
    text = metrics.exposition().decode()
    assert 'npu_device_memory_total_bytes{sku="npu-edge"} 512.0' in text
    assert 'npu_device_memory_used_bytes{sku="npu-edge"} 64.0' in text
