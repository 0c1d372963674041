"""The built-in kernels; importing this package registers them."""

from npu_opslib.ops import elementwise, matrix, nn, shape  # noqa: F401
