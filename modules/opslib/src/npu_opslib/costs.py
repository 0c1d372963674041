"""Thin helpers over `npu_driver.perf`, the one performance model of the stack."""

from __future__ import annotations

ITEMSIZE = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


def itemsize(precision: str) -> int:
    return ITEMSIZE.get(precision, 4)


def _perf():
    from npu_driver import perf

    return perf


def tile(config):
    """The driver's Tile of a TileConfig (None lets the performance model pick)."""
    if config is None or config.tile_m is None:
        return None
    return _perf().Tile(config.tile_m, config.tile_n, config.tile_k)


def vector(sku, precision, elements, ops_per_element=1, *, bytes_read, bytes_written):
    return _perf().vector_cost(sku, int(elements), ops_per_element=ops_per_element,
                               bytes_read=int(bytes_read), bytes_written=int(bytes_written),
                               precision=precision)


def gemm(sku, precision, M, N, K, *, batch=1, config=None):
    return _perf().gemm_cost(sku, int(M), int(N), int(K), precision=precision, batch=int(batch),
                             tile=tile(config))


def conv(sku, precision, *, config=None, **geometry):
    return _perf().conv_cost(sku, precision=precision, tile=tile(config),
                             **{k: int(v) for k, v in geometry.items()})


def relayout(sku, precision, elements):
    """Converting `elements` between NCHW and NHWC on the fly: each is read and written once
    through the vector unit."""
    nbytes = int(elements) * itemsize(precision)
    return vector(sku, precision, elements, 1, bytes_read=nbytes, bytes_written=nbytes)
