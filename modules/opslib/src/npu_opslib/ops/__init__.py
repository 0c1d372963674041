"""The built-in kernels; importing this package registers them."""

from npu_opslib.ops import (  # noqa: F401
    activations,
    attention,
    deconv,
    elementwise,
    fused,
    index,
    logic,
    loss,
    matrix,
    nn,
    norm,
    pooling,
    quant,
    recurrent,
    reduce,
    reference,
    resize,
    shape,
)
