"""npu_compiler: ONNX in, a serializable plan of opslib kernels out, and the engine that runs
it on the simulated NPU (compiler-api 1.0)."""

from npu_compiler.compile import compile_model
from npu_compiler.engine import Engine
from npu_compiler.errors import (CompileError, InputError, ModelLoadError, UnsupportedOperator,
                                 UnsupportedPrecision)
from npu_compiler.ir import Graph, Node, Value
from npu_compiler.passes import DEFAULT_PIPELINE, PASSES, compiler_pass, run_pipeline
from npu_compiler.plan import FORMAT, Plan

COMPILER_API_VERSION = "1.6"

__all__ = [
    "COMPILER_API_VERSION", "DEFAULT_PIPELINE", "FORMAT", "PASSES", "CompileError", "Engine",
    "Graph", "InputError", "ModelLoadError", "Node", "Plan", "UnsupportedOperator", "UnsupportedPrecision", "Value",
    "compile_model", "compiler_pass", "run_pipeline",
]
