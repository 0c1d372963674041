import pytest
import yaml

from npu_driver import SKU, InvalidSKU, UnknownSKU, list_skus, load_sku
from npu_driver.sku import PRECISION_BYTES


def test_shipped_skus_are_the_edge_and_datacenter_parts():
    skus = {s.name: s for s in list_skus()}
    assert {"npu-edge", "npu-dc"} <= set(skus)
    edge, dc = skus["npu-edge"], skus["npu-dc"]
    assert (edge.cores, edge.array_rows, edge.array_cols, edge.dataflow) == (1, 32, 32, "os")
    assert edge.sram_bytes == 2**20 and edge.device_memory_bytes == 512 * 2**20
    assert (dc.cores, dc.array_rows, dc.dataflow) == (4, 128, "ws")
    assert dc.sram_bytes == 24 * 2**20 and dc.device_memory_bytes == 32 * 2**30
    assert dc.dram_bandwidth_gbps > 50 * edge.dram_bandwidth_gbps


def test_load_by_name_and_by_path_agree(tmp_path):
    edge = load_sku("npu-edge")
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(edge.to_dict()))
    assert load_sku(str(path)) == edge
    assert load_sku(edge) is edge


def test_unknown_sku_names_it_and_lists_known():
    with pytest.raises(UnknownSKU) as err:
        load_sku("npu-moon")
    assert "'npu-moon'" in str(err.value)
    assert "npu-edge" in str(err.value) and "npu-dc" in str(err.value)


def _write(tmp_path, **changes):
    data = load_sku("npu-edge").to_dict()
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / "part.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, field", [
    ({"cores": None}, "cores"),
    ({"cores": "four"}, "cores"),
    ({"cores": 0}, "cores"),
    ({"clock_ghz": -1}, "clock_ghz"),
    ({"dataflow": "rs"}, "dataflow"),
    ({"sram_bytes": "lots"}, "sram_bytes"),
    ({"precisions": {"fp64": 1}}, "precisions"),
    ({"precisions": {"fp32": 1.5}}, "precisions"),
    ({"layout": "CHWN"}, "layout"),
])
def test_bad_field_is_one_line_naming_file_and_field(tmp_path, changes, field):
    path = _write(tmp_path, **changes)
    with pytest.raises(InvalidSKU) as err:
        load_sku(str(path))
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and repr(field) in message


def test_unknown_field_and_invalid_yaml_are_reported(tmp_path):
    with pytest.raises(InvalidSKU, match="unknown field 'turbo'"):
        load_sku(str(_write(tmp_path, turbo=True)))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(InvalidSKU, match="not valid YAML"):
        load_sku(str(broken))


def test_sizes_accept_binary_units():
    sku = load_sku("npu-edge").with_overrides(sram_bytes="2 MiB", device_memory_bytes=4096)
    assert sku.sram_bytes == 2 * 2**20 and sku.device_memory_bytes == 4096


def test_with_overrides_validates_and_leaves_original():
    edge = load_sku("npu-edge")
    wide = edge.with_overrides(array_rows=64, dataflow="WS")
    assert (wide.array_rows, wide.dataflow, edge.array_rows) == (64, "ws", 32)
    with pytest.raises(InvalidSKU, match="'array_rows'"):
        edge.with_overrides(array_rows=-3)


def test_peak_tops_scales_with_precision_and_array():
    edge = load_sku("npu-edge")
    assert edge.peak_tops("fp32") == pytest.approx(2 * 32 * 32 * 0.8e9 / 1e12)
    assert edge.peak_tops("int8") == pytest.approx(4 * edge.peak_tops("fp32"))
    with pytest.raises(InvalidSKU, match="fp64"):
        edge.peak_tops("fp64")


def test_skus_are_hashable_and_round_trip():
    for sku in list_skus():
        assert SKU.from_dict(sku.to_dict(), source="test") == sku
        assert hash(sku) == hash(SKU.from_dict(sku.to_dict(), source="test"))
        assert set(sku.precisions) <= set(PRECISION_BYTES)
