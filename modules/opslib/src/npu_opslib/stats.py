"""The library's "binary size": what a compiled kernel library would have to ship.

A kernel variant is one (op type, precision, layout, fusion) combination a kernel declares
(`supported_precisions()`, `layouts`, `fusions`); each variant is instantiated once per tile
configuration, so the configuration count is what the library's size grows with.

A kernel's tile configurations depend on the problem size (tiles are clipped to it), so they
are counted on a probe problem large enough that no tile is clipped: the full space the
kernel can instantiate. Kernels that keep the base class's `configs` have one ("auto").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from npu_opslib.errors import KernelError
from npu_opslib.kernel import Kernel, KernelKey, get_kernel, supported_ops
from npu_opslib.tuning import opslib_version

# Larger than every tile edge (ops/matrix.py TILE_*), so no candidate tile is clipped.
_BIG = 4096
_MATRIX = ((_BIG, _BIG), (_BIG, _BIG))
_IMAGE, _FILTER = (1, _BIG, 64, 64), (_BIG, _BIG, 1, 1)  # 4096 pixels, K = N = 4096
_SCALAR = ()
# Problem shapes tried in turn: plain matrix and convolution operands, then the quantized
# operators' (x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point).
PROBES = (
    _MATRIX,
    (_IMAGE, _FILTER),
    (_MATRIX[0], _SCALAR, _SCALAR, _MATRIX[1], _SCALAR, _SCALAR, _SCALAR, _SCALAR),
    (_IMAGE, _SCALAR, _SCALAR, _FILTER, _SCALAR, _SCALAR, _SCALAR, _SCALAR),
)


@dataclass(frozen=True)
class KernelStats:
    op_type: str
    kernel: str
    module: str
    precisions: tuple[str, ...]
    layouts: tuple[str, ...]
    fusions: tuple[str, ...]
    configs_per_variant: int

    @property
    def variants(self) -> int:
        return len(self.precisions) * len(self.layouts) * len(self.fusions)

    @property
    def configs(self) -> int:
        return self.variants * self.configs_per_variant

    def to_dict(self) -> dict:
        return {**asdict(self), "variants": self.variants, "configs": self.configs}


def config_space(kernel_class: type[Kernel]) -> int:
    """How many tile configurations the kernel instantiates on an unclipped problem."""
    if kernel_class.configs is Kernel.configs:
        return len(Kernel().configs(KernelKey(kernel_class.op_type, ()), {}))
    kernel = kernel_class()
    counts = []
    for shapes in PROBES:
        try:
            counts.append(len(kernel.configs(KernelKey(kernel_class.op_type, shapes), {})))
        except Exception:  # noqa: BLE001  a probe of the wrong arity or rank: try the next
            continue
    if not counts:
        raise KernelError(f"{kernel_class.op_type}: none of the probe problems gives its "
                          "tile configurations (add a probe to npu_opslib/stats.py)")
    return max(counts)


def kernel_stats(kernel_class: type[Kernel]) -> KernelStats:
    layouts = tuple(kernel_class.layouts)
    return KernelStats(kernel_class.op_type, kernel_class.__name__, kernel_class.__module__,
                       tuple(kernel_class.supported_precisions()), layouts,
                       tuple(kernel_class.fusions), config_space(kernel_class))


def library_stats() -> dict:
    """Totals and the per-kernel breakdown, custom kernels (entry points) included."""
    per_kernel = [kernel_stats(get_kernel(op)) for op in supported_ops()]
    custom = [k for k in per_kernel if not k.module.startswith("npu_opslib.")]
    return {
        "opslib": opslib_version(),
        "kernels": len(per_kernel),
        "variants": sum(k.variants for k in per_kernel),
        "configs": sum(k.configs for k in per_kernel),
        "custom_kernels": [k.op_type for k in custom],
        "by_kernel": [k.to_dict() for k in per_kernel],
    }


def format_stats(stats: dict) -> str:
    lines = [f"npu-opslib {stats['opslib']}: {stats['kernels']} kernels, "
             f"{stats['variants']} variants, {stats['configs']} tile configurations"]
    largest = sorted(stats["by_kernel"], key=lambda k: k["configs"], reverse=True)[:10]
    lines.append("largest kernels (configurations):")
    lines.extend(f"  {k['op_type']:<24} {k['variants']:>5} variants x "
                 f"{k['configs_per_variant']:>3} = {k['configs']}" for k in largest)
    if stats["custom_kernels"]:
        lines.append("custom kernels (entry points): " + ", ".join(stats["custom_kernels"]))
    return "\n".join(lines)
