"""Runs written straight into a store, for tests of what reads them (dashboard pages)."""


def nightly_like(store, ratios: dict[tuple[str, str], float]) -> int:
    """A finished nightly run with one workload job per (workload, SKU), storing the figures
    `workload_outcome` stores, `speed_ratio` among them."""
    run_id = store.start_run(tier="nightly", budget_s=3600, plan={})
    combination = store.record_combination("master", "a1b2c3d4e5f6", {})
    keys = {pair: f"workloads:{pair[0]}:{pair[1]}@master" for pair in ratios}
    store.add_jobs(run_id, [{"key": key, "stage": "workloads", "name": workload, "sku": sku,
                             "combination_id": combination}
                            for (workload, sku), key in keys.items()])
    for (workload, sku), ratio in ratios.items():
        figures = {"latency_us": 100.0, "run_s": 0.3 * ratio, "reference_s": 0.3,
                   "speed_ratio": ratio}
        store.finish_job(run_id, keys[(workload, sku)], status="passed", metrics=[
            {"name": name, "value": value, "workload": workload, "sku": sku}
            for name, value in figures.items()])
    store.finish_run(run_id, "completed", {"used_s": 60})
    return run_id
