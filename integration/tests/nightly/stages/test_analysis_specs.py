"""Which analysis jobs a night plans (nightly/stages/analysis.py `job_specs`)."""

from types import SimpleNamespace

from stackci.nightly.stages import analysis
from stackci.workloads.suite import Workload


def workload(name: str, precision: str) -> Workload:
    return Workload(name=name, source="onnx-light:squeezenet", tiers=("smoke",),
                    skus=("edge",), precision=precision, seed=1, atol=1e-4, rtol=1e-3,
                    batch=1, model="m" if precision != "fp32" else "")


def planned(workloads, tag):
    return [SimpleNamespace(key=f"workloads:{w.name}:edge@{tag}") for w in workloads]


def test_the_smoke_night_analyses_the_base_precision_and_the_full_tiers_every_variant():
    combination = SimpleNamespace(key="c" * 64, name="master")
    suite = [workload("m", "fp32"), workload("m-int8", "int8"), workload("m-fp16", "fp16")]
    jobs = planned(suite, combination.key[:12])
    smoke = {s["key"] for s in analysis.job_specs([combination], suite, jobs)
             if s["action"] == "analysis"}
    full = {s["key"] for s in analysis.job_specs([combination], suite, jobs,
                                                 every_precision=True)
            if s["action"] == "analysis"}
    tag = combination.key[:12]
    assert smoke == {f"analysis:m:edge@{tag}"}
    assert full == {f"analysis:{w.name}:edge@{tag}" for w in suite}
