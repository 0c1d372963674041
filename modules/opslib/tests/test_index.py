"""The gather kernels' device cost (ops/index.py): a DMA gather moves what it picks and its
indices, never the rest of the data."""

from __future__ import annotations

import numpy as np
import pytest
from npu_driver import load_sku

from npu_opslib import KernelKey
from npu_opslib.ops import index, shape

TABLE = (30522, 768)  # BERT's token embeddings


def cycles(kernel, key, attrs=None):
    return kernel.cost(load_sku("npu-edge"), key, None, attrs or {}).total_cycles


def test_an_embedding_lookup_costs_the_rows_it_reads_not_the_table():
    lookup = cycles(index.Gather(), KernelKey("Gather", [TABLE, (1, 128)]))
    rows = cycles(shape.Reshape(), KernelKey("Reshape", [(1, 128, 768), (3,)]))
    table = cycles(shape.Reshape(), KernelKey("Reshape", [TABLE, (2,)]))
    assert lookup < 1.1 * rows  # the rows, plus 1 KiB of indices
    assert lookup * 100 < table


def test_a_batch_of_lookups_costs_per_sequence_what_one_costs():
    one = cycles(index.Gather(), KernelKey("Gather", [TABLE, (1, 128)]))
    sixteen = cycles(index.Gather(), KernelKey("Gather", [TABLE, (16, 128)]))
    assert sixteen / 16 == pytest.approx(one, rel=0.05)


@pytest.mark.parametrize("data, indices, axis", [((5, 3), (2, 4), 0), ((2, 5, 3), (4,), 1),
                                                 ((2, 5), (), -1)])
def test_gather_output_shapes_are_numpys(data, indices, axis):
    x = np.zeros(data, np.float32)
    ids = np.zeros(indices, np.int64)
    [expected] = index.Gather().run([x, ids], {"axis": axis})
    key = KernelKey("Gather", [data, indices])
    assert index.Gather().output_shapes(key, {"axis": axis}) == [expected.shape]


def test_gather_elements_and_nd_cost_what_they_pick():
    picked = cycles(index.GatherElements(), KernelKey("GatherElements", [TABLE, (16, 768)]))
    nd = cycles(index.GatherND(), KernelKey("GatherND", [TABLE, (16, 1)]))
    table = cycles(shape.Reshape(), KernelKey("Reshape", [TABLE, (2,)]))
    assert picked * 100 < table and nd * 100 < table
