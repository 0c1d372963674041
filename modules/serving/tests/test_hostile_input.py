"""Client mistakes and hostile requests are 4xx with a one-line reason, never a 500: huge or
overflowing shapes, deep nesting, empty batches, oversized and gzip-bomb bodies; NaN and
infinities in JSON as the protocol carries them."""

from __future__ import annotations

import gzip
import json
import zlib

import numpy as np
import pytest

from npu_serving import InferenceServer, ModelConfig
from npu_serving.protocol import Limits
from npu_serving.server import create_app

from serving_helpers import DenseReluBackend, served, wait_ready

BATCHING = ModelConfig(max_batch_size=4)


def tensor(shape, data=None, datatype="FP32", **extra):
    entry = {"name": "x", "shape": shape, "datatype": datatype, **extra}
    if data is not None:
        entry["data"] = data
    return {"inputs": [entry]}


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.mark.parametrize("config", [ModelConfig(), BATCHING], ids=["no-batching", "batching"])
@pytest.mark.parametrize(("body", "message"), [
    (json.dumps(tensor([4294967296, 4294967296], [0.0] * 4)), "elements of data"),
    (json.dumps(tensor([2 ** 70], [0.0] * 4)), "elements of data"),
    (json.dumps(tensor([0, 4], [])), "has no elements"),
    ('{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": '
     + nested(100_000) + "}]}", "nested too deeply"),
    (json.dumps(tensor([1, 4], [[[[0.0]]]] * 4, parameters={"binary_data_size": 2 ** 70})),
     "binary_data_size"),
    (json.dumps(tensor([1, 4], [0] * 4, datatype="INT32")), "datatype INT32"),
    (json.dumps({**tensor([1, 4], [0.0] * 4), "parameters": {"priority": -1}}), "priority"),
    (json.dumps({**tensor([1, 4], [0.0] * 4), "parameters": {"timeout": "soon"}}), "timeout"),
    (json.dumps({**tensor([1, 4], [0.0] * 4), "parameters": {"sequence_id": 7}}), "sequence"),
    # Python refuses integer literals past 4300 digits with a ValueError (was a 500)
    (json.dumps(tensor([1, 4], [0.0] * 4)).replace("0.0", "1" + "0" * 5000, 1),
     "more than 4300 digits"),
    ('{"id": 1' + "0" * 5000 + "}", "more than 4300 digits"),
    # numpy arrays have at most 64 dimensions: the reshape's ValueError was a 500
    (json.dumps(tensor([1] * 65, [0.0])), "shape has 65 dimensions, expected at most 64"),
    # a JSON string with a lone surrogate cannot be UTF-8 bytes (UnicodeEncodeError, 500)
    (json.dumps(tensor([1, 4], ["\ud800"] * 4, datatype="BYTES")),
     "BYTES element 0 is not valid Unicode text"),
    # false and 0.0 passed as "no sequence id"
    (json.dumps({**tensor([1, 4], [0.0] * 4), "parameters": {"sequence_id": False}}),
     "sequence_id': expected an integer or a string, got False"),
    (json.dumps({**tensor([1, 4], [0.0] * 4), "parameters": {"sequence_id": 0.0}}),
     "sequence_id': expected an integer or a string, got 0.0"),
    # Triton refuses an output asked twice; it was answered twice
    (json.dumps({**tensor([1, 4], [0.0] * 4), "outputs": [{"name": "y"}, {"name": "y"}]}),
     "output 'y' is requested twice"),
    # was "unknown output 'y' ... expected y"
    (json.dumps({**tensor([1, 4], [0.0] * 4), "outputs": ["y"]}),
     "each output must be an object with a 'name', got 'y'"),
])
def test_client_mistakes_are_400(make_client, config, body, message):
    client = make_client(served(config=config))
    wait_ready(client)
    response = client.post("/v2/models/dense/infer", content=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"] and "\n" not in response.json()["error"]


def test_binary_shape_overflow_is_400(make_client):
    client = make_client(served(config=BATCHING))
    wait_ready(client)
    header = json.dumps(tensor([4294967296, 4294967296], parameters={"binary_data_size": 16}))
    response = client.post("/v2/models/dense/infer", content=header.encode() + bytes(16),
                           headers={"Inference-Header-Content-Length": str(len(header))})
    assert response.status_code == 400 and "expected" in response.json()["error"]


@pytest.mark.parametrize("length", [lambda n: f"+{n}", lambda n: f"{n[0]}_{n[1:]}"],
                         ids=["plus", "underscore"])
def test_header_length_takes_ascii_digits_only(make_client, length):
    # int() reads "+64" and "6_4" as 64: a malformed header was silently honoured.
    client = make_client(served(config=BATCHING))
    wait_ready(client)
    header = json.dumps(tensor([1, 4], parameters={"binary_data_size": 16}))
    value = length(str(len(header)))
    response = client.post("/v2/models/dense/infer", content=header.encode() + bytes(16),
                           headers={"Inference-Header-Content-Length": value})
    assert response.status_code == 400, response.text
    assert "Inference-Header-Content-Length: expected an integer" in response.json()["error"]


def make_limited(make_client, limits: Limits):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(InferenceServer([served()], limits=limits)))
    client.__enter__()
    wait_ready(client)
    return client


def test_body_over_the_limit_is_413(make_client):
    client = make_limited(make_client, Limits(max_body_bytes=1000, max_decompressed_bytes=10_000))
    try:
        response = client.post("/v2/models/dense/infer", content=b" " * 1001)
        assert response.status_code == 413 and "exceeds the limit of 1000" in response.text
    finally:
        client.__exit__(None, None, None)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bomb_is_413_without_expanding_it(make_client, encoding):
    client = make_limited(make_client, Limits(max_body_bytes=1 << 20,
                                              max_decompressed_bytes=1 << 20))
    bomb = (gzip.compress if encoding == "gzip" else zlib.compress)(b" " * (200 << 20))
    assert len(bomb) < 1 << 20
    try:
        response = client.post("/v2/models/dense/infer", content=bomb,
                               headers={"Content-Encoding": encoding})
        assert response.status_code == 413 and "expands beyond" in response.text
        truncated = client.post("/v2/models/dense/infer", content=bomb[:100],
                                headers={"Content-Encoding": encoding})
        assert truncated.status_code == 400 and f"not valid {encoding}" in truncated.text
    finally:
        client.__exit__(None, None, None)


def test_nan_and_infinity_round_trip_in_json(make_client):
    class Echo(DenseReluBackend):
        def infer(self, inputs):
            return {"y": inputs["x"][:, :3].copy()}

    client = make_client(served(backend=Echo(), config=BATCHING))
    wait_ready(client)
    body = '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", ' \
           '"data": [NaN, Infinity, -Infinity, 1.5]}]}'
    response = client.post("/v2/models/dense/infer", content=body)
    assert response.status_code == 200, response.text
    assert '"data":[NaN,Infinity,-Infinity]' in response.text
    ints = client.post("/v2/models/dense/infer", content=body.replace("FP32", "INT32"))
    assert ints.status_code == 400


def test_a_body_that_stops_arriving_is_408():
    # A client that sent part of its body and then nothing held the request (and the part
    # buffered) forever; other requests were served, but the connections piled up.
    import asyncio

    from npu_serving.errors import ServingError
    from npu_serving.protocol import read_body

    class Stalled:
        headers = {"content-length": "100"}

        async def stream(self):
            yield b'{"inputs": ['
            await asyncio.Event().wait()  # never more

    async def read():
        # the outer limit only turns a hang into a failure
        return await asyncio.wait_for(read_body(Stalled(), Limits(body_idle_timeout_s=0.01)), 30)

    with pytest.raises(ServingError) as error:
        asyncio.run(read())
    assert error.value.status == 408 and "nothing received for 0.01 s after 12 bytes" in str(
        error.value)


@pytest.mark.parametrize("body", [
    json.dumps({"inputs": [{"name": 5, "shape": [1, 4], "datatype": "FP32",
                            "data": [0.0] * 100_000}]}),
    json.dumps(tensor([-1] * 100_000, [0.0] * 4)),
    json.dumps(tensor([1, 4], [0.0] * 4, datatype="X" * 100_000)),
    json.dumps({**tensor([1, 4], [0.0] * 4), "outputs": [{"name": "z" * 100_000}]}),
])
def test_errors_show_client_values_bounded(make_client, body):
    # The whole tensor (its 100,000 elements), shape or name was echoed into the error.
    client = make_client(served(config=BATCHING))
    wait_ready(client)
    response = client.post("/v2/models/dense/infer", content=body)
    assert response.status_code == 400, response.text[:300]
    assert len(response.json()["error"]) < 2100, response.text[:300]


@pytest.mark.parametrize("encoding", ["GZIP", "x-gzip", " Gzip "])
def test_content_codings_are_case_insensitive(make_client, encoding):
    # RFC 9110: content codings are case-insensitive and x-gzip is gzip; "GZIP" was a 415.
    client = make_client(served(config=BATCHING))
    wait_ready(client)
    body = gzip.compress(json.dumps(tensor([1, 4], [0.0] * 4)).encode())
    response = client.post("/v2/models/dense/infer", content=body,
                           headers={"Content-Encoding": encoding})
    assert response.status_code == 200, response.text


def test_bytes_after_a_deflate_stream_are_400(make_client):
    # gzip refused trailing bytes; deflate ignored them
    client = make_client(served(config=BATCHING))
    wait_ready(client)
    body = zlib.compress(json.dumps(tensor([1, 4], [0.0] * 4)).encode()) + b"garbage"
    response = client.post("/v2/models/dense/infer", content=body,
                           headers={"Content-Encoding": "deflate"})
    assert response.status_code == 400, response.text
    assert "7 bytes follow the end of the stream" in response.json()["error"]
    assert client.post("/v2/models/dense/infer", content=body[:-7],
                       headers={"Content-Encoding": "deflate"}).status_code == 200


def test_a_client_that_disconnects_mid_body_is_not_a_server_error():
    # Starlette's ClientDisconnect escaped: logged with a traceback, counted as a BACKEND failure.
    import asyncio

    from starlette.requests import ClientDisconnect

    from npu_serving.errors import ClientGone
    from npu_serving.protocol import read_body

    class Leaving:
        headers = {"content-length": "100"}

        async def stream(self):
            yield b'{"inputs": ['
            raise ClientDisconnect()

    with pytest.raises(ClientGone) as error:
        asyncio.run(read_body(Leaving(), Limits()))
    assert error.value.status == 499 and "disconnected after 12 bytes" in str(error.value)


def test_the_request_bytes_held_at_once_are_bounded(make_client):
    # Each body was bounded, not how many at once: a parsed JSON body takes ~12x its bytes, so
    # a few dozen concurrent 64 MB bodies exhausted the host.
    client = make_limited(make_client, Limits(max_body_bytes=1000, max_decompressed_bytes=10_000))
    budget = client.app.state.server.bodies
    body = json.dumps(tensor([1, 4], [0.0] * 4))
    try:
        assert budget.limit == 4000
        budget.held = budget.limit - 1  # other requests being read, parsed or answered
        response = client.post("/v2/models/dense/infer", content=body)
        assert response.status_code == 503 and "retry later" in response.json()["error"]
        load = client.post("/v2/repository/index", content=b"{}")
        assert load.status_code == 503
        budget.held = 0
        assert client.post("/v2/models/dense/infer", content=body).status_code == 200
        assert budget.held == 0  # given back after the answer
    finally:
        client.__exit__(None, None, None)
