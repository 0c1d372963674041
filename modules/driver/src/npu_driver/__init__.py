"""npu_driver: the simulated NPU (driver-api 2.0).

SKUs are data (`skus/*.yaml`), the device executes functionally on numpy storage, and time is
counted by the deterministic performance model in `npu_driver.perf`.
"""

from . import perf
from .device import DEFAULT_ALIGNMENT, Allocation, Device
from .errors import DriverError, InvalidSKU, OutOfDeviceMemory, UnknownSKU
from .perf import Cost, Tile, conv_cost, dma_cost, gemm_cost, vector_cost
from .sku import SKU, list_skus, load_sku

DRIVER_API_VERSION = "2.0"

__all__ = [
    "DEFAULT_ALIGNMENT", "DRIVER_API_VERSION", "SKU", "Allocation", "Cost", "Device", "DriverError", "InvalidSKU",
    "OutOfDeviceMemory", "Tile", "UnknownSKU", "conv_cost", "dma_cost", "gemm_cost",
    "list_skus", "load_sku", "perf", "vector_cost",
]
