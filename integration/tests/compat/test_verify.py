"""Compatibility across versions: the window, pair environments, consumer tests as of a version,
verification with real (tiny) builds, the matrix, can-i-deploy and the nightly's plan."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from fakestack import commit, contract_text, git, make_stack, release, workspace, write_module
from fakes import FakePort
from stackci import cli
from stackci.sources.releases import missing_history
from stackci.sources.resolve import load_manifest
from stackci.compat.catalog import Catalog, Edge, consumer_tests, explain_chain, pair_environment
from stackci.errors import UsageError
from stackci.results.matrix import build_matrix
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.compat.coverage import compatible_pairs, cover, pairs_of
from stackci.results.store import Store
from stackci.compat.verify import Verifier, window_pairs

RUNTIME_ON_DRIVER = Edge("runtime", "driver-api", "driver")
# What a fake runtime expects of the fake driver: 1.x has `read`, 2.x replaced it by `view`.
TESTS_V1 = "import npu_driver\n\ndef test_read():\n    assert npu_driver.read() == 1\n"
TESTS_V2 = "import npu_driver\n\ndef test_view():\n    assert npu_driver.view() == 2\n"


def set_driver_api(repo: Path, version: str, provides: str, function: str, **options) -> None:
    write_module(repo, "driver", version, contract=contract_text("driver", provides), **options)
    source = repo / "modules" / "driver" / "src" / "npu_driver" / "__init__.py"
    source.write_text(source.read_text() + f"\ndef {function}():\n    return {provides[0]}\n")


def consumer_test(repo: Path, text: str) -> None:
    path = repo / "contracts" / "consumers" / "runtime" / "test_driver_api.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def history(tmp_path: Path, **driver_options) -> tuple[Path, object]:
    """driver 1.0.0 (driver-api 1.0) then 2.0.0 (2.0, breaking); runtime 1.0.0 requires <2,
    runtime 1.1.0 requires >=2; every other module released once."""
    repo = make_stack(tmp_path)
    set_driver_api(repo, "1.0.0", "1.0", "read", **driver_options)
    for module in ("runtime", "opslib", "compiler", "serving"):
        write_module(repo, module, "1.0.0")
    commit(repo, "first releases")
    consumer_test(repo, TESTS_V1)
    commit(repo, "runtime's contract tests")
    set_driver_api(repo, "2.0.0", "2.0", "view", **driver_options)
    write_module(repo, "opslib", "1.0.1", contract=contract_text(
        "opslib", requires={"runtime-api": ">=1.0,<2", "driver-api": ">=1.0,<3"}))
    commit(repo, "driver 2.0.0, opslib 1.0.1")
    write_module(repo, "runtime", "1.1.0",
                 contract=contract_text("runtime", requires={"driver-api": ">=2.0,<3"}))
    consumer_test(repo, TESTS_V2)
    commit(repo, "runtime 1.1.0")
    return repo, workspace(repo, tmp_path / "home")


@pytest.fixture
def stack(tmp_path):
    return history(tmp_path)


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield store
    store.close()


def labels(catalog, module):
    return [c.label for c in catalog.in_window[module]]


# --- the window and pair environments --------------------------------------------------------

def test_window_holds_the_last_releases_and_master(stack):
    repo, ws = stack
    catalog = Catalog(ws, window=3)
    assert labels(catalog, "driver") == ["1.0.0", "2.0.0 (master)"]
    assert labels(catalog, "runtime") == ["1.0.0", "1.1.0 (master)"]
    assert labels(Catalog(ws, window=1), "driver") == ["2.0.0 (master)"]
    write_module(repo, "driver", "2.1.0.dev0", contract=contract_text("driver", "2.0"))
    commit(repo, "driver work")
    assert labels(Catalog(ws, window=1), "driver") == ["2.0.0", "master 2.1.0.dev0"]
    assert RUNTIME_ON_DRIVER in Catalog(ws).edges
    with pytest.raises(UsageError, match="--window 0"):
        Catalog(ws, window=0)


def test_pair_environment_takes_the_newest_consistent_dependencies(stack):
    repo, ws = stack
    catalog = Catalog(ws)
    versions = {c.mv.version: c for c in catalog.all["opslib"]}
    old = pair_environment(catalog, versions["1.0.0"])  # requires driver-api <2
    assert {m: mv.version for m, mv in old.modules.items()} == {
        "driver": "1.0.0", "runtime": "1.0.0", "opslib": "1.0.0"}
    new = pair_environment(catalog, versions["1.0.1"])
    assert {m: mv.version for m, mv in new.modules.items()} == {
        "driver": "2.0.0", "runtime": "1.1.0", "opslib": "1.0.1"}


def test_consumer_tests_are_taken_as_of_the_consumer_version(stack):
    repo, ws = stack
    catalog = Catalog(ws)
    old, new = catalog.all["runtime"]
    # runtime 1.0.0 had no tests at its release commit: they were written before it changed.
    assert consumer_tests(ws, old.mv, RUNTIME_ON_DRIVER).text == TESTS_V1
    assert consumer_tests(ws, new.mv, RUNTIME_ON_DRIVER).text == TESTS_V2
    assert consumer_tests(ws, old.mv, Edge("runtime", "other-api", "driver")) is None


def test_the_refusal_chain_names_the_releases_that_would_do(stack):
    repo, ws = stack
    catalog = Catalog(ws)
    runtime_1, _ = catalog.all["runtime"]
    _, driver_2 = catalog.all["driver"]
    assert explain_chain(catalog, runtime_1.contract, driver_2.contract, "driver-api") == (
        "runtime 1.0.0 requires driver-api >=1.0,<2; driver 2.0.0 provides driver-api 2.0; "
        "releases of driver providing a matching driver-api: 1.0.0; "
        "or pin runtime to 1.1.0 (requires driver-api >=2.0,<3)")


def test_contracts_check_prints_the_chain(stack, monkeypatch, capsys):
    repo, ws = stack
    monkeypatch.chdir(repo)
    code = cli.main(["contracts", "check", "-c", "release:latest", "--pin", "runtime=1.0.0",
                     "--home", str(ws.home)])
    out = capsys.readouterr().out
    assert code == 1 and "releases of driver providing a matching driver-api: 1.0.0" in out


# --- verification with real builds ----------------------------------------------------------

def test_verify_finds_the_break_and_reuses_verdicts(tmp_path, store):
    repo, ws = history(tmp_path, third_party=("pytest",))
    catalog = Catalog(ws)
    pairs = [p for p in window_pairs(catalog) if p.edge == RUNTIME_ON_DRIVER]
    verdicts = {(v["consumer_version"], v["provider_version"]): v
                for v in Verifier(ws, store, catalog).run(pairs)}
    assert {k: (v["declared"], v["status"]) for k, v in verdicts.items()} == {
        ("1.0.0", "1.0.0"): (True, "passed"), ("1.0.0", "2.0.0"): (False, "failed"),
        ("1.1.0", "1.0.0"): (False, "failed"), ("1.1.0", "2.0.0"): (True, "passed")}
    assert "test_read" in verdicts[("1.0.0", "2.0.0")]["message"]
    again = Verifier(ws, store, Catalog(ws)).run(pairs)
    assert all(v["cached_from"] == verdicts[(v["consumer_version"], v["provider_version"])]["id"]
               for v in again)
    assert Verifier(ws, store, Catalog(ws)).batch == 3


def test_a_provider_that_does_not_build_is_a_pair_error(tmp_path, store):
    repo, ws = history(tmp_path, third_party=("pytest",))
    write_module(repo, "driver", "2.0.1", contract=contract_text("driver", "2.0"), broken=True)
    commit(repo, "driver 2.0.1, unbuildable")
    catalog = Catalog(ws)
    pairs = [p for p in window_pairs(catalog)
             if p.edge == RUNTIME_ON_DRIVER and p.provider.mv.version == "2.0.1"]
    [verdict] = [v for v in Verifier(ws, store, catalog).run(pairs)
                 if v["consumer_version"] == "1.1.0"]
    assert verdict["status"] == "error" and "build of driver failed" in verdict["message"]


# --- the matrix -----------------------------------------------------------------------------

def verdict_row(consumer_version, provider_version, declared, status, **extra):
    return {"batch": 1, "consumer": "runtime", "provider": "driver", "interface": "driver-api",
            "consumer_label": consumer_version, "provider_label": provider_version,
            "consumer_tree": f"rt-{consumer_version}", "provider_tree": f"dr-{provider_version}",
            "declared": declared, "status": status, "message": "m", **extra}


def test_matrix_lists_disagreements_first_and_measured_cells():
    rows = [verdict_row("1.0.0", "1.0.0", True, "passed"),
            verdict_row("1.0.0", "2.0.0", True, "failed"),
            verdict_row("1.1.0", "1.0.0", False, "passed"),
            verdict_row("1.1.0", "2.0.0", False, "failed")]
    measured = [{"run_id": 1, "combination_id": 1,
                 "trees": {"runtime": "rt-1.0.0", "driver": "dr-1.0.0"}}]
    result = build_matrix(rows, measured)
    assert [(c["consumer_version"], c["provider_version"]) for c in result["disagreements"]] == \
        [("1.0.0", "2.0.0"), ("1.1.0", "1.0.0")]
    [edge] = result["edges"]
    assert edge["consumers"] == ["1.0.0", "1.1.0"] and edge["providers"] == ["1.0.0", "2.0.0"]
    assert [c["measured"] for c in edge["cells"]] == [True, False, False, False]


def test_matrix_command_needs_verdicts(stack, monkeypatch, capsys):
    repo, ws = stack
    monkeypatch.chdir(repo)
    assert cli.main(["contracts", "matrix", "--home", str(ws.home)]) == 2
    assert "run `stackci contracts verify` first" in capsys.readouterr().err
    assert cli.main(["contracts", "verify", "--window", "0", "--home", str(ws.home)]) == 2


# --- can-i-deploy ---------------------------------------------------------------------------

def test_can_i_deploy_answers_with_evidence_per_edge(stack, monkeypatch, capsys):
    repo, ws = stack
    monkeypatch.chdir(repo)
    db = Store(ws.db_url)
    catalog = Catalog(ws)
    runtime_new, driver_new = catalog.all["runtime"][-1], catalog.all["driver"][-1]
    db.add_verdict(**{**verdict_row("1.1.0", "2.0.0", True, "passed"),
                      "consumer_version": "1.1.0", "consumer_commit": "c",
                      "consumer_tree": runtime_new.mv.tree_hash, "provider_version": "2.0.0",
                      "provider_commit": "c", "provider_tree": driver_new.mv.tree_hash})
    code = cli.main(["can-i-deploy", "--no-verify", "--json", "--home", str(ws.home)])
    answer = json.loads(capsys.readouterr().out)
    edges = {e["edge"]: e for e in answer["edges"]}
    assert code == 1 and answer["deploy"] is False  # other edges have no verdict yet
    assert edges["runtime -> driver (driver-api)"]["verified"] == "passed"
    assert edges["opslib -> runtime (runtime-api)"]["verified"] == "not verified"
    code = cli.main(["can-i-deploy", "--no-verify", "--json", "--pin", "runtime=1.0.0",
                     "--home", str(ws.home)])
    edge = {e["edge"]: e for e in json.loads(capsys.readouterr().out)["edges"]}[
        "runtime -> driver (driver-api)"]
    assert code == 1 and edge["declared"] is False and "pin runtime to 1.1.0" in edge["evidence"]
    assert cli.main(["can-i-deploy", "--pin", "runtime=9.9.9", "--home", str(ws.home)]) == 2


# --- the nightly's plan ---------------------------------------------------------------------

def test_pairwise_cover_picks_few_consistent_combinations(stack):
    repo, ws = stack
    catalog = Catalog(ws)
    everything_passes = lambda interface, consumer, provider: {"status": "passed"}  # noqa: E731
    wanted = compatible_pairs(catalog, everything_passes)
    # Declared-refused pairs are never wanted: runtime 1.0.0 x driver 2.0.0 is not there.
    runtime_1 = catalog.all["runtime"][0].mv.tree_hash
    driver_2 = catalog.all["driver"][-1].mv.tree_hash
    assert ("driver-api", runtime_1, driver_2) not in wanted
    chosen = cover(catalog, wanted, [])
    covered = set().union(*(pairs_of(catalog, v) for v in chosen))
    # opslib 1.0.0 (driver-api <2) on runtime 1.1.0 (driver-api >=2) passes its tests alone
    # but fits in no consistent combination: the one pair a night cannot hold.
    opslib_1 = catalog.all["opslib"][0].mv.tree_hash
    runtime_11 = catalog.all["runtime"][-1].mv.tree_hash
    assert wanted - covered == {("runtime-api", opslib_1, runtime_11)}
    assert all(pairs_of(catalog, v) is not None for v in chosen)
    assert len(chosen) <= 3


def test_nightly_default_plan_runs_every_combination_and_records_locks(tmp_path, store):
    port = FakePort(tmp_path, workloads=("resnet",))
    combos = [port.combination("master", "0.2.0"), port.combination("release:latest", "0.1.0")]
    port.broken.add(combos[1].key)  # a module that does not build at an old commit
    ws = workspace(tmp_path / "repo", tmp_path / "home")
    result = Nightly(ws, store, port=port, suite=port.suite_path()).start(
        NightlyOptions(tier="smoke", no_tests=True, default_plan=True), combos)
    jobs = {job.key: job for job in store.jobs(result.run_id)}
    assert jobs[f"build@{combos[1].key[:12]}"].status == "error"
    assert jobs[f"workloads:resnet:edge@{combos[0].key[:12]}"].status == "passed"
    assert jobs[f"workloads:resnet:edge@{combos[1].key[:12]}"].status == "not_run"
    master_id = jobs[f"build@{combos[0].key[:12]}"].combination_id
    assert store.locks(master_id)[0]["lock"]["modules"]["driver"]["version"] == "0.2.0"
    assert [c["name"] for c in store.run(result.run_id).plan["combinations"]] == \
        ["master", "release:latest"]
    assert store.measured_vectors()[0]["combination_id"] == master_id


# --- history and bad input ------------------------------------------------------------------

def test_versions_on_a_shallow_clone_says_history_is_missing(stack, tmp_path, monkeypatch,
                                                             capsys):
    repo, ws = stack
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", repo.as_uri(), str(clone)],
                   check=True)
    (clone / "integration").mkdir(exist_ok=True)
    monkeypatch.chdir(clone)
    assert cli.main(["versions", "--json", "--home", str(tmp_path / "h2")]) == 0
    table = json.loads(capsys.readouterr().out)
    assert "shallow clone" in table["history_missing"]
    assert [r["version"] for r in table["modules"]["driver"]["releases"]] == ["2.0.0"]
    assert missing_history(ws) is None


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_any_manifest_text_loads_or_is_a_usage_error(tmp_path_factory, text):
    root = tmp_path_factory.mktemp("manifest")
    (root / "contracts" / "releases").mkdir(parents=True)
    (root / "contracts" / "releases" / "x.yaml").write_text(text)
    try:
        modules = load_manifest(workspace(root, root / "home"), "x")
    except UsageError as exc:
        assert "x.yaml" in str(exc)
    else:
        assert set(modules) == {"driver", "runtime", "opslib", "compiler", "serving"}
        assert yaml.safe_load(text)
