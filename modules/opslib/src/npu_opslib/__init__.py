"""npu_opslib: operator kernels dispatched on the five-tuple (op type, problem size, precision,
layout, fusion), autotuned on the driver's cost model, launched on a runtime context."""

from npu_opslib.dispatch import Selection, clear_cache, launch, run_reference, select
from npu_opslib.errors import KernelError, OpslibError, UnsupportedOperator
from npu_opslib.kernel import (
    ENTRY_POINT_GROUP,
    EPILOGUE_ATTRS,
    EPILOGUES,
    Kernel,
    KernelKey,
    TensorInfo,
    TileConfig,
    get_kernel,
    is_supported,
    qualified_op_type,
    register_kernel,
    resolve_op_type,
    supported_ops,
)
from npu_opslib import ops  # noqa: F401  (registers the built-in kernels)

__all__ = [
    "ENTRY_POINT_GROUP", "EPILOGUE_ATTRS", "EPILOGUES", "Kernel", "KernelError", "KernelKey",
    "OpslibError", "Selection", "TensorInfo", "TileConfig", "UnsupportedOperator", "clear_cache",
    "get_kernel", "is_supported", "launch", "qualified_op_type", "register_kernel",
    "resolve_op_type", "run_reference", "select", "supported_ops",
]
