"""The workloads of the side-by-side run: ResNet-50's layers as GEMMs, and plain GEMM lists.

ResNet-50 comes from the onnx package's `light_resnet50.onnx` (shapes only; the weights are not
needed). SCALE-Sim's own convolution front end has no padding, so every layer is handed to both
simulators as the GEMM that im2col makes of it: M = output pixels, N = output channels,
K = input channels x kernel height x kernel width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layer:
    name: str
    M: int
    N: int
    K: int

    def to_dict(self) -> dict:
        return asdict(self)


def light_resnet50_path() -> Path:
    import onnx

    path = Path(onnx.__file__).parent / "backend/test/data/light/light_resnet50.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the installed onnx package does not ship "
                                "light_resnet50.onnx")
    return path


def resnet50_layers(unique: bool = False) -> list[Layer]:
    """Every Conv and the final Gemm of ResNet-50 (batch 1), in graph order.

    With `unique`, layers with the same (M, N, K) as an earlier one are dropped (ResNet-50's 54
    matrix layers have 20 distinct shapes)."""
    import onnx
    from onnx import shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(light_resnet50_path())))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    layers, seen = [], set()
    for node in model.graph.node:
        if node.op_type == "Conv":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            _, channels, _, _ = shapes[node.input[0]]
            batch, filters, out_h, out_w = shapes[node.output[0]]
            kernel_h, kernel_w = attrs["kernel_shape"]
            groups = attrs.get("group", 1)
            layer = Layer(node.name, batch * out_h * out_w, filters // groups,
                          channels // groups * kernel_h * kernel_w)
        elif node.op_type == "Gemm":
            rows, depth = shapes[node.input[0]]
            layer = Layer(node.name, rows, shapes[node.output[0]][1], depth)
        else:
            continue
        if unique and (layer.M, layer.N, layer.K) in seen:
            continue
        seen.add((layer.M, layer.N, layer.K))
        layers.append(layer)
    return layers


def parse_gemms(text: str) -> list[Layer]:
    """`M,N,K;M,N,K;...` -> layers named gemm0, gemm1, ..."""
    layers = []
    for index, item in enumerate(filter(None, (p.strip() for p in text.split(";")))):
        try:
            M, N, K = (int(v) for v in item.split(","))
        except ValueError:
            raise ValueError(f"--gemms expects M,N,K triples separated by ';', got {item!r}") from None
        if min(M, N, K) <= 0:
            raise ValueError(f"--gemms dimensions must be positive, got {item!r}")
        layers.append(Layer(f"gemm{index}", M, N, K))
    return layers
