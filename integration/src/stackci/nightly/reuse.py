"""Reuse what cannot have changed (Bazel-style caching of test results): a job whose inputs are
those of a stored passing result is not run again; it is recorded as that result, reused
(model.REUSED), pointing at the run and job it came from, with its figures.

A job's inputs (`inputs_key`): its definition (stage, action, name, SKU, parameters: a
workload's full record, tolerances included), the tree hashes of the modules it exercises and
nothing above them (EXERCISES: a workload job does not depend on serving; a module's tests on
the modules below it only), the environment's third-party lock and Python version, and for a
workload its prepared model, inputs and onnxruntime's reference outputs. Deterministic
simulated cycles make a reused figure exact. The analysis of a workload and the design sweep
over a SKU's plans are reused on the same terms (their documents are not stored again: the
newest stored one is still the one these inputs give). Builds, contracts, regressions, culprit
searches, the advice report and the publish job always run (they are cheap, or read the night
itself).

Wall-clock figures would freeze under reuse, so each night re-measures a sample of the jobs
that would be reused (the planner picks those measured longest ago: plan.remeasure).
"""

from __future__ import annotations

import hashlib
import json

from stackci.model import PASSED, REUSED, Job, Outcome
from stackci.regressions.metrics import Kind, lookup
from stackci.results.history import reusable_result
from stackci.workloads.suite import Workload
from stackci.workspace import MODULES


def below(module: str) -> tuple[str, ...]:
    """The module and those under it in the stack (driver < runtime < ... < serving)."""
    return MODULES[:MODULES.index(module) + 1]


# Which modules' trees a job's outcome can depend on, by action.
EXERCISES = {
    "workloads": lambda params: below("compiler"),
    "onnx-node": lambda params: below("compiler"),
    "opslib-size": lambda params: below("opslib"),
    "tests": lambda params: below(params["module"]),
    # The analysis asks the compiler about the same model on the same SKU: its document is a
    # function of those inputs (deterministic cycles), like the workload job's figures.
    "analysis": lambda params: below("compiler"),
    "analysis-explore": lambda params: below("compiler"),
}


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Reuse:
    """Inputs keys and stored results for one night; `sample` lists the jobs that run anyway
    (the re-measured sample); `enabled=False` (--no-reuse) only records the keys."""

    def __init__(self, store, resources, specs: dict, *, enabled: bool = True,
                 sample=frozenset()):
        self.store, self.resources, self.specs = store, resources, specs
        self.enabled, self.sample = enabled, frozenset(sample)

    def inputs_key(self, job: Job) -> str | None:
        spec = self.specs.get(job.key)
        if spec is None or spec.action not in EXERCISES or job.combination is None:
            return None
        env = self.resources.environment(job.combination)
        modules = {m: job.combination.modules[m].tree_hash
                   for m in EXERCISES[spec.action](spec.params) if m in job.combination.modules}
        # An analysis's label names its combination (whose key every module's tree changes):
        # it titles the document, it does not change what the compiler answers.
        params = {k: v for k, v in spec.params.items() if k != "label"}
        document = {"stage": spec.stage, "action": spec.action, "name": spec.name,
                    "sku": spec.sku, "params": params, "modules": modules,
                    "third_party": env.lock.get("third_party"),
                    "python": env.lock.get("python")}
        records = ([spec.params["workload"]] if "workload" in spec.params
                   else spec.params.get("workloads") or [])
        if records:
            document["prepared"] = [self._prepared(record) for record in records]
        text = json.dumps(document, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def _prepared(self, record: dict) -> dict:
        workload = Workload.from_record(record)

        def digest():
            prepared = self.resources.prepared(workload)
            return {"model": prepared.model_path.name,
                    "inputs": sha256_file(prepared.inputs_path),
                    "expected": sha256_file(prepared.expected_path)}
        return self.resources.once(f"inputs:{workload.name}", digest)

    def lookup(self, job: Job, key: str | None) -> Outcome | None:
        """The stored passing result with these inputs, as this job's outcome; None to run."""
        if not self.enabled or key is None or job.key in self.sample:
            return None
        found = reusable_result(self.store, job.stage, job.name, job.sku, key)
        if found is None:
            return None
        source, metrics, ops = found
        # Deterministic figures repeat exactly; wall-clock ones were not measured tonight.
        metrics = [m for m in metrics if not _wall_clock(m["name"])]
        origin = source.details.get("reused_from") or {
            "run_id": source.run_id, "job_id": source.id, "key": source.key,
            "duration_s": source.duration_s}
        details = {**{k: v for k, v in source.details.items()
                      if k not in ("reason", "reused_from", "remeasured")},
                   "reason": REUSED, "reused_from": origin}
        message = source.message.removeprefix(f"reused from run {origin['run_id']}: ")
        return Outcome(PASSED, f"reused from run {origin['run_id']}: {message}",
                       metrics=metrics, ops=ops, details=details)


def _wall_clock(name: str) -> bool:
    kind = lookup(name)
    return kind is not None and kind.kind is Kind.WALL_CLOCK
