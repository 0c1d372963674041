"""The built-in kernels; importing this package registers them."""

from npu_opslib.ops import (  # noqa: F401
    activations,
    attention,
    contrib_fused,
    contrib_quant,
    contrib_transformer,
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
    resize,
    shape,
)
