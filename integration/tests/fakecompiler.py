"""A stand-in for the stack's `python -m npu_compiler run ... --json`, for harness tests.

`fake_python(tmp_path)` writes an executable that takes the place of the stack's interpreter and
honours the compiler-api CLI contract (docs/design.md), computing outputs with onnxruntime.
FAKE_STACK_MODE in the environment picks its behaviour: ok, wrong (outputs off by 0.01),
unsupported (exit 3, operator LRN), oom (exit 4), crash (traceback, no JSON), sleep, noop
(success without an outputs file). `python -m npu_driver skus --json` prints two SKUs.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SCRIPT = textwrap.dedent('''\
    import json, os, sys, time
    import numpy as np

    mode = os.environ.get("FAKE_STACK_MODE", "ok")
    argv = sys.argv[1:]
    if argv[:3] == ["-m", "npu_driver", "skus"]:
        print(json.dumps([{"name": "npu-edge", "cores": 1, "array_rows": 32, "array_cols": 32,
                           "dataflow": "os", "clock_ghz": 0.8, "sram_bytes": 1048576,
                           "dram_bandwidth_gbps": 25.6, "device_memory_bytes": 536870912,
                           "peak_tops": {"fp32": 1.64}}]))
        sys.exit(0)
    assert argv[:3] == ["-m", "npu_compiler", "run"], argv
    model, rest = argv[3], argv[4:]
    options = {rest[i]: rest[i + 1] for i in range(0, len(rest) - 1) if rest[i].startswith("--")}

    def fail(message, kind, code):
        print("npu-compiler: error: " + message, file=sys.stderr)
        print(json.dumps({"error": message, "kind": kind}))
        sys.exit(code)

    if not os.path.exists(model):
        fail("model not found: " + model, "bad-input", 2)
    if mode == "unsupported":
        fail("unsupported operator LRN (node lrn_1)", "unsupported-operator", 3)
    if mode == "oom":
        fail("device out of memory on npu-edge: needed 10 bytes, 0 free of 10", "out-of-memory", 4)
    if mode == "crash":
        print("Traceback (most recent call last):\\nZeroDivisionError: division by zero",
              file=sys.stderr)
        sys.exit(1)
    if mode == "sleep":
        time.sleep(30)
    import onnxruntime
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    with np.load(options["--inputs"]) as data:
        feeds = {name: data[name] for name in data.files}
    values = session.run(None, feeds)
    names = [o.name for o in session.get_outputs()]
    if mode == "wrong":
        values = [v + np.asarray(0.01, v.dtype) for v in values]
    if mode != "noop":
        np.savez(options["--save-outputs"], **dict(zip(names, values)))
    print("compiling...")
    print(json.dumps({
        "model": model, "sku": options["--sku"], "precision": options.get("--precision", "fp32"),
        "compile_s": 0.01, "run_s": 0.02, "passes": ["shape-inference"],
        "outputs": [{"name": n, "shape": list(v.shape), "dtype": str(v.dtype)}
                    for n, v in zip(names, values)],
        "simulated": {"total_cycles": 1234, "latency_us": 1.5, "clock_ghz": 0.8,
                      "peak_device_bytes": 4096,
                      "ops": [{"name": "conv_1", "op_type": "Conv", "kernel": "conv_os",
                               "fusion": "Relu", "cycles": 1000, "macs": 10, "bytes_read": 1,
                               "bytes_written": 1, "unit": "array",
                               "array_utilization": 0.5},
                              {"name": "softmax_1", "op_type": "Softmax", "kernel": "softmax",
                               "fusion": "", "cycles": 234, "macs": 0, "bytes_read": 1,
                               "bytes_written": 1, "unit": "vector",
                               "array_utilization": 0.0}]}}))
''')


def fake_python(directory: Path) -> Path:
    """An executable standing in for the stack environment's python."""
    path = directory / "fake-python"
    path.write_text(f"#!{sys.executable}\n" + SCRIPT)
    path.chmod(0o755)
    return path


def tiny_conv_model(path: Path, *, seed: int = 0) -> Path:
    """Conv -> Relu -> Softmax over a symbolic batch, weights as real initializers."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("Softmax", ["r"], ["y"], axis=1)],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
