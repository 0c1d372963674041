"""Reuse (nightly/reuse.py): a job whose inputs are those of a stored pass is recorded as
reused, pointing at its source; changing one module re-runs exactly the jobs exercising it."""

from dataclasses import replace

from fakes import FakePort
from stackci.model import PASSED, REUSED
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.sources.combination import Combination
from stackci.workspace import MODULES


def night(ws, store, port, combination, **options):
    nightly = Nightly(ws, store, port=port, suite=port.suite_path(),
                      dashboard_dir=ws.home / "site")
    return nightly.start(NightlyOptions(tier="smoke", **options), [combination])


def with_tree(combination: Combination, module: str, tree: str) -> Combination:
    modules = dict(combination.modules)
    modules[module] = replace(modules[module], tree_hash=tree)
    return Combination(combination.name, modules)


def outcome(store, run_id):
    """(stage, name, sku) -> 'reused' or 'ran', for every job that passed, but the sample
    the night re-measures whatever its inputs (plan.remeasure: one workload job here)."""
    sample = set(store.run(run_id).plan["remeasure"])
    return {(job.stage, job.name, job.sku): "reused" if job.reason == REUSED else "ran"
            for job in store.jobs(run_id) if job.status == PASSED and job.key not in sample}


def fake_stack(tmp_path):
    port = FakePort(tmp_path, workloads=("resnet",), modules=MODULES)
    for module in MODULES:
        (port.sources[module] / "tests" / "test_ok.py").write_text("def test_ok():\n    pass\n")
    return port


def test_a_second_night_reuses_and_one_changed_module_reruns_what_exercises_it(ws, store,
                                                                             tmp_path):
    port = fake_stack(tmp_path)
    master = port.combination()
    first = night(ws, store, port, master, job_timeout_s=120)
    assert set(outcome(store, first.run_id).values()) == {"ran"}

    port.calls.clear()
    second = night(ws, store, port, master, job_timeout_s=120)
    found = outcome(store, second.run_id)
    # Builds, contracts, regressions and publish always run; nothing else did (the analysis
    # of an unchanged workload on an unchanged compiler is reused too; with no new document
    # there is no advice to give).
    assert {key for key, how in found.items() if how == "ran"
            and key[0] in ("tests", "workloads", "analysis")} == set()
    assert [key for key, how in found.items() if key[0] == "analysis"
            and how == "reused"] != []
    assert ("build", "master", None) in found
    assert len([c for c in port.calls if c[0] == "run_model"]) == 1  # the sample
    assert second.summary["reused"]["count"] == 10  # five test suites, a workload, 4 analyses
    assert second.summary["reused"]["from_runs"] == [first.run_id]
    reused = next(job for job in store.jobs(second.run_id) if job.stage == "workloads"
                  and job.reason == REUSED)
    assert reused.details["reused_from"]["run_id"] == first.run_id
    assert reused.message.startswith(f"reused from run {first.run_id}: ")
    assert reused.duration_s is None
    names = {m["name"] for m in store.metrics(job_id=reused.id)}
    assert "latency_us" in names and "compile_s" not in names  # wall-clock is not repeated
    assert store.op_profile(reused.id)  # the op profile comes along

    # Serving changed: only serving's tests exercise it.
    served = with_tree(master, "serving", "tree-serving-changed")
    third = night(ws, store, port, served, job_timeout_s=120)
    assert {key for key, how in outcome(store, third.run_id).items()
            if how == "ran" and key[0] in ("tests", "workloads", "analysis")} == {
        ("tests", "serving", None)}

    # The compiler changed: every workload, the compiler's and serving's tests run again.
    compiled = with_tree(served, "compiler", "tree-compiler-changed")
    fourth = night(ws, store, port, compiled, job_timeout_s=120)
    assert {key for key, how in outcome(store, fourth.run_id).items()
            if how == "ran" and key[0] in ("tests", "workloads")} == {
        ("tests", "compiler", None), ("tests", "serving", None),
        ("workloads", "resnet", "edge"), ("workloads", "resnet", "datacenter")}
    ran_analysis = {key for key, how in outcome(store, fourth.run_id).items()
                    if how == "ran" and key[0] == "analysis"}
    assert ("analysis", "resnet", "edge") in ran_analysis

    # The driver changed: everything above it runs again, nothing is reused.
    driven = with_tree(compiled, "driver", "tree-driver-changed")
    fifth = night(ws, store, port, driven, job_timeout_s=120)
    assert "reused" not in outcome(store, fifth.run_id).values()
    assert fifth.summary["reused"]["count"] == 0


def test_no_reuse_runs_everything_and_failures_are_never_reused(ws, store, tmp_path):
    port = FakePort(tmp_path, workloads=("resnet", "bert"))
    master = port.combination()
    port.behaviour = {("resnet", "edge"): "mismatch"}
    night(ws, store, port, master, no_tests=True)
    port.calls.clear()
    again = night(ws, store, port, master, no_tests=True)
    sample = {tuple(key.split("@")[0].split(":")[1:]) for key in
              store.run(again.run_id).plan["remeasure"]}
    ran = {c[1:3] for c in port.calls if c[0] == "run_model"}
    # The failure runs again (it may be fixed, or flaky); the passes are reused but the sample.
    assert ran == {("resnet", "edge")} | sample
    assert len([job for job in store.jobs(again.run_id) if job.stage == "workloads"
                and job.reason == REUSED]) == 4 - len(ran)
    port.calls.clear()
    forced = night(ws, store, port, master, no_tests=True, no_reuse=True)
    assert len([c for c in port.calls if c[0] == "run_model"]) == 4
    assert forced.summary["reused"]["count"] == 0


def test_each_night_remeasures_a_sample_of_what_it_could_reuse(ws, store, tmp_path):
    port = FakePort(tmp_path, workloads=("resnet", "bert"))
    master = port.combination()
    night(ws, store, port, master, no_tests=True)
    seen = []
    for _ in range(4):
        port.calls.clear()
        result = night(ws, store, port, master, no_tests=True)
        plan = store.run(result.run_id).plan
        assert len(plan["remeasure"]) == 1
        ran = [c[1:3] for c in port.calls if c[0] == "run_model"]
        assert len(ran) == 1
        seen.append(ran[0])
    # The one measured longest ago goes next: four nights measure all four jobs again.
    assert len(set(seen)) == 4
