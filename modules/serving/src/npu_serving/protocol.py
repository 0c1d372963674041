"""The inference request and response of KServe v2, in JSON and with Triton's binary tensor
extension.

With the extension, a body is a JSON header of `Inference-Header-Content-Length` bytes followed
by raw tensor data: each input (or output) whose `parameters.binary_data_size` is set takes that
many bytes, in the order the tensors are listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import zlib
from dataclasses import dataclass

import numpy as np
from starlette.requests import ClientDisconnect

from . import datatypes
from .classification import classify
from .errors import BadRequest, ClientGone, ServingError, Unavailable, shown
from .model import ServedModel

HEADER_LENGTH = "Inference-Header-Content-Length"
MiB = 1 << 20


# The JSON form of an inference request, for the OpenAPI description (what a fuzzer reads).
_TENSOR = {
    "type": "object", "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "INT32", "INT64", "FP16", "FP32",
                                                "FP64", "BYTES"]},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
INFER_REQUEST_OPENAPI = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {
        "type": "object", "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": _TENSOR},
            "outputs": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "parameters": {"type": "object", "properties": {
                    "binary_data": {"type": "boolean"},
                    "classification": {"type": "integer", "minimum": 0}}}}}},
        },
    },
}}}}


@dataclass(frozen=True)
class Limits:
    """Request size limits: a body larger than `max_body_bytes` is refused with 413 before it
    is read (by its Content-Length, or as soon as a chunked body passes it); a gzip or deflate
    body may expand to at most `max_decompressed_bytes`. A client that stops sending its body
    for `body_idle_timeout_s` is answered 408 and its connection closed (else it would hold
    the connection and its buffered part of the body forever)."""

    max_body_bytes: int = 64 * MiB
    max_decompressed_bytes: int = 64 * MiB
    body_idle_timeout_s: float = 30.0

    @property
    def max_held_bytes(self) -> int:
        """The request bodies held at once, all requests together (see `BodyBudget`)."""
        return 4 * self.max_body_bytes


class TooLarge(ServingError):
    status = 413


class BodyBudget:
    """The request bytes the server holds at once, from reading a body until its answer: past
    `limit`, a request is answered 503 before its body is read (one alone always proceeds).
    Each body was bounded, not how many at once: a parsed JSON body takes ~12 times its bytes
    (a 60 MB one peaked at 740 MB), so a few dozen concurrent ones exhausted the host. A body
    without Content-Length (chunked) counts as the largest allowed."""

    def __init__(self, limit: int):
        self.limit, self.held = limit, 0

    @contextlib.contextmanager
    def holding(self, request, limits: Limits):
        declared = request.headers.get("content-length")
        size = int(declared) if declared is not None and declared.isdigit() \
            else limits.max_body_bytes
        size = min(size, limits.max_body_bytes)  # a larger one is refused unread (413)
        if self.held and self.held + size > self.limit:
            raise Unavailable(f"the server holds {self.held} bytes of requests, and this one's "
                              f"{size} would pass its {self.limit} (4x --max-request-bytes): "
                              "retry later")
        self.held += size
        try:
            yield
        finally:
            self.held -= size


async def read_body(request, limits: Limits) -> bytes:
    """The request body, decompressed, within `limits`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(f"Content-Length: expected a byte count, got {declared!r}")
        if int(declared) > limits.max_body_bytes:
            raise TooLarge(f"request body of {int(declared)} bytes exceeds the limit of "
                           f"{limits.max_body_bytes} bytes (--max-request-bytes)")
    chunks, size = [], 0
    stream = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(limits.body_idle_timeout_s):
                chunk = await anext(stream)
        except StopAsyncIteration:
            break
        except ClientDisconnect:  # was logged with a traceback and counted as a backend failure
            raise ClientGone(f"request body: the client disconnected after {size} bytes") from None
        except TimeoutError:
            raise ServingError(f"request body: nothing received for {limits.body_idle_timeout_s:g}"
                               f" s after {size} bytes (--request-idle-timeout)", 408) from None
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise TooLarge(f"request body exceeds the limit of {limits.max_body_bytes} bytes "
                           "(--max-request-bytes)")
        chunks.append(chunk)
    return decompressed(b"".join(chunks), request.headers.get("content-encoding"), limits)


# Content codings are case-insensitive, and x-gzip is gzip (RFC 9110 8.4.1): "GZIP" was 415.
_CODINGS = {"identity": "identity", "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


def decompressed(body: bytes, encoding: str | None, limits: Limits = Limits()) -> bytes:
    coding = _CODINGS.get((encoding or "identity").strip().lower())
    if coding is None:
        raise ServingError(f"Content-Encoding {shown(encoding)}: expected gzip, deflate or "
                           "identity", 415)
    if coding == "identity":
        return body
    return _inflated(body, coding, limits)


def _inflated(body: bytes, encoding: str, limits: Limits) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    limit, out, data = limits.max_decompressed_bytes, [], body
    size = 0
    try:
        while data:  # one gzip member after another, as gzip.decompress reads them
            inflater = zlib.decompressobj(wbits)
            while data:
                part = inflater.decompress(data, limit + 1 - size)
                size += len(part)
                out.append(part)
                if size > limit:
                    raise TooLarge(f"{encoding} request body expands beyond the limit of "
                                   f"{limit} bytes (--max-decompressed-bytes)")
                data = inflater.unconsumed_tail
                if inflater.eof:
                    break
            if not inflater.eof:
                raise zlib.error("incomplete or truncated stream")
            data = inflater.unused_data
            if data and encoding == "deflate":  # one zlib stream: bytes after it were ignored
                raise zlib.error(f"{len(data)} bytes follow the end of the stream")
    except zlib.error as exc:
        raise BadRequest(f"request body is not valid {encoding} data: {exc}") from None
    return b"".join(out)


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool
    class_count: int = 0  # the classification extension: the top k instead of the tensor


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[RequestedOutput]
    priority: int | None = None
    timeout_us: int | None = None


def parse_infer_request(body: bytes, header_length: str | None, model: ServedModel,
                        limits: Limits = Limits()) -> InferRequest:
    header, binary = _split_body(body, header_length)
    document = json_object(header, "inference request")
    try:
        inputs = _decode_inputs(document.get("inputs"), binary)
    except RecursionError:
        raise BadRequest("inference request: 'data' is nested too deeply") from None
    _check_inputs(inputs, model)
    parameters = _parameters(document, "request")
    outputs = _requested_outputs(document.get("outputs"), parameters, model)
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest(f"id: expected a string, got {shown(request_id)}")
    priority = _count_parameter(parameters, "priority")
    timeout_us = _count_parameter(parameters, "timeout")
    _check_no_sequence(parameters, model)
    return InferRequest(request_id, inputs, outputs, priority or None, timeout_us or None)


def _count_parameter(parameters: dict, name: str) -> int:
    value = parameters.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2 ** 63:
        raise BadRequest(f"parameter {name!r}: expected a non-negative integer, got "
                         f"{shown(value)}")
    return value


def _check_no_sequence(parameters: dict, model: ServedModel) -> None:
    """Triton's correlation id is an unsigned integer or a string; 0 and "" mean none, which
    is all a model without sequence batching takes (false and 0.0 passed as none)."""
    sequence = parameters.get("sequence_id", 0)
    if isinstance(sequence, bool) or not isinstance(sequence, (int, str)):
        raise BadRequest(f"parameter 'sequence_id': expected an integer or a string, got "
                         f"{shown(sequence)}")
    if sequence not in (0, ""):
        raise BadRequest(f"sequence_id {shown(sequence)}: model {model.name!r} has no sequence "
                         "batching, so its requests must not carry a sequence (correlation) id")


def encode_infer_response(
    model: ServedModel, request: InferRequest, outputs: dict[str, np.ndarray],
    info: dict | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: the content type and, with binary outputs, the
    length of the JSON header. `info` becomes the response's `parameters` (the batch the
    request ran in and its simulated device time). NaN and infinities of floating-point
    outputs are written as JSON's common extension (NaN, Infinity, -Infinity), which
    tritonclient's parser reads; requests may use them the same way."""
    described, chunks = [], []
    for wanted in request.outputs:
        array = np.asarray(outputs[wanted.name])
        if wanted.class_count:
            array = classify(array, wanted.class_count, model.config.labels.get(wanted.name, ()),
                             model.config.max_batch_size > 0, wanted.name)
        tensor = {
            "name": wanted.name,
            "datatype": datatypes.from_numpy(array.dtype),
            "shape": list(array.shape),
        }
        if wanted.binary:
            raw = datatypes.encode_binary(array)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = datatypes.encode_json(array)
        described.append(tensor)
    document = {"model_name": model.name, "model_version": model.version, "outputs": described}
    if info:
        document["parameters"] = info
    if request.id is not None:
        document["id"] = request.id
    header = json.dumps(document, separators=(",", ":")).encode()
    if not chunks:
        return header, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return header + b"".join(chunks), headers


def _split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    # ASCII digits only: int() would also take "+8", " 8 ", "1_0" and other scripts' digits
    text = header_length.strip()
    length = int(text) if text.isascii() and text.isdigit() else -1
    if not 0 < length <= len(body):
        raise BadRequest(
            f"{HEADER_LENGTH}: expected an integer from 1 to the body's {len(body)} bytes, "
            f"got {header_length!r}"
        )
    return body[:length], body[length:]


def json_object(header: bytes, what: str) -> dict:
    try:
        document = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    except ValueError:  # the only other: Python's cap on the digits of an integer literal
        raise BadRequest(f"{what}: an integer has more than {sys.get_int_max_str_digits()} "
                         "digits") from None
    except RecursionError:
        raise BadRequest(f"{what}: JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise BadRequest(f"{what}: expected a JSON object")
    return document


def _parameters(tensor: dict, what: str) -> dict:
    parameters = tensor.get("parameters", {})
    if not isinstance(parameters, dict):
        raise BadRequest(f"{what}: parameters: expected an object, got {shown(parameters)}")
    for unsupported in ("shared_memory_region",):
        if unsupported in parameters:
            raise BadRequest(f"{what}: parameter {unsupported!r} is not supported by this server")
    return parameters


def _decode_inputs(listed, binary: bytes) -> dict[str, np.ndarray]:
    if not isinstance(listed, list) or not listed:
        raise BadRequest("inference request: 'inputs' must be a non-empty list")
    inputs, offset = {}, 0
    for tensor in listed:
        name, datatype, shape = _tensor_header(tensor)
        if name in inputs:
            raise BadRequest(f"input {name!r} is given twice")
        size = _parameters(tensor, f"input {name!r}").get("binary_data_size")
        if size is None:
            if "data" not in tensor:
                raise BadRequest(f"input {name!r}: has neither 'data' nor binary_data_size")
            inputs[name] = datatypes.decode_json(name, datatype, shape, tensor["data"])
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BadRequest(
                f"input {name!r}: binary_data_size: expected a byte count, got {shown(size)}"
            )
        if offset + size > len(binary):
            raise BadRequest(
                f"input {name!r}: binary_data_size {size} overruns the {len(binary)} bytes of "
                "binary data after the JSON header"
            )
        raw = binary[offset : offset + size]
        inputs[name] = datatypes.decode_binary(name, datatype, shape, raw)
        offset += size
    if offset != len(binary):
        raise BadRequest(
            f"{len(binary) - offset} bytes of binary data follow the inputs' binary_data_size"
        )
    return inputs


def _tensor_header(tensor) -> tuple[str, str, list[int]]:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise BadRequest(f"inference request: each input needs a 'name', got {shown(tensor)}")
    name, datatype, shape = tensor["name"], tensor.get("datatype"), tensor.get("shape")
    if not isinstance(datatype, str):
        raise BadRequest(f"input {name!r}: 'datatype' must be a string, got {shown(datatype)}")
    datatypes.to_numpy(datatype)
    if not isinstance(shape, list) or not all(
        isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in shape
    ):
        raise BadRequest(
            f"input {name!r}: 'shape' must be a list of non-negative integers, got {shown(shape)}"
        )
    if len(shape) > datatypes.MAX_DIMS:
        raise BadRequest(f"input {name!r}: shape has {len(shape)} dimensions, expected at most "
                         f"{datatypes.MAX_DIMS}")
    if 0 in shape:
        raise BadRequest(f"input {name!r}: shape {shown(shape)} has no elements (an empty batch or "
                         "dimension is not inferable)")
    return name, datatype, shape


def _check_inputs(inputs: dict[str, np.ndarray], model: ServedModel) -> None:
    specs = {spec.name: spec for spec in model.inputs}
    for name in inputs:
        if name not in specs:
            raise BadRequest(
                f"unexpected input {name!r} for model {model.name!r}: expected {', '.join(specs)}"
            )
    for name, spec in specs.items():
        if name not in inputs:
            raise BadRequest(f"missing input {name!r} for model {model.name!r}")
        array = inputs[name]
        datatype = datatypes.from_numpy(array.dtype)
        if datatype != spec.datatype:
            raise BadRequest(
                f"input {name!r}: datatype {datatype}, but model {model.name!r} expects "
                f"{spec.datatype}"
            )
        if not spec.accepts_shape(array.shape):
            raise BadRequest(
                f"input {name!r}: shape {list(array.shape)}, but model {model.name!r} expects "
                f"{list(spec.shape)} (-1: any size)"
            )
    if model.config.max_batch_size > 0:
        _check_batch(inputs, model)


def _check_batch(inputs: dict[str, np.ndarray], model: ServedModel) -> None:
    sizes = {name: array.shape[0] for name, array in inputs.items()}
    if len(set(sizes.values())) > 1:
        raise BadRequest(f"inputs disagree on the batch dimension (first): {sizes}")
    batch = next(iter(sizes.values()))
    if not 1 <= batch <= model.config.max_batch_size:
        raise BadRequest(
            f"batch size {batch} is out of range for model {model.name!r}: expected 1 to "
            f"max_batch_size {model.config.max_batch_size}"
        )


def _requested_outputs(listed, parameters: dict, model: ServedModel) -> list[RequestedOutput]:
    binary_default = parameters.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise BadRequest(f"binary_data_output: expected true or false, got "
                         f"{shown(binary_default)}")
    known = [spec.name for spec in model.backend.outputs]
    if listed is None or listed == []:  # none listed: all of them (Triton's, for [] too)
        return [RequestedOutput(name, binary_default) for name in known]
    if not isinstance(listed, list):
        raise BadRequest(f"inference request: 'outputs' must be a list, got {shown(listed)}")
    requested = []
    for tensor in listed:
        if not isinstance(tensor, dict):
            raise BadRequest(f"inference request: each output must be an object with a 'name', "
                             f"got {shown(tensor)}")
        if tensor.get("name") not in known:
            raise BadRequest(f"unknown output {shown(tensor.get('name'))} for model "
                             f"{model.name!r}: expected {', '.join(known)}")
        if any(tensor["name"] == earlier.name for earlier in requested):
            # Triton refuses it too; it was answered twice
            raise BadRequest(f"output {tensor['name']!r} is requested twice")
        parameters = _parameters(tensor, f"output {tensor['name']!r}")
        binary = parameters.get("binary_data", binary_default)
        if not isinstance(binary, bool):
            raise BadRequest(f"output {tensor['name']!r}: binary_data: expected true or false")
        count = parameters.get("classification", 0)  # tritonclient's class_count
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 2 ** 31:
            raise BadRequest(f"output {tensor['name']!r}: classification: expected a "
                             f"non-negative count of classes, got {shown(count)}")
        requested.append(RequestedOutput(tensor["name"], binary, count))
    return requested
