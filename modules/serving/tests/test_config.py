"""Triton's model configuration: config.pbtxt through Triton's schema, config.yaml through the
same fields, the JSON of GET .../config, and one-line errors that leave other models loading."""

from __future__ import annotations

import onnx
import pytest

from npu_serving import InferenceServer, RepositoryError, scan_repository
from npu_serving.repository import scan_models, BrokenEntry
from npu_serving.server import create_app

from serving_helpers import build_dense_relu

PBTXT = """
name: "dense"
max_batch_size: 8
input [{ name: "x", data_type: TYPE_FP32, dims: [4] }]
output [{ name: "y", data_type: TYPE_FP32, dims: [3] }]
dynamic_batching {
  preferred_batch_size: [4, 8]
  max_queue_delay_microseconds: 250
  priority_levels: 3
  default_priority_level: 2
  default_queue_policy {
    max_queue_size: 16, timeout_action: DELAY, default_timeout_microseconds: 5000,
    allow_timeout_override: true
  }
}
instance_group [{ count: 3, kind: KIND_CPU }]
version_policy { latest { num_versions: 2 } }
model_warmup [{ name: "w", batch_size: 2, inputs { key: "x" value: { data_type: TYPE_FP32,
                dims: [4], zero_data: true } } }]
parameters { key: "precision" value: { string_value: "fp16" } }
"""


def repository(tmp_path, config: str, name="dense", file="config.pbtxt", versions=(1, 2, 3)):
    for version in versions:
        (tmp_path / name / str(version)).mkdir(parents=True)
        onnx.save(build_dense_relu(), str(tmp_path / name / str(version) / "model.onnx"))
    (tmp_path / name / file).write_text(config)
    return tmp_path


def test_pbtxt_fields(tmp_path):
    entries = scan_repository(repository(tmp_path, PBTXT))
    assert [e.version for e in entries] == ["2", "3"]  # latest { num_versions: 2 }
    config = entries[0].config
    assert (config.max_batch_size, config.preferred_batch_sizes, config.max_queue_delay_us) == \
        (8, (4, 8), 250)
    assert (config.max_queue_size, config.timeout_action, config.default_timeout_us,
            config.allow_timeout_override) == (16, "DELAY", 5000, True)
    assert (config.priority_levels, config.default_priority_level) == (3, 2)
    assert config.instances() == 3 and config.precision == "fp16"
    assert config.batch_sizes_to_prepare() == [1, 2, 4, 8]


def test_yaml_takes_the_same_fields(tmp_path):
    text = ("max_batch_size: 8\ndynamic_batching:\n  preferred_batch_size: [4]\n"
            "  default_queue_policy: {max_queue_size: 3}\ninstance_group: [{count: 1}]\n"
            "version_policy: {specific: {versions: [1, 3]}}\n")
    entries = scan_repository(repository(tmp_path, text, file="config.yaml"))
    assert [e.version for e in entries] == ["1", "3"]
    config = entries[0].config
    assert config.max_queue_size == 3 and config.instances() == 1
    assert config.preferred_batch_sizes == (4,) and config.batches_dynamically


@pytest.mark.parametrize(("text", "field"), [
    ("max_batch_size: 4\nmax_queue_size: 2\n", 'no field named "max_queue_size"'),
    ("dynamic_batching { max_queue_size: 2 }\n", 'no field named "max_queue_size"'),
    ("max_batch_size: -1\n", "max_batch_size: expected a non-negative integer"),
    ("max_batch_size: 4\ndynamic_batching { preferred_batch_size: 8 }\n",
     "dynamic_batching.preferred_batch_size: 8 is not from 1 to max_batch_size 4"),
    ("instance_group [{ kind: KIND_GPU }]\n", "instance_group.kind: KIND_GPU"),
    ("sequence_batching {}\n", "sequence_batching: not supported"),
    ("max_batch_size: 4\ndynamic_batching { priority_levels: 1 default_priority_level: 2 }\n",
     "default_priority_level"),
    # a queue per level: 10**12 levels failed the load with MemoryError (the model stuck loading)
    ("max_batch_size: 4\ndynamic_batching { priority_levels: 1000000000000 }\n",
     "dynamic_batching.priority_levels: 1000000000000 exceeds the 1024 levels"),
    # a thread, device and plans per instance: 10**6 exhausted the server's memory
    ("instance_group [{ count: 1000000 }]\n", "instance_group.count: 1000000 instances exceed"),
    ("instance_group [{ count: 40 }, { count: 40 }]\n", "80 instances exceed the 64"),
])
def test_bad_fields_are_one_line_naming_the_file(tmp_path, text, field):
    repository(tmp_path, text)
    with pytest.raises(RepositoryError) as error:
        scan_repository(tmp_path)
    message = str(error.value)
    assert message.startswith(str(tmp_path / "dense" / "config.pbtxt")) and field in message
    assert "\n" not in message


def test_a_bad_model_does_not_stop_the_others(tmp_path):
    repository(tmp_path, "max_batch_size: 4\nbogus: 1\n", name="bad")
    repository(tmp_path, "max_batch_size: 4\n", name="good", versions=(1,))
    broken, good = scan_models(tmp_path)
    assert isinstance(broken, BrokenEntry) and 'no field named "bogus"' in broken.error
    assert good[0].name == "good"
    server = InferenceServer.from_repository(tmp_path, "npu-edge")
    assert list(server.versions) == ["good"] and "bogus" in server.broken["bad"]
    assert [row["state"] for row in server.index()] == ["UNAVAILABLE", "LOADING"]


def test_config_endpoint_json(tmp_path):
    from fastapi.testclient import TestClient

    server = InferenceServer.from_repository(repository(tmp_path, PBTXT), "npu-edge")
    # No lifespan: the configuration is there before (and whether or not) the model loads.
    client = TestClient(create_app(server))
    config = client.get("/v2/models/dense/config").json()
    assert config["max_batch_size"] == 8 and config["input"][0]["dims"] == [4]
    batching = config["dynamic_batching"]
    assert batching["max_queue_delay_microseconds"] == 250
    assert batching["default_queue_policy"]["default_timeout_microseconds"] == 5000
    assert config["version_policy"] == {"latest": {"num_versions": 2}}
    assert config["model_warmup"][0]["batch_size"] == 2
    assert client.get("/v2/models/dense/versions/2/config").status_code == 200
    assert client.get("/v2/models/dense/versions/1/config").status_code == 404


def test_config_is_completed_from_the_model_without_a_file(tmp_path):
    from fastapi.testclient import TestClient

    (tmp_path / "plain").mkdir()
    onnx.save(build_dense_relu(batch=1), str(tmp_path / "plain" / "model.onnx"))
    client = TestClient(create_app(InferenceServer.from_repository(tmp_path, "npu-edge")))
    config = client.get("/v2/models/plain/config").json()
    assert config["max_batch_size"] == 0 and config["input"][0]["dims"] == [1, 4]
    assert config["platform"] == "npu_onnx" and config["instance_group"][0]["kind"] == "KIND_CPU"


def test_a_yaml_string_that_is_not_unicode_is_one_line(tmp_path):
    # "\ud800" made protobuf's ParseDict raise SystemError: the server exited at start.
    repository(tmp_path, 'max_batch_size: 4\ninstance_group: [{kind: "\\ud800"}]\n',
               file="config.yaml")
    (broken,) = scan_models(tmp_path)
    assert isinstance(broken, BrokenEntry)
    assert broken.error.endswith("config.yaml: a name or string is not valid Unicode text "
                                 "(surrogates not allowed)")
