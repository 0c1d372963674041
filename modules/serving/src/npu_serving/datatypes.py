"""KServe v2 tensor datatypes: their numpy dtypes and their JSON and binary encodings.

Binary encoding follows Triton's binary tensor extension: fixed-size types are their raw
little-endian bytes in row-major order; BYTES elements are each a 4-byte little-endian length
followed by the bytes.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from .errors import BadRequest, shown

NUMPY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
_DATATYPES_BY_DTYPE = {dtype: name for name, dtype in NUMPY_DTYPES.items()}
# The most dimensions a numpy array has (numpy 2: 64; before: 32): a longer shape made the
# reshape raise ValueError, answered 500.
MAX_DIMS = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32


def to_numpy(datatype: str) -> np.dtype:
    try:
        return NUMPY_DTYPES[datatype]
    except KeyError:
        known = ", ".join(NUMPY_DTYPES)
        raise BadRequest(f"unknown datatype {shown(datatype)}: expected one of {known}") from None


def from_numpy(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind in "SUO":
        return "BYTES"
    try:
        return _DATATYPES_BY_DTYPE[dtype.newbyteorder("=")]
    except KeyError:
        raise ValueError(f"numpy dtype {dtype} has no KServe v2 datatype") from None


def element_count(shape) -> int:
    """Exact (Python integers: a shape of [2**32, 2**32] or [2**70] does not wrap)."""
    return math.prod(int(dim) for dim in shape)


def decode_binary(name: str, datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    if datatype == "BYTES":
        elements = _split_bytes_elements(name, raw)
        return _reshape(name, _object_array(elements), shape)
    dtype = to_numpy(datatype)
    expected = element_count(shape) * dtype.itemsize
    if len(raw) != expected:
        raise BadRequest(
            f"input {name!r}: {len(raw)} bytes of binary data, expected {expected} "
            f"for shape {list(shape)} of {datatype}"
        )
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)


def encode_binary(array: np.ndarray) -> bytes:
    if from_numpy(array.dtype) == "BYTES":
        return b"".join(
            struct.pack("<I", len(item)) + item for item in map(_as_bytes, array.ravel())
        )
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def decode_json(name: str, datatype: str, shape: list[int], data) -> np.ndarray:
    dtype = to_numpy(datatype)
    flat = _flatten(data)
    if datatype == "BYTES":
        if not all(isinstance(item, str) for item in flat):
            raise BadRequest(f"input {name!r}: BYTES data must be a list of strings")
        array = _object_array([_utf8(name, index, item) for index, item in enumerate(flat)])
    else:
        _check_elements(name, datatype, dtype, flat)
        try:
            array = np.array(flat, dtype=dtype)
        except (OverflowError, ValueError) as exc:
            raise BadRequest(f"input {name!r}: data does not fit {datatype}: {exc}") from None
    return _reshape(name, array, shape)


def encode_json(array: np.ndarray) -> list:
    if from_numpy(array.dtype) == "BYTES":
        return [_as_bytes(item).decode("utf-8", "replace") for item in array.ravel()]
    return array.ravel().tolist()


_JSON_ELEMENT_TYPES = {
    "b": (bool, "booleans"),
    "u": (int, "integers"),
    "i": (int, "integers"),
    "f": ((int, float), "numbers"),
}


def _utf8(name: str, index: int, item: str) -> bytes:
    # JSON's "\\ud800" decodes to a lone surrogate, which UTF-8 cannot encode (was a 500)
    try:
        return item.encode()
    except UnicodeEncodeError as exc:
        raise BadRequest(f"input {name!r}: BYTES element {index} is not valid Unicode text "
                         f"({exc.reason} at character {exc.start}): send such bytes as "
                         "binary data") from None


def _object_array(elements: list[bytes]) -> np.ndarray:
    array = np.empty(len(elements), dtype=np.object_)
    array[:] = elements
    return array


# The exact types JSON decodes to that each kind takes (bool is an int: refused as a number)
_EXACT_TYPES = {"b": {bool}, "u": {int}, "i": {int}, "f": {int, float}}


def _check_elements(name: str, datatype: str, dtype: np.dtype, flat: list) -> None:
    # The element types at C speed (set(map(type))): checking each element in Python took 2 s
    # of a 64 MB body's 7 on the event loop, and every other request waited.
    if set(map(type, flat)) <= _EXACT_TYPES[dtype.kind]:
        return
    accepted, kind = _JSON_ELEMENT_TYPES[dtype.kind]
    for item in flat:
        if not isinstance(item, accepted) or (isinstance(item, bool) and dtype.kind != "b"):
            raise BadRequest(f"input {name!r}: {datatype} data must be {kind}, got "
                             f"{shown(item)}")


def _flatten(data) -> list:
    if not isinstance(data, list):
        return [data]
    if list not in set(map(type, data)):  # already flat, as tritonclient sends it
        return data
    flat = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _reshape(name: str, array: np.ndarray, shape) -> np.ndarray:
    if array.size != element_count(shape):
        raise BadRequest(
            f"input {name!r}: {array.size} elements of data, expected {element_count(shape)} "
            f"for shape {list(shape)}"
        )
    return array.reshape(shape)


def _split_bytes_elements(name: str, raw: bytes) -> list[bytes]:
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadRequest(f"input {name!r}: truncated BYTES element length at byte {offset}")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadRequest(f"input {name!r}: BYTES element at byte {offset} overruns the data")
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def _as_bytes(item) -> bytes:
    return item if isinstance(item, bytes) else str(item).encode()
