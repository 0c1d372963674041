"""The requests a load sends: inputs made from the model's metadata and configuration, shaped
and filled the way perf_analyzer does it.

- Shapes: a fixed dimension is the model's; a batching model's first is the batch size; a
  model without batching takes the batch size for a variable first axis too; any other
  variable dimension needs `--shape NAME:D1,D2,...` (past the batch dimension, as
  perf_analyzer's), and without one the load does not start.
- Data: `random` (seeded normal floats, zero integers: valid indices for embeddings), `zero`,
  or a JSON file in perf_analyzer's `--input-data` format, `{"data": [{"INPUT": [...] or
  {"content": [...], "shape": [...]}, ...}, ...]}`: one entry per request, sent in turn (a
  batching model's entry is one sample, repeated to the batch size).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stackci.errors import UsageError

NUMPY = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
         "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
         "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
GENERATED = ("random", "zero")


def model_inputs(client, model: str, batch_size: int, seed: int = 0,
                 shapes: dict | None = None, data: str = "random") -> tuple[list, list]:
    """tritonclient InferInputs of one request for `model`, and the outputs to ask for."""
    sets, outputs = input_sets(client, model, batch_size, seed, shapes, data)
    return sets[0], outputs


def input_sets(client, model: str, batch_size: int, seed: int = 0,
               shapes: dict | None = None, data: str = "random") -> tuple[list[list], list]:
    """The InferInputs of each request the load sends in turn, and the outputs to ask for."""
    import tritonclient.http as httpclient

    metadata = client.get_model_metadata(model)
    config = client.get_model_config(model)
    batching = int(config.get("max_batch_size", 0)) > 0
    shapes = dict(shapes or {})
    unknown = sorted(set(shapes) - {spec["name"] for spec in metadata["inputs"]})
    if unknown:
        raise UsageError(f"--shape {unknown[0]}: model {model!r} has no input {unknown[0]!r} "
                         f"(its inputs: {', '.join(s['name'] for s in metadata['inputs'])})")
    # (a JSON entry may give the shapes itself)
    required = data in GENERATED
    specs = [(spec, _dtype(spec, model),
              _shape(spec, model, batching, batch_size, shapes, required))
             for spec in metadata["inputs"]]
    if data in GENERATED:
        rng = np.random.default_rng(seed)
        arrays = [{spec["name"]: _generated(data, dtype, shape, rng)
                   for spec, dtype, shape in specs}]
    else:
        arrays = _from_json(Path(data), specs, batching, batch_size)
    sets = []
    for feeds in arrays:
        tensors = []
        for spec, _, _ in specs:
            array = feeds[spec["name"]]
            tensor = httpclient.InferInput(spec["name"], list(array.shape), spec["datatype"])
            tensor.set_data_from_numpy(array, binary_data=True)
            tensors.append(tensor)
        sets.append(tensors)
    outputs = [httpclient.InferRequestedOutput(o["name"], binary_data=True)
               for o in metadata["outputs"]]
    return sets, outputs


def _dtype(spec: dict, model: str):
    dtype = NUMPY.get(spec["datatype"])
    if dtype is None:
        raise UsageError(f"input {spec['name']!r} of {model!r} has datatype "
                         f"{spec['datatype']}, which the load generator does not generate")
    return dtype


def _shape(spec: dict, model: str, batching: bool, batch_size: int, shapes: dict,
           required: bool = True) -> list[int] | None:
    """The shape sent for one input (see the module's docstring); None for one still variable
    when not `required`."""
    name, dims = spec["name"], [int(d) for d in spec["shape"]]
    lead, rest = ([batch_size], dims[1:]) if batching and dims else ([], dims)
    given = shapes.get(name)
    if given is not None:
        if len(given) != len(rest) or any(d not in (-1, g) for d, g in zip(rest, given)):
            past = " past the batch dimension" if batching else ""
            raise UsageError(f"--shape {name}:{','.join(map(str, given))}: input {name!r} of "
                             f"{model!r} has shape {rest}{past} (-1: any size)")
        return lead + list(given)
    if not batching and rest[:1] == [-1]:
        rest = [batch_size] + rest[1:]
    if -1 in rest and not required:
        return None
    if -1 in rest:
        example = ",".join(str(d) if d >= 0 else "D" for d in rest)
        raise UsageError(f"input {name!r} of {model!r} has a variable dimension (shape {dims}): "
                         f"give the shape to send with --shape {name}:{example}")
    return lead + rest


def _generated(data: str, dtype, shape: list[int], rng) -> np.ndarray:
    if data == "random" and np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype)


def _from_json(path: Path, specs: list, batching: bool, batch_size: int) -> list[dict]:
    """perf_analyzer's --input-data JSON: each entry's arrays, shaped and batched."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"--input-data {path}: {exc.strerror or exc} (expected 'random', "
                         "'zero' or a JSON file)") from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path}: expected perf_analyzer's input data, an object whose "
                         "\"data\" is a non-empty list of {input name: values}")
    return [_entry(path, i, entry, specs, batching, batch_size)
            for i, entry in enumerate(entries)]


def _entry(path: Path, index: int, entry, specs: list, batching: bool,
           batch_size: int) -> dict:
    where = f"{path}: data[{index}]"
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected an object of input name: values")
    arrays = {}
    for spec, dtype, shape in specs:
        name = spec["name"]
        if name not in entry:
            raise UsageError(f"{where}: no values for input {name!r}")
        value = entry[name]
        sample = None if shape is None else shape[1:] if batching else shape
        if isinstance(value, dict):
            content, sample = value.get("content"), value.get("shape", sample)
        else:
            content = value
        if content is None or isinstance(content, (dict, str)):
            raise UsageError(f"{where}: input {name!r}: expected a list of values, or an "
                             "object with \"content\" (a list) and \"shape\"")
        if not isinstance(sample, list) or not all(isinstance(d, int) and d >= 0
                                                   for d in sample):
            raise UsageError(f"{where}: input {name!r} has a variable dimension (shape "
                             f"{spec['shape']}): give its \"shape\" with its \"content\", "
                             "or --shape")
        try:
            array = np.asarray(content, dtype=dtype).reshape([int(d) for d in sample])
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{where}: input {name!r}: expected {int(np.prod(sample))} "
                             f"{spec['datatype']} values of shape {list(sample)} "
                             f"({str(exc)[:120]})") from None
        arrays[name] = np.stack([array] * batch_size) if batching else array
    return arrays
