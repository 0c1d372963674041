"""The model repository layout, config.yaml, and the CLI's one-line errors."""

from __future__ import annotations

import npu_driver
import onnx
import pytest

from npu_serving import (
    CompilerBackend, InferenceServer, ModelConfig, RepositoryError, scan_repository,
)
from npu_serving.__main__ import main

from serving_helpers import build_dense_relu


def write_model(path, model=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model or build_dense_relu(), str(path))
    return path


def test_highest_version_is_served_and_unversioned_models_are_version_1(tmp_path):
    write_model(tmp_path / "dense" / "1" / "model.onnx")
    write_model(tmp_path / "dense" / "10" / "model.onnx")
    write_model(tmp_path / "dense" / "2" / "model.onnx")
    write_model(tmp_path / "plain" / "model.onnx")
    (tmp_path / ".cache").mkdir()
    (tmp_path / "README.md").write_text("not a model")
    entries = scan_repository(tmp_path)
    assert [(e.name, e.version) for e in entries] == [("dense", "10"), ("plain", "1")]
    assert entries[0].path == tmp_path / "dense" / "10" / "model.onnx"
    assert entries[1].config == ModelConfig()


def test_default_model_filename_names_the_file_in_each_version(tmp_path):
    write_model(tmp_path / "dense" / "1" / "densenet.onnx")
    (tmp_path / "dense" / "config.pbtxt").write_text('default_model_filename: "densenet.onnx"\n')
    (entry,) = scan_repository(tmp_path)
    assert entry.path == tmp_path / "dense" / "1" / "densenet.onnx"


@pytest.mark.parametrize(("name", "message"), [
    ("../model.onnx", "default_model_filename '../model.onnx': expected a file name"),
    ("other.onnx", "version directory has no other.onnx"),
])
def test_a_bad_default_model_filename_is_one_line(tmp_path, name, message):
    write_model(tmp_path / "dense" / "1" / "model.onnx")
    (tmp_path / "dense" / "config.pbtxt").write_text(f'default_model_filename: "{name}"\n')
    with pytest.raises(RepositoryError, match=message.replace(".", "[.]")) as caught:
        scan_repository(tmp_path)
    assert "\n" not in str(caught.value)


def test_config_yaml(tmp_path):
    write_model(tmp_path / "dense" / "model.onnx")
    (tmp_path / "dense" / "config.yaml").write_text(
        "precision: fp16\nmax_batch_size: 8\ndynamic_batching:\n  max_queue_delay_microseconds: 500\n"
    )
    (entry,) = scan_repository(tmp_path)
    assert entry.config == ModelConfig("fp16", 8, True, 500)
    assert entry.config.batches_dynamically
    (tmp_path / "dense" / "config.yaml").write_text("max_batch_size: 4\ndynamic_batching: false\n")
    (entry,) = scan_repository(tmp_path)
    assert entry.config.max_batch_size == 4 and not entry.config.batches_dynamically


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("precision: fp8\n", "precision: expected one of fp32, fp16, bf16, int8, got 'fp8'"),
        ("max_batch_size: -1\n", "max_batch_size: expected a non-negative integer, got -1"),
        ("max_batch_size: eight\n", "max_batch_size: expected a non-negative integer, got 'eight'"),
        ("batch: 4\n", "unknown setting 'batch'"),
        ("dynamic_batching: {delay: 5}\n", "dynamic_batching: expected false or a mapping"),
        ("[1, 2]\n", "expected a mapping of settings, got list"),
        ("precision: [\n", "not readable YAML"),
    ],
)
def test_bad_config_names_the_file_and_field(tmp_path, config, message):
    write_model(tmp_path / "dense" / "model.onnx")
    (tmp_path / "dense" / "config.yaml").write_text(config)
    with pytest.raises(RepositoryError) as error:
        scan_repository(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'dense' / 'config.yaml'}: ")
    assert message in str(error.value)


def test_bad_entries_name_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RepositoryError, match="empty: no model: expected"):
        scan_repository(tmp_path)
    (tmp_path / "empty" / "3").mkdir()
    with pytest.raises(RepositoryError, match="3: version directory has no model.onnx"):
        scan_repository(tmp_path)
    with pytest.raises(RepositoryError, match="nowhere: model repository is not a directory"):
        scan_repository(tmp_path / "nowhere")


def test_server_from_repository_applies_each_models_config(tmp_path):
    write_model(tmp_path / "dense" / "model.onnx")
    (tmp_path / "dense" / "config.yaml").write_text("precision: fp16\nmax_batch_size: 4\n")
    write_model(tmp_path / "plain" / "1" / "model.onnx", build_dense_relu(batch=1))
    server = InferenceServer.from_repository(tmp_path, "npu-edge")
    dense, plain = server.models["dense"], server.models["plain"]
    assert dense.backend.precision == "fp16" and dense.config.max_batch_size == 4
    assert dense.metadata()["inputs"][0]["shape"] == [-1, 4]
    assert plain.backend.precision == "fp32" and plain.metadata()["inputs"][0]["shape"] == [1, 4]


def test_backend_metadata_comes_from_the_onnx_model(tmp_path):
    path = write_model(tmp_path / "m.onnx", build_dense_relu(batch=2))
    fixed = CompilerBackend(path, "any-sku")
    assert [s.to_dict() for s in fixed.inputs] == [{"name": "x", "datatype": "FP32", "shape": [2, 4]}]
    assert [s.to_dict() for s in fixed.outputs] == [{"name": "y", "datatype": "FP32", "shape": [2, 3]}]
    batching = CompilerBackend(path, "any-sku", batching=True)
    assert batching.inputs[0].shape == (-1, 4) and batching.outputs[0].shape == (-1, 3)


def test_corrupt_model_is_a_repository_error(tmp_path):
    path = tmp_path / "bad" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(b"\x08\x07garbage")
    with pytest.raises(RepositoryError, match="model.onnx: not a readable ONNX model"):
        CompilerBackend(path, "any-sku")


def test_config_yaml_not_utf8_is_one_line(tmp_path):
    write_model(tmp_path / "dense" / "model.onnx")
    (tmp_path / "dense" / "config.yaml").write_bytes(b"max_batch_size: 4\n\xff\xfe\n")
    with pytest.raises(RepositoryError, match=r"config.yaml: not readable YAML \('utf-8' codec"):
        scan_repository(tmp_path)


def test_empty_model_file_is_refused(tmp_path):
    # An empty file parses as an empty ModelProto: no inputs, no outputs, and its load hung.
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "model.onnx").write_bytes(b"")
    with pytest.raises(RepositoryError, match="model.onnx: not an ONNX model: its graph has no "
                                              "outputs"):
        scan_repository(tmp_path)


def test_index_survives_the_repository_going_away(tmp_path):
    from fastapi.testclient import TestClient

    from npu_serving.server import create_app

    write_model(tmp_path / "repo" / "dense" / "model.onnx")
    server = InferenceServer.from_repository(tmp_path / "repo", "npu-edge")
    (tmp_path / "repo").rename(tmp_path / "moved")
    response = TestClient(create_app(server)).post("/v2/repository/index")
    assert response.status_code == 200, response.text
    assert [row["name"] for row in response.json()] == ["dense"]


def cli_error(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(list(argv)))
    err = capsys.readouterr().err
    return exit_info.value.code, err


def test_cli_bad_repository_is_one_line_exit_2(tmp_path, capsys, known_sku):
    code, err = cli_error(capsys, "--model-repository", str(tmp_path / "missing"), "--sku", known_sku)
    assert code == 2
    assert err == f"npu-serving: error: {tmp_path / 'missing'}: model repository is not a directory\n"


def test_cli_unknown_sku_is_one_line_exit_2(tmp_path, capsys):
    code, err = cli_error(capsys, "--model-repository", str(tmp_path), "--sku", "no-such-npu")
    assert code == 2
    assert err.startswith("npu-serving: error: ") and "no-such-npu" in err
    assert err.count("\n") == 1


@pytest.fixture
def known_sku():
    return npu_driver.list_skus()[0].name


@pytest.fixture
def explicit(tmp_path):
    """A started server in explicit model control mode, serving 'dense' from its repository."""
    from fastapi.testclient import TestClient

    from npu_serving.server import create_app
    from serving_helpers import wait_ready

    write_model(tmp_path / "dense" / "1" / "model.onnx")
    (tmp_path / "dense" / "config.pbtxt").write_text("max_batch_size: 4\n")
    server = InferenceServer.from_repository(tmp_path, "npu-edge", control_mode="explicit",
                                             load_models=["dense"])
    with TestClient(create_app(server)) as client:
        wait_ready(client)
        yield server, client


def test_concurrent_loads_and_unloads_run_one_at_a_time(explicit):
    import asyncio

    server, client = explicit
    made, add = [], server._add

    def recording_add(entry):  # every model a load creates
        served = add(entry)
        made.extend(served)
        return served

    server._add = recording_add

    async def race():
        await asyncio.gather(server.load_model("dense"), server.load_model("dense"))
        listed = list(server.versions["dense"].values())
        await asyncio.gather(server.load_model("dense"), server.unload_model("dense"))
        return listed

    listed = client.portal.call(race)
    # Interleaved, the first load's model stayed ready and running but unlisted (leaked), and
    # the unload sent after a load left the model loaded.
    assert len(made) == 3 and made[1] in listed
    assert [m.state for m in made] == ["unloaded"] * 3 and "dense" not in server.versions
    client.post("/v2/repository/models/dense/load").raise_for_status()
    response = client.post("/v2/models/dense/infer", json={"inputs": [
        {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
    assert response.status_code == 200, response.text


def test_loading_a_name_with_no_folder_leaves_no_trace(explicit):
    server, client = explicit
    for name in ("nope", "also-not-there"):
        response = client.post(f"/v2/repository/models/{name}/load")
        assert response.status_code == 400 and "no such model folder" in response.text
    # Each name tried stayed listed as an unavailable model (and in memory) before.
    assert [row["name"] for row in client.post("/v2/repository/index").json()] == ["dense"]
    assert client.post("/v2/repository/models/nope/unload").status_code == 404


def test_load_with_a_config_override(explicit):
    import json

    server, client = explicit
    override = {"max_batch_size": 2, "dynamic_batching": {"max_queue_delay_microseconds": 7}}
    response = client.post("/v2/repository/models/dense/load",
                           json={"parameters": {"config": json.dumps(override)}})
    assert response.status_code == 200, response.text
    config = client.get("/v2/models/dense/config").json()
    assert config["max_batch_size"] == 2
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 7
    # A load without one reads the folder's config.pbtxt again.
    client.post("/v2/repository/models/dense/load").raise_for_status()
    assert client.get("/v2/models/dense/config").json()["max_batch_size"] == 4


@pytest.mark.parametrize(("parameters", "message"), [
    (5, "parameters: expected an object"),
    ({"config": 5}, "parameters.config>: expected a string"),
    ({"config": "not json"}, "parameters.config>: not valid JSON"),
    ({"config": "[]"}, "expected a JSON object of Triton's ModelConfig fields, got list"),
    ({"config": '{"max_batch": 2}'}, 'no field named "max_batch"'),
    ({"config": '{"max_batch_size": -1}'}, "max_batch_size: expected a non-negative integer"),
    ({"config": '{"max_batch_size": 1' + "0" * 5000 + "}"}, "parameters.config>:"),
    ({"config": "[" * 100_000 + "]" * 100_000}, "parameters.config>:"),
    ({"config": '{"name": "other"}'}, "name 'other' is not the model loaded ('dense')"),
    ({"config": '{"default_model_filename": "../../x.onnx"}'}, "default_model_filename"),
    ({"file:1/model.onnx": "AAAA"}, "model file overrides are not supported"),
    # protobuf raised SystemError on the lone surrogate, and its error could not be rendered
    ({"config": '{"\\ud800": 1}'}, "not valid Unicode text"),
    ({"config": '{"instance_group": [{"kind": "\\ud800"}]}'}, "not valid Unicode text"),
])
def test_a_bad_config_override_is_400_and_keeps_the_model(explicit, parameters, message):
    server, client = explicit
    response = client.post("/v2/repository/models/dense/load", json={"parameters": parameters})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error and len(error) < 1000, error
    # Checked before anything is unloaded: the model serves on.
    assert client.get("/v2/models/dense/ready").status_code == 200


def test_unload_parameters_are_checked(explicit):
    server, client = explicit
    response = client.post("/v2/repository/models/dense/unload",
                           json={"parameters": {"unload_dependents": "yes"}})
    assert response.status_code == 400 and "unload_dependents true or false" in response.text
    response = client.post("/v2/repository/models/dense/unload",
                           json={"parameters": {"unload_dependents": False}})
    assert response.status_code == 200 and "dense" not in server.versions


def test_an_unloaded_model_lets_go_of_its_plans_at_once(explicit):
    # At once: with the collector off, as a busy server's full collections are rare (the
    # pending-requests gauge held the model through a closure, cycles held its plans).
    import gc
    import weakref

    server, client = explicit
    backend = server.versions["dense"]["1"].backend
    held = [weakref.ref(next(iter(backend._plans.values()))),
            weakref.ref(next(iter(backend._engines.values())))]
    del backend
    gc.disable()
    try:
        assert client.post("/v2/repository/models/dense/unload").status_code == 200
        assert [ref() for ref in held] == [None, None]
    finally:
        gc.enable()


def test_a_folder_name_that_is_not_utf8_is_refused_and_the_answers_render(tmp_path):
    # os.listdir surrogate-escapes the name: every answer listing it (the index, the model
    # list of a 404, readiness) was a 500, as Starlette encodes JSON as raw UTF-8.
    import os

    from fastapi.testclient import TestClient

    from npu_serving.server import create_app

    write_model(tmp_path / "dense" / "model.onnx")
    os.mkdir(os.fsencode(tmp_path) + b"/\xff")
    write_model(tmp_path / os.fsdecode(b"\xff") / "model.onnx")
    server = InferenceServer.from_repository(tmp_path, "npu-edge")
    assert list(server.versions) == ["dense"] and "folder name is not UTF-8" in \
        server.broken["\udcff"]
    client = TestClient(create_app(server))
    index = client.post("/v2/repository/index")
    assert index.status_code == 200 and [row["name"] for row in index.json()] == \
        ["dense", "\udcff"]
    missing = client.get("/v2/models/other")
    assert missing.status_code == 404 and "serving dense" in missing.json()["error"]
    assert client.get("/v2/health/ready").status_code == 503
