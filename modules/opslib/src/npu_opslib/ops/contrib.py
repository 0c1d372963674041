"""What onnxruntime's contrib kernels (domain `com.microsoft`) share: their domain, and the
rules their classes follow. Each contrib kernel is registered as `com.microsoft.<Op>`, so it
never replaces ONNX's operator of the same name (ONNX's Gelu and Attention have other
inputs and attributes); onnxruntime's docs/ContribOperators.md is the specification."""

from __future__ import annotations

from npu_opslib.kernel import Kernel, TensorInfo, qualified_op_type

DOMAIN = "com.microsoft"


def ms(op_type: str) -> str:
    """The registry key of contrib operator `op_type`."""
    return qualified_op_type(DOMAIN, op_type)


class ContribKernel(Kernel):
    """A contrib kernel runs at the precisions it lists: no automatic int8 lowering (the
    integer ones already take quantized operands; the composite ones, attention and
    normalizations, are not one matmul whose operands the compiler could quantize)."""

    @classmethod
    def supported_precisions(cls) -> tuple[str, ...]:
        return cls.precisions


def shape_of(inputs: list[TensorInfo | None], index: int) -> tuple[int, ...] | None:
    """Input `index`'s shape, None when omitted (or past the node's inputs)."""
    info = inputs[index] if index < len(inputs) else None
    return None if info is None else tuple(info.shape)


def value_of(inputs: list[TensorInfo | None], index: int):
    """Input `index`'s constant value, None when omitted or only known at run time."""
    info = inputs[index] if index < len(inputs) else None
    return None if info is None else info.value
