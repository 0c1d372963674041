"""The kernel base class, the five-tuple key and the registry filled by `@register_kernel`.

A kernel is one small class per operator: `_run` is the functional numpy work, `configs` the
tile configurations it can be run with and `cost` what one configuration costs on a SKU's
performance model. Epilogue ops (the fusion pattern of the key) are applied here, once for all
kernels, so every kernel that accepts a fusion gets it with the same semantics.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar

import numpy as np
from scipy import special

from npu_opslib import costs
from npu_opslib.errors import KernelError, UnsupportedOperator
from npu_opslib.fastmath import gelu_float32

ENTRY_POINT_GROUP = "npu_opslib.kernels"
DEFAULT_DOMAINS = ("", "ai.onnx")  # ONNX's own operator set; every other domain is custom


@dataclass(frozen=True)
class KernelKey:
    """The dispatch five-tuple: (op type, problem size, precision, layout, fusion pattern)."""

    op_type: str
    shapes: tuple[tuple[int, ...], ...]
    precision: str = "fp32"
    layout: str = "NCHW"
    fusion: str = ""

    def __post_init__(self):
        object.__setattr__(self, "shapes", tuple(tuple(int(d) for d in s) for s in self.shapes))

    @property
    def epilogue(self) -> list[str]:
        return self.fusion.split("+") if self.fusion else []

    def to_dict(self) -> dict:
        return {"op_type": self.op_type, "shapes": [list(s) for s in self.shapes],
                "precision": self.precision, "layout": self.layout, "fusion": self.fusion}


@dataclass(frozen=True)
class TensorInfo:
    """What the compiler knows of one input when a custom-domain kernel infers its outputs:
    shape, numpy dtype name, and the value when it is a constant (else None)."""

    shape: tuple[int, ...]
    dtype: str | None = None
    value: np.ndarray | None = None


@dataclass(frozen=True)
class TileConfig:
    """One way to run a kernel: the SRAM tile of a matrix kernel (None lets the model pick)."""

    tile_m: int | None = None
    tile_n: int | None = None
    tile_k: int | None = None

    @property
    def name(self) -> str:
        if self.tile_m is None:
            return "auto"
        return f"m{self.tile_m}n{self.tile_n}k{self.tile_k}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "TileConfig":
        return cls(**(data or {}))


@dataclass(frozen=True)
class Epilogue:
    """An elementwise op applied to a kernel's output before it leaves the core."""

    extra_inputs: int
    apply: Callable[..., np.ndarray]
    ops_per_element: int = 1


def _clip(y, min=None, max=None):
    return np.clip(y, -np.inf if min is None else min, np.inf if max is None else max)


def _sigmoid(y):
    return 1.0 / (1.0 + np.exp(-y))


SQRT_HALF = float(np.sqrt(0.5))


def gelu(y):
    """GELU, exact (erf) form: what BERT and GPT-2 exports spell as Div/Erf/Add/Mul/Mul.
    Written with erfc, 1 + erf(v) == erfc(-v), so the negative tail keeps its relative
    precision instead of cancelling in 1 + erf. float32 runs as the vector unit would, in
    float32 (`fastmath.gelu_float32`, within a few ulp); other types in float64 with scipy."""
    y = np.asarray(y)
    if y.dtype == np.float32:
        return _gelu_into(y, np.empty_like(y))
    y = y.astype(np.float64)
    return 0.5 * y * special.erfc(y * -SQRT_HALF)


def _clip_into(y, out, min=None, max=None):
    return np.clip(y, -np.inf if min is None else min, np.inf if max is None else max, out=out)


EPILOGUES: dict[str, Epilogue] = {
    "Relu": Epilogue(0, lambda y: np.maximum(y, 0)),
    "LeakyRelu": Epilogue(0, lambda y, alpha=0.01: np.where(y >= 0, y, y * alpha)),
    "Clip": Epilogue(0, _clip),
    "Sigmoid": Epilogue(0, _sigmoid, ops_per_element=4),
    "Tanh": Epilogue(0, lambda y: np.tanh(y), ops_per_element=4),
    "Add": Epilogue(1, lambda y, other: y + other),
    "Mul": Epilogue(1, lambda y, other: y * other),
    "Gelu": Epilogue(0, gelu, ops_per_element=8),
}

ZEROS_LIMIT = 1 << 24
"""Elements: the largest output `_relu_into` compares against a cached block of zeros."""

_zeros: dict[np.dtype, np.ndarray] = {}


def _relu_into(y, out):
    """np.maximum(y, 0) into `out`. Against a scalar numpy runs a slow strided loop; against a
    contiguous block of zeros, the flat arrays take its vectorized one (same numbers)."""
    if not y.flags.c_contiguous or y.size > ZEROS_LIMIT:
        return np.maximum(y, 0, out=out)
    zeros = _zeros.get(y.dtype)
    if zeros is None or zeros.size < y.size:
        zeros = _zeros[y.dtype] = np.zeros(max(y.size, 1 << 16), y.dtype)
    np.maximum(y.reshape(-1), zeros[: y.size], out=out.reshape(-1))
    return out


def _gelu_into(y, out):
    """`gelu` into `out` (which may be `y`; float32 in cache-sized chunks, other types take
    `gelu`)."""
    if y.dtype != np.float32:
        np.copyto(out, gelu(y))
        return out
    return gelu_float32(y, out)


# The same epilogues writing into `out` (the launch's output storage), so a fused op makes no
# temporary: each is the ufunc of its EPILOGUES entry with `out=`, hence the same numbers.
EPILOGUES_INTO: dict[str, Callable[..., np.ndarray]] = {
    "Relu": _relu_into,
    "Clip": _clip_into,
    "Tanh": lambda y, out: np.tanh(y, out=out),
    "Add": lambda y, out, other: np.add(y, other, out=out),
    "Mul": lambda y, out, other: np.multiply(y, other, out=out),
    "Gelu": _gelu_into,
}

EPILOGUE_ATTRS = "epilogue_attrs"
"""Attribute holding one dict of attributes per epilogue op (e.g. LeakyRelu's alpha)."""

INT8_SCALES = "int8_scales"
"""Attribute holding the per-tensor int8 scales of a matrix kernel's operands (int8 keys)."""

LAYOUTS = ("NCHW", "NHWC")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def split_attrs(attrs: dict, fusion: str) -> tuple[dict, list[dict]]:
    """The op's own attributes, and one attribute dict per epilogue op."""
    own = {k: v for k, v in attrs.items() if k not in (EPILOGUE_ATTRS, INT8_SCALES)}
    ops = fusion.split("+") if fusion else []
    per_op = list(attrs.get(EPILOGUE_ATTRS) or [{} for _ in ops])
    if len(per_op) != len(ops):
        raise KernelError(f"{EPILOGUE_ATTRS} has {len(per_op)} entries for fusion {fusion!r}")
    return own, per_op


class Kernel:
    """Base of all kernels. Subclasses set `op_type` and implement `_run` (and `cost`)."""

    op_type: ClassVar[str] = ""
    # Float kernels run at every float precision (operands and results rounded to it, the
    # arithmetic in float32 as the vector unit and the array's accumulators do); int8 is for
    # matrix kernels (the array), whose operands are quantized (see `run`).
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")
    layouts: ClassVar[tuple[str, ...]] = ("any",)  # spatial kernels narrow this
    fusions: ClassVar[tuple[str, ...]] = ("",)
    unit: ClassVar[str] = "vector"
    ops_per_element: ClassVar[int] = 1
    # int8 matrix kernels: how many leading inputs are int8 operands (one scale each), and
    # which input, if any, is a bias added in the int32 accumulator.
    int8_operands: ClassVar[int] = 2
    int8_bias: ClassVar[int | None] = 2

    @classmethod
    def supported_precisions(cls) -> tuple[str, ...]:
        if cls.unit == "array" and "int8" not in cls.precisions and "fp32" in cls.precisions:
            return cls.precisions + ("int8",)
        return cls.precisions

    @classmethod
    def layout_sensitive(cls) -> bool:
        """Whether input 0 and output 0 are activations laid out as NCHW or NHWC."""
        return "any" not in cls.layouts

    @property
    def name(self) -> str:
        return type(self).__name__

    # -- functional -------------------------------------------------------------------------
    def _run(self, *inputs: np.ndarray, **attrs) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def run(self, inputs, attrs: dict | None = None, fusion: str = "", *,
            layout: str = "NCHW", precision: str = "fp32") -> tuple[np.ndarray, ...]:
        """`_run` then the epilogue ops of `fusion`; epilogue inputs follow the op's own.

        `layout` NHWC: input 0 and output 0 of a layout-sensitive kernel are NHWC (the
        epilogue operands too). `precision`: what the hardware would compute (see
        `_compute`)."""
        return self._execute(inputs, attrs or {}, fusion, layout, precision, None)

    def _run_into(self, out: np.ndarray | None, *inputs: np.ndarray, **attrs) -> tuple:
        """`_run`, free to compute its first output directly into `out` (C-contiguous, of the
        launch's output shape and dtype) and return `out` itself; kernels that can avoid a
        temporary and a copy that way override this. The default ignores `out`."""
        return self._run(*inputs, **attrs)

    def prepack(self, key: "KernelKey", constants: dict[int, np.ndarray], attrs: dict) -> None:
        """Told that inputs `constants` (by index) keep these values at this storage for as
        long as this kernel instance runs launches of `key` (an engine's weights), a kernel
        may precompute from them once, as inference engines prepack weights. It must still
        compute the same result when given other arrays. The default keeps nothing."""

    @classmethod
    def _writes_into(cls) -> bool:
        """Whether `_run_into` computes what `_run` does: it must be defined by the same class
        (a subclass overriding `_run` alone, as ConvInteger over Conv, computes something else)."""
        found = cls.__dict__.get("_WRITES_INTO")
        if found is None:
            def owner(name: str) -> type:
                return next(k for k in cls.__mro__ if name in vars(k))
            found = owner("_run_into") is not Kernel and owner("_run_into") is owner("_run")
            cls._WRITES_INTO = found
        return found

    def _execute(self, inputs, attrs: dict, fusion: str, layout: str, precision: str,
                 out: np.ndarray | None) -> tuple:
        """`run`, and with `out` (the launch's first output storage) at fp32 and NCHW the
        kernel and its epilogue write there instead of into temporaries."""
        if out is not None and precision == "fp32" and self._writes_into() and \
                out.flags.c_contiguous and (
                layout != "NHWC" or not self.layout_sensitive()) and not any(
                x is not None and np.may_share_memory(x, out) for x in inputs):
            return self._execute_into(out, inputs, attrs, fusion)
        own_inputs, own_attrs, epilogues, extra = self._split_epilogues(inputs, attrs, fusion)
        nhwc = layout == "NHWC" and self.layout_sensitive() and np.ndim(own_inputs[0]) == 4
        if nhwc:
            # The functional result of an NHWC kernel equals the NCHW one transposed; the
            # cost model is where the layouts differ.
            own_inputs[0] = np.transpose(own_inputs[0], TO_NCHW)
        outputs = self._compute(own_inputs, own_attrs, precision,
                                (attrs or {}).get(INT8_SCALES))
        if nhwc:
            outputs = (np.ascontiguousarray(np.transpose(outputs[0], TO_NHWC)),) + outputs[1:]
        if not epilogues:
            return outputs
        y = outputs[0]
        dtype = y.dtype
        for op, epilogue, operands, op_attrs in epilogues:
            y = epilogue.apply(y, *operands, **op_attrs)
        return (_rounded(np.asarray(y, dtype=dtype), precision),) + tuple(outputs[1:])

    def _execute_into(self, out: np.ndarray, inputs, attrs: dict, fusion: str) -> tuple:
        own_inputs, own_attrs, epilogues, _ = self._split_epilogues(inputs, attrs, fusion)
        outputs = self._run_into(out, *own_inputs, **own_attrs)
        if not epilogues:
            return outputs
        y = outputs[0]
        dtype = y.dtype
        for op, epilogue, operands, op_attrs in epilogues:
            into = EPILOGUES_INTO.get(op)
            if into is not None and fits_into(out, y, operands):
                y = into(y, out, *operands, **op_attrs)
            else:
                y = epilogue.apply(y, *operands, **op_attrs)
        return (np.asarray(y, dtype=dtype),) + tuple(outputs[1:])

    def _split_epilogues(self, inputs, attrs: dict, fusion: str) -> tuple:
        """(the op's own inputs, its own attrs, [(op, epilogue, its operands, its attrs)],
        the epilogue operands): epilogue inputs follow the op's own, in fusion order."""
        own_attrs, epilogue_attrs = split_attrs(attrs, fusion)
        ops = fusion.split("+") if fusion else []
        n_extra = sum(self._epilogue(op).extra_inputs for op in ops)
        own_inputs = list(inputs[: len(inputs) - n_extra])
        extra = list(inputs[len(inputs) - n_extra:])
        epilogues, rest = [], extra
        for op, op_attrs in zip(ops, epilogue_attrs):
            epilogue = self._epilogue(op)
            operands, rest = rest[: epilogue.extra_inputs], rest[epilogue.extra_inputs:]
            epilogues.append((op, epilogue, operands, op_attrs))
        return own_inputs, own_attrs, epilogues, extra

    def _compute(self, inputs: list, attrs: dict, precision: str, scales) -> tuple:
        """`_run` as the hardware computes it at `precision`: fp16/bf16 operands and results
        rounded to the format; int8 matrix operands quantized with their per-tensor `scales`
        and accumulated exactly in integers (int32 on the array), then rescaled."""
        if precision == "int8" and self.unit == "array":
            if not scales or len(scales) != self.int8_operands:
                raise KernelError(f"{self.op_type}: int8 needs {self.int8_operands} operand "
                                  f"scales in attribute {INT8_SCALES!r} (got {scales!r})")
            return self._run_int8(inputs, attrs, [float(s) for s in scales])
        if precision in ("fp16", "bf16"):
            inputs = [_rounded(x, precision) for x in inputs]
            return tuple(_rounded(y, precision) for y in self._run(*inputs, **attrs))
        return self._run(*inputs, **attrs)

    def _run_int8(self, inputs: list, attrs: dict, scales: list[float]) -> tuple:
        """Operands as int8, bias as int32 at the product scale, `_run` on the integers in
        float64 (exact for every int32 accumulator), the result rescaled to float32."""
        from npu_driver.precision import quantize_int8

        operands = [x if np.asarray(x).dtype == np.int8 else quantize_int8(x, s)[0]
                    for x, s in zip(inputs[: self.int8_operands], scales)]
        rest = list(inputs[self.int8_operands:])
        product = float(np.prod(scales))
        bias = None if self.int8_bias is None else self.int8_bias - self.int8_operands
        if bias is not None and bias < len(rest) and rest[bias] is not None:
            rest[bias] = np.rint(np.asarray(rest[bias], np.float64) / product)
        outputs = self._run(*[q.astype(np.float64) for q in operands], *rest, **attrs)
        return ((outputs[0] * product).astype(np.float32),) + tuple(outputs[1:])

    def _epilogue(self, op: str) -> Epilogue:
        if op not in EPILOGUES:
            raise KernelError(f"{self.op_type}: unknown epilogue op {op!r}")
        return EPILOGUES[op]

    def accepts(self, key: KernelKey) -> str:
        """Why this kernel cannot run `key` ("" when it can)."""
        precisions = self.supported_precisions()
        if key.precision not in precisions:
            return f"precision {key.precision} not supported (has {', '.join(precisions)})"
        if "any" not in self.layouts and key.layout not in self.layouts:
            return f"layout {key.layout} not supported (has {', '.join(self.layouts)})"
        if key.fusion not in self.fusions:
            return f"fusion {key.fusion!r} not supported (has {list(self.fusions)})"
        return ""

    # -- performance ------------------------------------------------------------------------
    def configs(self, key: KernelKey, attrs: dict) -> list[TileConfig]:
        return [TileConfig()]

    def output_shapes(self, key: KernelKey, attrs: dict) -> list[tuple[int, ...]]:
        """Output shapes for the cost model; elementwise by default (the broadcast shape)."""
        return [tuple(np.broadcast_shapes(*key.shapes))] if key.shapes else [()]

    def infer_outputs(self, inputs: list[TensorInfo | None], attrs: dict) -> list[tuple]:
        """(shape, dtype name) of each output, for operators of a custom domain (onnx has
        no schema for them). `inputs` keeps every position (None: an omitted optional
        input), unlike a key's shapes. The default: `output_shapes`, the first input's dtype."""
        present = [i for i in inputs if i is not None]
        key = KernelKey(self.op_type, tuple(i.shape for i in present))
        dtype = present[0].dtype if present else None
        return [(tuple(shape), dtype) for shape in self.output_shapes(key, attrs)]

    def cost(self, sku, key: KernelKey, config: TileConfig, attrs: dict):
        """A vector-unit pass over the inputs and outputs by default."""
        out_elements = sum(int(np.prod(s)) for s in self.output_shapes(key, attrs))
        itemsize = costs.itemsize(key.precision)
        return costs.vector(sku, key.precision, out_elements, self.ops_per_element,
                            bytes_read=sum(int(np.prod(s)) for s in key.shapes) * itemsize,
                            bytes_written=out_elements * itemsize)

    def fused_cost(self, sku, key: KernelKey, config: TileConfig, attrs: dict):
        """The op's cost plus its epilogue, applied in place before the write-back: only the
        epilogue's extra operands travel from DRAM, the output makes no extra round trip."""
        total = self.cost(sku, key, config, attrs)
        preferred = getattr(sku, "layout", "NCHW")
        if self.layout_sensitive() and key.layout != preferred and len(key.shapes[0]) == 4:
            # Not the SKU's layout: the input is re-laid out on the way in (a strided gather
            # through the vector unit), and the output on the way out.
            elements = int(np.prod(key.shapes[0])) + int(
                np.prod(self.output_shapes(key, attrs)[0]))
            total = total + costs.relayout(sku, key.precision, elements)
        ops = key.epilogue
        if not ops:
            return total
        out_elements = int(np.prod(self.output_shapes(key, attrs)[0]))
        itemsize = costs.itemsize(key.precision)
        n_extra = sum(EPILOGUES[op].extra_inputs for op in ops)
        extra_shapes = key.shapes[len(key.shapes) - n_extra:] if n_extra else ()
        extra_bytes = sum(int(np.prod(s)) for s in extra_shapes) * itemsize
        ops_per_element = sum(EPILOGUES[op].ops_per_element for op in ops)
        return total + costs.vector(sku, key.precision, out_elements, ops_per_element,
                                    bytes_read=extra_bytes, bytes_written=0)


def fits_into(out: np.ndarray, y: np.ndarray, operands) -> bool:
    """Whether `y` combined with `operands` computes in `out`'s dtype and has its shape, so
    writing the result into `out` is what computing it anew and copying would give."""
    if y.dtype != out.dtype or np.result_type(y, *operands) != out.dtype:
        return False
    shape = np.broadcast_shapes(y.shape, *(np.shape(o) for o in operands)) if operands else y.shape
    return shape == out.shape


def _rounded(x, precision: str):
    """A float array as stored at fp16/bf16 (other precisions and dtypes unchanged)."""
    if precision not in ("fp16", "bf16") or x is None:
        return x
    array = np.asarray(x)
    if not np.issubdtype(array.dtype, np.floating):
        return x
    from npu_driver.precision import round_to

    return round_to(array, precision).astype(array.dtype, copy=False)


_REGISTRY: dict[str, type[Kernel]] = {}
_entry_points_loaded = False


def register_kernel(cls: type[Kernel]) -> type[Kernel]:
    """Class decorator: make `cls` the kernel of `cls.op_type`."""
    if not cls.op_type:
        raise KernelError(f"{cls.__name__} has no op_type")
    _REGISTRY[cls.op_type] = cls
    return cls


def _load_entry_points() -> None:
    """Custom operators registered from outside: each entry point is imported once, its
    import registers its kernels (or it names a Kernel class, which is registered here)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        if isinstance(loaded, type) and issubclass(loaded, Kernel) and loaded.op_type:
            _REGISTRY.setdefault(loaded.op_type, loaded)


def qualified_op_type(domain: str, op_type: str) -> str:
    """The registry key of an operator: its name in ONNX's own domain, `domain.op_type` in
    any other, so `com.microsoft.Gelu` and ONNX's `Gelu` are two kernels."""
    return op_type if domain in DEFAULT_DOMAINS else f"{domain}.{op_type}"


def resolve_op_type(domain: str, op_type: str) -> str:
    """The registry key a node of (`domain`, `op_type`) runs with: the qualified name. For a
    custom domain, a kernel registered from outside opslib under the bare name (as custom
    kernels were before opslib-api 1.4) also serves; a built-in one never does, its meaning
    is ONNX's. Unsupported operators get the qualified name, for the error."""
    qualified = qualified_op_type(domain, op_type)
    if qualified == op_type or is_supported(qualified) or not is_supported(op_type):
        return qualified
    bare = get_kernel(op_type)
    return qualified if bare.__module__.split(".")[0] == __name__.split(".")[0] else op_type


def get_kernel(op_type: str) -> type[Kernel]:
    if op_type not in _REGISTRY:
        _load_entry_points()
    if op_type not in _REGISTRY:
        raise UnsupportedOperator(op_type)
    return _REGISTRY[op_type]


def supported_ops() -> list[str]:
    _load_entry_points()
    return sorted(_REGISTRY)


def is_supported(op_type: str) -> bool:
    try:
        get_kernel(op_type)
    except UnsupportedOperator:
        return False
    return True


def canonical_attrs(attrs: dict) -> str:
    """A stable text of attributes, for cache keys."""
    return json.dumps(attrs, sort_keys=True, default=_jsonable)


def _jsonable(value: Any):
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.tolist()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bytes, bytearray)):
        return value.decode()
    raise TypeError(f"attribute value of type {type(value).__name__} is not serializable")
