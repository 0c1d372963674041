"""A fake port whose costs depend on the version vector, and nights on it, for the tests of
the regressions job, the commands that read regressions, and the dashboard's page."""

from pathlib import Path

from fakes import FakePort
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.sources.combination import Combination, ModuleVersion

MODULES = ("driver", "runtime", "opslib", "compiler")


class CostPort(FakePort):
    """conv0 costs `extra[(opslib tree, workload)]` more cycles (latency follows at 1 GHz);
    `jitter` adds cycles whatever the vector (a determinism bug)."""

    def __init__(self, tmp_path):
        super().__init__(tmp_path, modules=MODULES)
        self.extra: dict[tuple[str, str], int] = {}
        self.jitter = 0
        self.combination_of: dict[str, Combination] = {}

    def environment(self, ws, combination, **options):
        env = super().environment(ws, combination, **options)
        env.python = Path(f"/fake/{combination.key}/bin/python")
        self.combination_of[str(env.python)] = combination
        return env

    def run_model(self, python, request):
        document = super().run_model(python, request)
        workload = request.model.stem.rsplit("-", 2)[0]
        tree = self.combination_of[str(python)].modules["opslib"].tree_hash
        extra = self.extra.get((tree, workload), 0) + self.jitter
        simulated = document["simulated"]
        simulated["ops"][0]["cycles"] += extra
        simulated["total_cycles"] += extra
        simulated["latency_us"] = simulated["total_cycles"] / 1000.0
        return document


def vector(opslib="o1", compiler="k1"):
    trees = {"driver": "d1", "runtime": "r1", "opslib": opslib, "compiler": compiler}
    return Combination("master", {m: ModuleVersion(m, "1.0.0", f"commit-{t}", f"tree-{t}")
                                  for m, t in trees.items()})


def night(ws, store, port, combination):
    nightly = Nightly(ws, store, port=port, suite=port.suite_path(),
                      dashboard_dir=ws.home / "site")
    # no_reuse: these fakes change what the stack measures behind unchanged inputs.
    return nightly.start(NightlyOptions(tier="smoke", no_tests=True, bisect_probes=0,
                                        no_reuse=True), [combination])


