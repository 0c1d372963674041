"""The classification extension: top-k strings per batch entry, labels from label_filename,
and one-line errors for a bad class_count or label file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from npu_serving import ModelConfig
from npu_serving.classification import classify
from npu_serving.config import load
from npu_serving.errors import BadRequest, RepositoryError

from serving_helpers import expected_output, served, wait_ready


def test_top_classes_per_batch_entry_best_first_with_labels():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.9]], np.float32)
    classes = classify(scores, 2, ("a", "b", "c"), batched=True, name="y")
    assert classes.shape == (2, 2)
    assert classes.tolist() == [[b"0.700000:1:b", b"0.200000:2:c"],
                                [b"0.900000:2:c", b"0.500000:0:a"]]  # a tie keeps index order


def test_a_model_without_batching_is_classified_whole_and_labels_are_optional():
    scores = np.array([[3, 9, 1, 9]], np.int64)  # integers are written as integers
    assert classify(scores, 10, (), batched=False, name="y").tolist() == [
        b"9:1", b"9:3", b"3:0", b"1:2"]  # k past the element count: every element
    assert classify(scores, 1, ("only",), batched=False, name="y").tolist() == [b"9:1"]


def test_a_non_numeric_output_cannot_be_classified():
    with pytest.raises(BadRequest, match="classification needs a numeric output"):
        classify(np.array([b"x"], dtype=object), 1, (), batched=False, name="y")


def request(class_count, batch=2):
    x = np.arange(batch * 4, dtype=np.float32).reshape(batch, 4) - 3
    body = {"inputs": [{"name": "x", "shape": [batch, 4], "datatype": "FP32",
                        "data": x.ravel().tolist()}],
            "outputs": [{"name": "y", "parameters": {"classification": class_count}}]}
    return x, json.dumps(body)


def test_classification_over_http(make_client):
    config = ModelConfig(max_batch_size=4, labels={"y": ("cat", "dog", "bird")})
    client = make_client(served(config=config))
    wait_ready(client)
    x, body = request(2)
    response = client.post("/v2/models/dense/infer", content=body)
    assert response.status_code == 200, response.text
    out = response.json()["outputs"][0]
    assert out["datatype"] == "BYTES" and out["shape"] == [2, 2]
    y = expected_output(x)
    names = ("cat", "dog", "bird")
    expected = [f"{y[r, i]:f}:{i}:{names[i]}" for r in range(2)
                for i in np.argsort(-y[r], kind="stable")[:2]]
    assert out["data"] == expected


@pytest.mark.parametrize("count", [-1, "3", 2.5, True, 2 ** 40])
def test_a_bad_classification_count_is_400(make_client, count):
    client = make_client(served(config=ModelConfig(max_batch_size=4)))
    wait_ready(client)
    response = client.post("/v2/models/dense/infer", content=request(count)[1])
    assert response.status_code == 400
    assert "classification" in response.json()["error"]


def folder_with(tmp_path, label_filename):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.pbtxt").write_text(
        f'max_batch_size: 4\noutput [{{ name: "y", data_type: TYPE_FP32, dims: [3], '
        f'label_filename: "{label_filename}" }}]\n')
    return folder


def test_labels_are_read_from_the_model_folder(tmp_path):
    folder = folder_with(tmp_path, "labels.txt")
    (folder / "labels.txt").write_text("cat\r\ndog\nbird\n")
    assert load(folder).labels == {"y": ("cat", "dog", "bird")}


@pytest.mark.parametrize(("name", "message"), [
    ("missing.txt", "no such file"),
    ("../outside.txt", "expected a file name in the model folder"),
    ("link.txt", "not a link out of it"),
    ("sub", "or a folder"),
])
def test_a_bad_label_file_is_one_line_naming_the_field(tmp_path, name, message):
    folder = folder_with(tmp_path, name)
    (tmp_path / "outside.txt").write_text("secret\n")
    (folder / "link.txt").symlink_to(tmp_path / "outside.txt")
    (folder / "sub").mkdir()
    with pytest.raises(RepositoryError) as caught:
        load(folder)
    text = str(caught.value)
    assert "label_filename" in text and message in text and "\n" not in text
    assert str(folder / "config.pbtxt") in text
