"""What npu_serving expects of driver-api: checking `--sku` before serving (UnknownSKU, a
DriverError naming the SKU and the known ones) and the shipped SKUs it lists."""

import pytest

from npu_driver import DriverError, UnknownSKU, list_skus, load_sku


def test_unknown_sku_names_it_and_lists_the_known_ones():
    known = [sku.name for sku in list_skus()]
    with pytest.raises(UnknownSKU) as err:
        load_sku("npu-nonexistent")
    assert isinstance(err.value, DriverError)
    assert "npu-nonexistent" in str(err.value)
    assert all(name in str(err.value) for name in known)


def test_shipped_skus_load_by_name():
    for sku in list_skus():
        assert load_sku(sku.name).name == sku.name
    assert {"npu-edge", "npu-dc"} <= {sku.name for sku in list_skus()}
