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


def test_the_micro_part_is_of_the_256_mac_micro_npu_class():
    """npu-micro models an Ethos-U55/U65-256-class part (its YAML says why each figure):
    256 int8 MACs per cycle at a few hundred MHz, little SRAM, a few GB/s of LPDDR, and
    device memory that holds the smoke models' fp32 weights (AlexNet's are 244 MB)."""
    micro, edge = load_sku("npu-micro"), load_sku("npu-edge")
    macs_int8 = micro.cores * micro.array_rows * micro.array_cols * micro.multiplier("int8")
    assert macs_int8 == 256 and 0.1 <= micro.clock_ghz < 1
    assert micro.peak_tops("int8") == pytest.approx(2 * 256 * 0.4e9 / 1e12)
    assert micro.sram_bytes < edge.sram_bytes and micro.dram_bandwidth_gbps < 8
    assert micro.device_memory_bytes >= 512 * 2**20


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


# --- the loader is total: any bytes give a SKU or one InvalidSKU line naming the file ---------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                     st.floats(allow_nan=True, allow_infinity=True))
_trees = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
_FUZZ = settings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def _load_or_one_line(path):
    try:
        return load_sku(path)
    except InvalidSKU as problem:
        message = str(problem)
        assert message.startswith(str(path)) and "\n" not in message, message
        return None


@_FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_load_or_give_one_line(tmp_path, raw):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(raw)
    _load_or_one_line(path)


@_FUZZ
@given(_trees)
def test_any_yaml_tree_loads_or_gives_one_line(tmp_path, tree):
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump(tree))
    _load_or_one_line(path)


@_FUZZ
@given(st.sampled_from(["clock_ghz", "dram_bandwidth_gbps", "dram_latency_ns",
                        "host_link_gbps", "cores", "array_rows", "sram_bytes"]),
       st.sampled_from([0, -1, 2**63, 10**400, float("inf"), float("-inf"), float("nan"),
                        1e-300, True, "1e9", [], {}]))
def test_boundary_numbers_in_every_numeric_field(tmp_path, field, value):
    data = load_sku("npu-edge").to_dict()
    data[field] = value
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data))
    sku = _load_or_one_line(path)
    if sku is not None:  # what loads is usable: finite and positive where it must be
        assert sku.dram_bytes_per_cycle > 0 and sku.peak_tops() > 0


def test_non_utf8_and_deep_nesting_are_one_line(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidSKU, match=r"latin.yaml: not UTF-8 text \(byte 9\)"):
        load_sku(latin)
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidSKU, match="deep.yaml: not valid YAML"):
        load_sku(deep)
    infinite = tmp_path / "inf.yaml"
    data = load_sku("npu-edge").to_dict() | {"clock_ghz": float("inf")}
    infinite.write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidSKU, match="field 'clock_ghz' must be a positive finite number"):
        load_sku(infinite)
