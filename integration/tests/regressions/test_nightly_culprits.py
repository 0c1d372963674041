"""The issue's acceptance test: nights on a throwaway git repository, culprits found by the
nightly's own bisect jobs, every probe really built through sources/ (git archive, wheels, uv).

The repository holds the five tiny modules of fakestack.py and the project's own OWNERS file.
opslib keeps its kernels' costs in `costs.txt` and the kernels it provides in `provides.txt`,
compiler the kernels it asks for in `needs.txt`; the port builds each combination for real and
prices a workload's ops from the files of the sources it built (a kernel the compiler asks for
and opslib lacks falls back to a slow path). `resnet` runs Conv, Gemm and Softmax, `bert` only
Gemm and Softmax, so a Conv change moves resnet alone.
"""

import shutil
from pathlib import Path

import pytest

from fakes import FakePort
from fakestack import commit, git, make_stack, workspace, write_module
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.store import Store
from stackci.stack.port import StackPort

REPO = Path(__file__).resolve().parents[3]
OPS = {"resnet": [("conv0", "Conv"), ("gemm0", "Gemm"), ("softmax0", "Softmax")],
       "bert": [("gemm0", "Gemm"), ("softmax0", "Softmax")]}
FALLBACK = 500   # cycles of a Conv whose fast kernel the compiler wants and opslib lacks


class BuiltPort(FakePort):
    """Environments built for real (StackPort's); models priced from the built sources."""

    def __init__(self, tmp_path):
        super().__init__(tmp_path, workloads=tuple(OPS))
        self.built: dict[str, dict[str, Path]] = {}

    def environment(self, ws, combination, *, progress=None, python=None):
        self._called("build", combination.key)
        env = StackPort.environment(self, ws, combination)
        self.built[str(env.python)] = env.sources
        return env

    def run_model(self, python, request):
        document = super().run_model(python, request)
        sources = self.built[str(python)]
        package = lambda m: sources[m] / "src" / f"npu_{m}"      # noqa: E731
        costs = dict(line.split() for line in (package("opslib") / "costs.txt")
                     .read_text().splitlines())
        provided = (package("opslib") / "provides.txt").read_text().split()
        needed = (package("compiler") / "needs.txt").read_text().split()
        slow = any(kernel not in provided for kernel in needed)
        ops = []
        for name, op_type in OPS[request.model.stem.rsplit("-", 2)[0]]:
            cycles = float(costs[op_type]) + (FALLBACK if slow and op_type == "Conv" else 0)
            ops.append({"name": name, "op_type": op_type, "cycles": cycles, "macs": 1000,
                        "bytes_read": 64, "bytes_written": 64, "unit": "array",
                        "kernel": f"{op_type.lower()}_{'fallback' if slow else 'fast'}"})
        total = sum(op["cycles"] for op in ops)
        document["simulated"] = {"total_cycles": total, "latency_us": total / 1000.0,
                                 "peak_device_bytes": 1 << 20, "ops": ops}
        return document


def files(repo, module, **texts):
    for name, text in texts.items():
        path = repo / "modules" / module / "src" / f"npu_{module}" / name
        path.write_text(text)


@pytest.fixture
def stack(tmp_path):
    repo = make_stack(tmp_path)
    shutil.copyfile(REPO / "OWNERS", repo / "OWNERS")
    files(repo, "opslib", **{"costs.txt": "Conv 3000\nGemm 1000\nSoftmax 500\n",
                             "provides.txt": "direct\nwinograd\n"})
    files(repo, "compiler", **{"needs.txt": "direct\n"})
    (repo / "docs").mkdir()
    (repo / "docs" / "notes.md").write_text("notes\n")
    commit(repo, "kernel costs and needs")
    ws = workspace(repo, tmp_path / "home")
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield repo, ws, store, BuiltPort(tmp_path)
    store.close()


def nightly(ws, store, port):
    nightly = Nightly(ws, store, port=port, suite=port.suite_path(),
                      dashboard_dir=ws.home / "site")
    return nightly.start(NightlyOptions(tier="smoke", no_tests=True, skus=["edge"],
                                        bisect_probes=10, workers=1, no_reuse=True))


def note(repo, text):
    (repo / "docs" / "notes.md").write_text(text)
    return commit(repo, "docs: " + text.strip())


def test_the_nightly_names_module_commit_and_team_and_skips_the_unbuildable(stack):
    repo, ws, store, port = stack
    assert nightly(ws, store, port).ok
    assert store.regression_rows() == []

    note(repo, "unrelated")
    files(repo, "opslib", **{"README.txt": "kernels\n"})
    commit(repo, "opslib: readme")
    files(repo, "compiler", **{"README.txt": "passes\n"})
    commit(repo, "compiler: readme, same cost")
    write_module(repo, "opslib", broken=True)
    broken = commit(repo, "opslib: half a change (does not build)")
    write_module(repo, "opslib")
    commit(repo, "opslib: finish the change")
    files(repo, "driver", **{"README.txt": "device\n"})
    commit(repo, "driver: readme")
    files(repo, "opslib", **{"costs.txt": "Conv 3600\nGemm 1000\nSoftmax 500\n"})
    culprit = commit(repo, "opslib: Conv tiles (+600 cycles)")
    note(repo, "unrelated again")
    files(repo, "opslib", **{"README.txt": "kernels, tiles\n"})
    commit(repo, "opslib: comments")

    second = nightly(ws, store, port)
    rows = store.regression_rows()
    # The affected workload only, and only the figures the cost moves.
    assert {(r["workload"], r["metric"]) for r in rows} == \
        {("resnet", "total_cycles"), ("resnet", "latency_us")}
    [primary] = [r for r in rows if r["metric"] == "total_cycles"]
    assert primary["data"]["size"]["absolute"] == 600
    search = store.bisection_rows()[primary["id"]]
    assert search["done"], search["culprit"]
    state = search["state"]
    assert state["modules"]["verdict"] == {"kind": "module", "groups": [["opslib"]]}
    # Three modules moved; one probe each named opslib without blaming driver or compiler.
    assert {tuple(e["moved"]): e["verdict"] for e in state["modules"]["evidence"][2:]} == \
        {("driver",): "good", ("opslib",): "bad", ("compiler",): "good"}
    [bisection] = state["bisections"]
    assert bisection["result"]["first_bad"] == culprit and not bisection["result"]["untestable"]
    assert bisection["verdicts"][broken] == "untestable"
    why = next(e["why"] for e in bisection["evidence"] if e["label"] == broken[:12])
    assert "does not build" in why and "opslib" in why
    assert {r["state"] for r in store.regression_rows()} == {"confirmed"}
    assert {tuple(r["teams"]) for r in rows} == {("opslib",)}

    [entry] = [e for e in second.summary["regressions"] if e["id"] == primary["id"]]
    assert entry["modules"] == ["opslib"] and entry["commits"] == [culprit]
    assert entry["teams"] == ["opslib"]
    report = (ws.home / "runs" / str(second.run_id) / "regressions" / "opslib.md").read_text()
    assert culprit[:12] in report and "untestable" in report
    # Every probe was a real build: one per probed vector, none of them run twice.
    assert port.count("build") == len(set(c[1] for c in port.calls if c[0] == "build"))


def test_two_modules_that_regress_only_together_are_an_interaction(stack):
    repo, ws, store, port = stack
    assert nightly(ws, store, port).ok
    files(repo, "compiler", **{"README.txt": "x\n"})
    commit(repo, "compiler: docs")
    files(repo, "compiler", **{"needs.txt": "direct\nwinograd\n"})
    needs = commit(repo, "compiler: prefer winograd")
    note(repo, "between")
    files(repo, "opslib", **{"provides.txt": "direct\n"})
    drops = commit(repo, "opslib: retire winograd")

    nightly(ws, store, port)
    rows = store.regression_rows()
    assert {r["workload"] for r in rows} == {"resnet"}
    [primary] = [r for r in rows if r["metric"] == "total_cycles"]
    state = store.bisection_rows()[primary["id"]]["state"]
    verdict = state["modules"]["verdict"]
    assert verdict["kind"] == "interaction"
    assert sorted(verdict["groups"][0]) == ["compiler", "opslib"]
    assert {b["module"]: b["result"]["first_bad"] for b in state["bisections"]} == \
        {"compiler": needs, "opslib": drops}
    assert sorted(primary["teams"]) == ["compiler", "opslib"]
    [entry] = [e for e in store.run(2).summary["regressions"] if e["id"] == primary["id"]]
    assert entry["culprit"].startswith("only ")
    assert git(repo, "rev-parse", "HEAD") == drops
