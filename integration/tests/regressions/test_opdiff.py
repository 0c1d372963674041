"""The per-op diff of two profiles as the stack's run JSON gives them (`simulated.ops`)."""

from stackci.regressions import op_diff, profile_totals


def op(name, op_type, kernel, cycles, fusion="", macs=0, bytes_read=0, bytes_written=0):
    return {"name": name, "op_type": op_type, "kernel": kernel, "fusion": fusion,
            "cycles": cycles, "macs": macs, "bytes_read": bytes_read,
            "bytes_written": bytes_written, "unit": "array", "config": "t32"}


BEFORE = [op("conv1", "Conv", "conv_direct", 1000, "conv+relu", 500, 64, 32),
          op("pool", "MaxPool", "pool", 50),
          op("fc", "Gemm", "gemm", 300)]


def test_a_cost_change_with_the_same_kernels_points_below_the_compiler():
    after = [dict(BEFORE[0], cycles=1300), BEFORE[1], BEFORE[2]]
    diff = op_diff(BEFORE, after)
    [change] = diff.changes
    assert (change.name, change.delta()) == ("conv1", 300)
    assert diff.unchanged == 2 and diff.delta_cycles == 300
    assert "opslib's kernel cost or the driver" in diff.hint()
    assert change.describe() == "conv1 (Conv): +300 cycles"


def test_another_kernel_and_a_lost_fusion_are_named():
    after = [dict(BEFORE[0], kernel="conv_im2col", cycles=1200), BEFORE[1],
             dict(BEFORE[2], fusion="gemm+add")]
    diff = op_diff(BEFORE, after)
    assert {c.name for c in diff.changes} == {"conv1", "fc"}
    conv = next(c for c in diff.changes if c.name == "conv1")
    assert "kernel conv_direct -> conv_im2col" in conv.describe()
    assert "compiler's passes" in diff.hint()
    assert diff.top(1)[0].name == "conv1"


def test_added_and_removed_ops_and_repeated_names():
    after = [BEFORE[0], op("relu", "Relu", "vector", 20), BEFORE[2], BEFORE[2]]
    diff = op_diff(BEFORE, after)
    statuses = {c.name: c.status for c in diff.changes}
    assert statuses == {"pool": "removed", "relu": "added", "fc#2": "added"}
    assert diff.to_dict()["hint"].startswith("ops were fused")


def test_identical_profiles_have_no_changes_and_totals_sum_the_profile():
    assert op_diff(BEFORE, [dict(o) for o in BEFORE]).changes == ()
    assert profile_totals(BEFORE) == {"macs": 500, "bytes_moved": 96}
