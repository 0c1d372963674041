"""The requests a load sends: shapes and data from the model's metadata, perf_analyzer's
--shape and --input-data (a stand-in client: these are the client's side only)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stackci.errors import UsageError
from stackci.loadgen.inputs import input_sets, model_inputs


class Client:
    """What the load generator asks of a server before the load: metadata and config."""

    def __init__(self, inputs, max_batch_size=0):
        self.inputs, self.max_batch_size = inputs, max_batch_size

    def get_model_metadata(self, model):
        return {"name": model, "inputs": [{"name": n, "datatype": t, "shape": s}
                                          for n, t, s in self.inputs],
                "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]}

    def get_model_config(self, model):
        return {"name": model, "max_batch_size": self.max_batch_size}


RECURRENT = Client([("audio", "FP32", [-1, -1]), ("state", "FP32", [2, -1, 128]),
                    ("sr", "INT64", [])])


def shapes_of(tensors):
    return {t.name(): t.shape() for t in tensors}


def test_a_batching_models_first_axis_is_the_batch_size():
    inputs, _ = model_inputs(Client([("x", "FP32", [-1, 3, 8])], 8), "m", 4)
    assert shapes_of(inputs) == {"x": [4, 3, 8]}


def test_other_variable_dimensions_need_a_shape():
    with pytest.raises(UsageError, match=r"input 'audio' of 'vad' has a variable dimension "
                                         r"\(shape \[-1, -1\]\): give the shape to send "
                                         r"with --shape audio:1,D"):
        model_inputs(RECURRENT, "vad", 1)
    inputs, _ = model_inputs(RECURRENT, "vad", 1, shapes={"audio": (1, 512),
                                                           "state": (2, 1, 128)})
    assert shapes_of(inputs) == {"audio": [1, 512], "state": [2, 1, 128], "sr": []}


@pytest.mark.parametrize("shapes, message", [
    ({"audio": (512,)}, r"--shape audio:512: input 'audio' of 'vad' has shape \[-1, -1\]"),
    ({"state": (3, 1, 128), "audio": (1, 4)}, r"--shape state:3,1,128: .* \[2, -1, 128\]"),
    ({"nosuch": (1,)}, r"--shape nosuch: model 'vad' has no input 'nosuch' \(its inputs: "
                       r"audio, state, sr\)"),
])
def test_a_shape_that_does_not_fit_is_one_line(shapes, message):
    with pytest.raises(UsageError, match=message):
        model_inputs(RECURRENT, "vad", 1, shapes=shapes)


def test_a_batching_models_shape_is_given_past_the_batch():
    client = Client([("ids", "INT64", [-1, -1])], 8)
    inputs, _ = model_inputs(client, "bert", 2, shapes={"ids": (128,)})
    assert shapes_of(inputs) == {"ids": [2, 128]}


def test_random_and_zero_data():
    client = Client([("x", "FP32", [2, 3]), ("i", "INT64", [4])])
    [[x, i]], _ = input_sets(client, "m", 1)
    assert x._get_binary_data() != np.zeros((2, 3), np.float32).tobytes()
    assert i._get_binary_data() == np.zeros(4, np.int64).tobytes()
    [[x, _]], _ = input_sets(client, "m", 1, data="zero")
    assert x._get_binary_data() == np.zeros((2, 3), np.float32).tobytes()


def test_perf_analyzers_input_data_one_entry_per_request(tmp_path):
    path = tmp_path / "data.json"
    audio = np.linspace(-1, 1, 512, dtype=np.float32)
    path.write_text(json.dumps({"data": [
        {"audio": {"content": audio.tolist(), "shape": [1, 512]},
         "state": {"content": [0.0] * 256, "shape": [2, 1, 128]}, "sr": 16000},
        {"audio": {"content": audio[:256].tolist(), "shape": [1, 256]},
         "state": {"content": [1.0] * 256, "shape": [2, 1, 128]}, "sr": [8000]},
    ]}))
    sets, _ = input_sets(RECURRENT, "vad", 1, data=str(path))
    assert [shapes_of(s)["audio"] for s in sets] == [[1, 512], [1, 256]]
    assert sets[0][0]._get_binary_data() == audio.reshape(1, 512).tobytes()
    assert sets[1][2]._get_binary_data() == np.array(8000, np.int64).tobytes()


def test_a_batching_models_entry_is_one_sample_repeated(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"data": [{"x": [1, 2, 3]}]}))
    [[x]], _ = input_sets(Client([("x", "FP32", [-1, 3])], 8), "m", 4, data=str(path))
    assert x.shape() == [4, 3]
    assert x._get_binary_data() == np.tile(np.float32([1, 2, 3]), (4, 1)).tobytes()


@pytest.mark.parametrize("document, message", [
    ("not json", r"data.json: not valid JSON"),
    ('{"data": []}', r"data.json: expected perf_analyzer's input data"),
    ('{"data": [{"x": [1, 2]}]}', r"data.json: data\[0\]: input 'x': expected 3 FP32 values "
                                  r"of shape \[3\]"),
    ('{"data": [{"y": [1, 2, 3]}]}', r"data.json: data\[0\]: no values for input 'x'"),
    ('{"data": [{"x": "abc"}]}', r"data.json: data\[0\]: input 'x': expected a list"),
])
def test_bad_input_data_is_one_line_naming_the_file(tmp_path, document, message):
    path = tmp_path / "data.json"
    path.write_text(document)
    with pytest.raises(UsageError, match=message):
        input_sets(Client([("x", "FP32", [-1, 3])], 8), "m", 1, data=str(path))


def test_missing_input_data_file(tmp_path):
    with pytest.raises(UsageError, match=r"--input-data .*nope.json: No such file"):
        input_sets(Client([("x", "FP32", [3])]), "m", 1, data=str(tmp_path / "nope.json"))
