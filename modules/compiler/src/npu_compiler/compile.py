"""compile_model: ONNX in, plan out (from the plan cache when one is given)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from npu_driver import load_sku

from npu_compiler.errors import InputError
from npu_compiler.ir import Graph
from npu_compiler.onnx_import import import_model
from npu_compiler.passes.pipeline import run_pipeline
from npu_compiler.plan import Plan, check_precision


def compile_model(model, sku, *, precision: str = "fp32", batch: int | None = None,
                  pipeline=None, calibration=None, cache_dir=None, shapes=None,
                  feed_shapes=None) -> Plan:
    """Import `model` (path or ModelProto), run the pass pipeline for `sku`, return the plan.

    `calibration` (int8): a dict of input arrays, a list of them, or an .npz file; an array
    with one more leading axis than the input holds several samples. Default: seeded random
    inputs. `cache_dir`: reuse and store compiled plans there (see `npu_compiler.cache`).
    `shapes` (input name -> dims) specializes the plan to that shape signature: every
    symbolic dimension of those inputs is bound, and shape arithmetic on them is folded;
    `feed_shapes` does the same for the inputs with a symbolic dimension only (the shapes of
    the arrays that will be fed)."""
    return compile_cached(model, sku, precision=precision, batch=batch, pipeline=pipeline,
                          calibration=calibration, cache_dir=cache_dir, shapes=shapes,
                          feed_shapes=feed_shapes)[0]


def _signature(shapes) -> dict | None:
    return {name: [int(d) for d in dims] for name, dims in sorted(shapes.items())} \
        if shapes else None


def compile_cached(model, sku, *, precision="fp32", batch=None, pipeline=None,
                   calibration=None, cache_dir=None, shapes=None,
                   feed_shapes=None) -> tuple[Plan, str]:
    """The plan, and "hit", "miss" (compiled and stored) or "off" (no cache)."""
    target = load_sku(sku)
    check_precision(precision, target)
    samples = calibration_samples(calibration) if precision == "int8" else []
    key = None
    if cache_dir is not None:
        from npu_compiler import cache

        key = cache.plan_key(model, target, precision=precision, batch=batch,
                             pipeline=pipeline, calibration=samples,
                             shapes={"given": _signature(shapes), "fed": _signature(feed_shapes)})
        cached = cache.load(Path(cache_dir), key)
        if cached is not None:
            return cached, "hit"
    graph: Graph = import_model(model, batch=batch, shapes=shapes, feed_shapes=feed_shapes)
    graph.sku = target
    graph.precision = precision
    graph.calibration = samples
    graph, pass_log = run_pipeline(graph, pipeline)
    plan = Plan.from_graph(graph, pass_log)
    if key is None:
        return plan, "off"
    from npu_compiler import cache

    cache.store(Path(cache_dir), key, plan)
    return plan, "miss"


def read_npz(path, what: str) -> dict[str, np.ndarray]:
    """Arrays by name from an .npz file; `what` names them in the one-line error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cannot read {what} {path}: no such file")
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except Exception as exc:
        raise InputError(f"cannot read {what} {path}: not an npz file "
                         f"({' '.join(str(exc).split())})") from None


def calibration_samples(calibration) -> list[dict]:
    """Calibration data as a list of feed dicts (see compile_model)."""
    if calibration is None:
        return []
    if isinstance(calibration, (str, Path)):
        calibration = read_npz(calibration, "calibration data")
    if isinstance(calibration, dict):
        return [{name: np.asarray(a) for name, a in calibration.items()}]
    return [dict(sample) for sample in calibration]
