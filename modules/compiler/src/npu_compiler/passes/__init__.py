"""Compiler passes: small named functions `graph -> graph`, registered by `@compiler_pass` and
run as a list. Each one says what it did through `graph.note`, which the pass log keeps.

The registry and the pipeline come first; each family of passes is one module (shapes,
folding, cleanup, patterns, fusion, layout, precision, selection, memory), importing only the
registry and the IR, never the package or the pipeline, so imports point one way."""

from npu_compiler.passes.pipeline import DEFAULT_PIPELINE, run_pipeline
from npu_compiler.passes.registry import PASSES, compiler_pass
from npu_compiler.passes.selection import ONNX_LAYOUT, kernel_attrs, kernel_key

__all__ = ["DEFAULT_PIPELINE", "ONNX_LAYOUT", "PASSES", "compiler_pass", "kernel_attrs",
           "kernel_key", "run_pipeline"]
