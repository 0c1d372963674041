"""The requests a load sends: inputs made from the model's metadata and configuration."""

from __future__ import annotations

import numpy as np

NUMPY = {"BOOL": np.bool_, "UINT8": np.uint8, "INT8": np.int8, "INT16": np.int16,
         "INT32": np.int32, "INT64": np.int64, "FP16": np.float16, "FP32": np.float32,
         "FP64": np.float64}


def model_inputs(client, model: str, batch_size: int, seed: int = 0) -> list:
    """tritonclient InferInputs for `model`: seeded normal data for floating-point inputs,
    zeros for integers (valid indices for embeddings), binary encoded."""
    import tritonclient.http as httpclient

    metadata = client.get_model_metadata(model)
    config = client.get_model_config(model)
    batching = int(config.get("max_batch_size", 0)) > 0
    rng = np.random.default_rng(seed)
    inputs = []
    for spec in metadata["inputs"]:
        shape = [int(d) for d in spec["shape"]]
        if batching and shape:
            shape[0] = batch_size
        shape = [1 if d < 0 else d for d in shape]
        dtype = NUMPY.get(spec["datatype"])
        if dtype is None:
            raise ValueError(f"input {spec['name']!r} of {model!r} has datatype "
                             f"{spec['datatype']}, which the load generator does not generate")
        data = rng.standard_normal(shape).astype(dtype) if np.dtype(dtype).kind == "f" else \
            np.zeros(shape, dtype)
        tensor = httpclient.InferInput(spec["name"], shape, spec["datatype"])
        tensor.set_data_from_numpy(data, binary_data=True)
        inputs.append(tensor)
    outputs = [httpclient.InferRequestedOutput(o["name"], binary_data=True)
               for o in metadata["outputs"]]
    return inputs, outputs
