"""What onnxruntime's contrib kernels (domain `com.microsoft`) share: their domain, and the
rules their classes follow. Each contrib kernel is registered as `com.microsoft.<Op>`, so it
never replaces ONNX's operator of the same name (ONNX's Gelu and Attention have other
inputs and attributes); onnxruntime's docs/ContribOperators.md is the specification."""

from __future__ import annotations

import inspect

from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, TensorInfo, qualified_op_type

DOMAIN = "com.microsoft"


def ms(op_type: str) -> str:
    """The registry key of contrib operator `op_type`."""
    return qualified_op_type(DOMAIN, op_type)


class ContribKernel(Kernel):
    """A contrib kernel runs at the precisions it lists: no automatic int8 lowering (the
    integer ones already take quantized operands; the composite ones, attention and
    normalizations, are not one matmul whose operands the compiler could quantize)."""

    # Inputs onnxruntime requires beyond those `_run` takes without a default.
    required_inputs: tuple[int, ...] = ()

    @classmethod
    def supported_precisions(cls) -> tuple[str, ...]:
        return cls.precisions

    def infer_outputs(self, inputs, attrs):
        """The required inputs and attributes are checked first (`_run`'s parameters without
        a default, `required_inputs`), so a malformed node is named at compile time."""
        self.check(inputs, attrs)
        return self._infer(inputs, attrs)

    def _infer(self, inputs, attrs):
        return Kernel.infer_outputs(self, inputs, attrs)

    def check(self, inputs, attrs) -> None:
        positional, keywords = [], []
        for param in list(inspect.signature(self._run).parameters.values()):
            if param.kind == param.POSITIONAL_OR_KEYWORD:
                positional.append((param.name, param.default is param.empty))
            elif param.kind == param.KEYWORD_ONLY and param.default is param.empty:
                keywords.append(param.name)
        for index, (name, required) in enumerate(positional):
            if (required or index in self.required_inputs) and (
                    index >= len(inputs) or inputs[index] is None):
                raise KernelError(f"{self.op_type}: input {index} ({name}) is required")
        missing = [name for name in keywords if attrs.get(name) is None]
        if missing:
            raise KernelError(f"{self.op_type}: attribute {missing[0]!r} is required")


def shape_of(inputs: list[TensorInfo | None], index: int) -> tuple[int, ...] | None:
    """Input `index`'s shape, None when omitted (or past the node's inputs)."""
    info = inputs[index] if index < len(inputs) else None
    return None if info is None else tuple(info.shape)


def value_of(inputs: list[TensorInfo | None], index: int):
    """Input `index`'s constant value, None when omitted or only known at run time."""
    info = inputs[index] if index < len(inputs) else None
    return None if info is None else info.value
