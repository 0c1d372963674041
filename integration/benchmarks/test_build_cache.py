"""Building the same combination twice: the second build is a cache hit (no wheel rebuilt, the
environment reused). Reports both times and their ratio; never asserts on time.

    nox -s benchmarks            (or: pytest integration/benchmarks --benchmark-only -s)

STACKCI_BENCH_COMBINATION picks the combination of this repository (default release:latest).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from stackci.sources.build import ensure_environment
from stackci.sources.resolve import resolve
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


def wheel_mtimes(ws: Workspace) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (ws.cache / "wheels").glob("*/*.whl")}


def test_second_build_is_a_cache_hit(benchmark, tmp_path):
    ws = Workspace(repo=REPO, home=tmp_path / "home")
    ws.home.mkdir()
    combination = resolve(ws, os.environ.get("STACKCI_BENCH_COMBINATION", "release:latest"))
    started = time.perf_counter()
    first = ensure_environment(ws, combination)
    cold_s = time.perf_counter() - started
    built = wheel_mtimes(ws)

    second = benchmark.pedantic(ensure_environment, args=(ws, combination), rounds=3,
                                iterations=1)
    warm_s = benchmark.stats.stats.mean
    assert wheel_mtimes(ws) == built, "a wheel was rebuilt on the second build"
    assert second.path == first.path and second.lock == first.lock
    benchmark.extra_info.update(cold_s=cold_s, warm_s=warm_s, ratio=cold_s / warm_s,
                                wheels=len(built), combination=combination.name)
    print(f"\n{'build':<8}{'seconds':>10}\n{'cold':<8}{cold_s:>10.2f}\n{'cached':<8}"
          f"{warm_s:>10.4f}\nratio cold/cached: {cold_s / warm_s:,.0f}x "
          f"({len(built)} wheels, {combination.name})")
