"""Benchmarks compare single-threaded runs: pin BLAS to one thread before numpy is imported."""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"


def pytest_terminal_summary(terminalreporter):
    """The functional-speed ratios as one table: per model, and the smoke suite's total; the
    design-space sweep's time against its goal."""
    import sys

    def module(name):  # --import-mode=importlib may name it by its path
        return next((m for key, m in list(sys.modules.items())
                     if key == name or key.endswith("." + name)), None)

    explored = getattr(module("test_explore"), "EXPLORED", None)
    if explored:
        terminalreporter.write_line(explored)
    speed = module("test_functional_speed")
    if speed is None or not speed.MEASURED:
        return
    GOAL, MEASURED = speed.GOAL, speed.MEASURED
    write = terminalreporter.write_line
    write("")
    write(f"functional speed, stack / onnxruntime (single-threaded; goal <= {GOAL}x)")
    write(f"{'model':<14}{'stack ms':>10}{'onnxruntime ms':>16}{'ratio':>8}  verdict")
    rows = list(MEASURED.items())
    total = {"stack_s": sum(m["stack_s"] for _, m in rows),
             "onnxruntime_s": sum(m["onnxruntime_s"] for _, m in rows)}
    total["ratio"] = total["stack_s"] / total["onnxruntime_s"]
    for name, m in rows + [("smoke suite", total)]:
        verdict = "meets" if m["ratio"] <= GOAL else "misses"
        write(f"{name:<14}{m['stack_s'] * 1e3:>10.1f}{m['onnxruntime_s'] * 1e3:>16.1f}"
              f"{m['ratio']:>7.2f}x  {verdict}")
