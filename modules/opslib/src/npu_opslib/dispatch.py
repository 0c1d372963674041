"""Kernel selection (autotuning on the cost model, remembered) and launching on a context."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from npu_opslib import tuning
from npu_opslib.errors import KernelError, UnsupportedOperator
from npu_opslib.kernel import Kernel, KernelKey, TileConfig, canonical_attrs, get_kernel


@dataclass(frozen=True)
class Selection:
    """The kernel and tile configuration chosen for a key, with its modelled cost."""

    kernel: Kernel
    config: TileConfig
    cost: Any
    key: KernelKey | None = None
    candidates: int = field(default=1, compare=False)

    def to_dict(self) -> dict:
        return {"kernel": self.kernel.name, "config": self.config.to_dict(),
                "cost": self.cost.to_dict(), "candidates": self.candidates}


_CACHE: dict[tuple[str, KernelKey, str], Selection] = {}


def _sku_identity(sku) -> str:
    to_dict = getattr(sku, "to_dict", None)
    return json.dumps(to_dict(), sort_keys=True, default=str) if to_dict else repr(sku)


def select(sku, key: KernelKey, attrs: dict | None = None) -> Selection:
    """The cheapest tile configuration of `key`'s kernel on `sku`, tried once per
    (sku, key, attributes) and remembered (in memory and in the tuning cache, tuning.py)."""
    attrs = attrs or {}
    cache_key = (_sku_identity(sku), key, canonical_attrs(attrs))
    if cache_key in _CACHE:
        return _CACHE[cache_key]
    kernel = get_kernel(key.op_type)()
    reason = kernel.accepts(key)
    if reason:
        raise UnsupportedOperator(key.op_type, reason)
    configs = kernel.configs(key, attrs)
    best = tuning.lookup(sku, key, attrs, kernel, configs)  # the persistent tuning cache
    if best is None:
        best = _autotune(sku, key, attrs, kernel, configs)
        tuning.remember(sku, key, attrs, kernel, *best)
    selection = Selection(kernel, best[0], best[1], key, len(configs))
    _CACHE[cache_key] = selection
    return selection


def _autotune(sku, key: KernelKey, attrs: dict, kernel: Kernel, configs) -> tuple:
    """The cheapest of `configs` on the cost model, with its cost."""
    from npu_driver.perf import TileDoesNotFit

    best = None
    for config in configs:
        try:
            cost = kernel.fused_cost(sku, key, config, attrs)
        except TileDoesNotFit:
            continue  # an explicit tile larger than this SKU's SRAM: not a candidate here
        if best is None or cost.total_cycles < best[1].total_cycles:
            best = (config, cost)
    if best is None:
        raise KernelError(f"{key.op_type}: no tile configuration for shapes {key.shapes}")
    return best


def clear_cache() -> None:
    _CACHE.clear()


def run_reference(op_type: str, inputs, attrs: dict | None = None, fusion: str = "", *,
                  layout: str = "NCHW", precision: str = "fp32") -> tuple[np.ndarray, ...]:
    """The functional result of one op (no device, no cost)."""
    return get_kernel(op_type)().run(list(inputs), attrs or {}, fusion, layout=layout,
                                     precision=precision)


def launch(ctx, selection: Selection, inputs, outputs, attrs: dict | None = None, *,
           name: str = "", stream=None):
    """Run the selected kernel on the device storage of `inputs` into `outputs` (None stands
    for an omitted optional input), timed on the stream with the selection's cost."""
    kernel = selection.kernel
    key = selection.key or KernelKey(kernel.op_type, ())
    attrs = attrs or {}
    # A kernel class that replaces `run` or `_compute` gets exactly `run`; the others may
    # write their first output straight into the device storage.
    direct = type(kernel).run is Kernel.run and type(kernel)._compute is Kernel._compute

    def work():
        arrays = [None if d is None else d.view() for d in inputs]
        targets = [out.view() for out in outputs]
        if direct:
            results = kernel._execute(arrays, attrs, key.fusion, key.layout, key.precision,
                                      targets[0] if targets else None)
        else:
            results = kernel.run(arrays, attrs, key.fusion, layout=key.layout,
                                 precision=key.precision)
        for out, target, result in zip(outputs, targets, results):
            if result is target:
                continue
            if target.shape != np.shape(result):
                raise KernelError(f"{kernel.op_type}: output {out.name or ''} is "
                                  f"{tuple(target.shape)} but the kernel produced "
                                  f"{tuple(np.shape(result))}")
            target[...] = result

    args = {"op_type": kernel.op_type, "kernel": kernel.name, "fusion": key.fusion,
            "config": selection.config.name, "precision": key.precision,
            "layout": key.layout}
    return ctx.launch(name or kernel.op_type, work, selection.cost, stream=stream, args=args)
