"""npu_serving: a KServe v2 / Open Inference Protocol server (with Triton's binary tensor
extension) for ONNX models compiled by npu_compiler and run on the simulated NPU.

    python -m npu_serving --model-repository DIR --sku SKU [--host 127.0.0.1] [--port 8000]
"""

from .backend import CompilerBackend, ModelBackend, TensorSpec
from .errors import RepositoryError, ServingError
from .model import ServedModel
from .config import ModelConfig
from .repository import ModelEntry, scan_repository
from .server import InferenceServer, create_app

__all__ = [
    "CompilerBackend",
    "InferenceServer",
    "ModelBackend",
    "ModelConfig",
    "ModelEntry",
    "RepositoryError",
    "ServedModel",
    "ServingError",
    "TensorSpec",
    "create_app",
    "scan_repository",
]
