"""Declared contracts: loading contract.yaml, checking a combination's ranges, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from fakestack import commit, contract_text, make_stack, release, workspace, write_module
from stackci import cli
from stackci.compat.contracts import (Contract, check_declared, load_contract, load_contracts,
                               parse_contract, witness)
from stackci.errors import UsageError
from stackci.workspace import MODULES


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "contract.yaml"
    path.write_text(text)
    return path


def contract(module, provides=None, requires=None, version="1.0.0") -> Contract:
    return Contract(module, {i: Version(v) for i, v in (provides or {}).items()},
                    {i: SpecifierSet(s) for i, s in (requires or {}).items()},
                    Path(f"modules/{module}/contract.yaml"), version)


def chain(**overrides) -> dict[str, Contract]:
    """driver <- runtime <- compiler, every range satisfied unless overridden."""
    contracts = {
        "driver": contract("driver", {"driver-api": "1.0"}),
        "runtime": contract("runtime", {"runtime-api": "1.2"}, {"driver-api": ">=1.0,<2"}),
        "compiler": contract("compiler", {"compiler-api": "1.0"},
                             {"runtime-api": ">=1.1,<2", "driver-api": ">=1.0"}),
    }
    contracts.update(overrides)
    return contracts


# --- loading ---------------------------------------------------------------------------------

def test_load_contract_reads_versions_and_ranges(tmp_path):
    path = write(tmp_path, "module: opslib\nprovides:\n  opslib-api: 1.0\n"
                           "requires:\n  runtime-api: '>=1.0,<2'\n  driver-api: '~=1.1'\n")
    loaded = load_contract(path)
    assert loaded.module == "opslib"
    assert loaded.provides == {"opslib-api": Version("1.0")}  # unquoted 1.0 read as text
    assert loaded.requires == {"runtime-api": SpecifierSet(">=1.0,<2"),
                               "driver-api": SpecifierSet("~=1.1")}
    assert loaded.path == path and loaded.version == ""


def test_version_comes_from_the_pyproject_beside_it(tmp_path):
    repo = make_stack(tmp_path, git_init=False)
    assert load_contract(repo / "modules" / "runtime" / "contract.yaml").label == \
        "runtime 0.1.0.dev0"


@pytest.mark.parametrize("text, message", [
    ("module: [unclosed", "not valid YAML"),
    ("- a list", "expected a mapping with module, provides, requires"),
    ("provides: {}\nrequires: {}\n", "module: expected the module's name"),
    ("module: x\nrequires: {}\n", r"provides: missing"),
    ("module: x\nprovides: {}\n", r"requires: missing"),
    ("module: x\nprovides: [a]\nrequires: {}\n", "provides: expected a mapping"),
    ("module: x\nprovides: {a-api: one}\nrequires: {}\n", "provides.a-api: 'one' is not a PEP 440"),
    ("module: x\nprovides: {a-api: [1]}\nrequires: {}\n", "provides.a-api: expected an interface"),
    ("module: x\nprovides: {}\nrequires: {a-api: '>>1'}\n",
     "requires.a-api: '>>1' is not a PEP 440"),
    ("module: x\nprovides: {}\nrequires: {a-api: 2}\n", "requires.a-api: expected a PEP 440 spec"),
    ("module: x\nprovides: {}\nrequires: {a-api: '>=3,<2'}\n",
     "requires.a-api: '>=3,<2' is an empty"),
    ("module: x\nprovides: {}\nrequires: {a-api: '==1.0,!=1.0'}\n", "is an empty range"),
    ("module: x\nprovides: {}\nrequires: {a-api: '===foo'}\n", "arbitrary equality"),
    ("module: x\nprovides: {}\nrequires: {}\nextra: 1\n", "unknown field 'extra'"),
])
def test_defects_name_file_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UsageError, match=message) as caught:
        load_contract(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="contract.yaml: not found"):
        load_contract(tmp_path / "contract.yaml")


def test_contract_of_the_wrong_module(tmp_path):
    repo = make_stack(tmp_path, git_init=False)
    sources = {m: repo / "modules" / m for m in MODULES}
    (sources["opslib"] / "contract.yaml").write_text(contract_text("compiler"))
    with pytest.raises(UsageError,
                       match="module: says 'compiler' but the file belongs to module 'opslib'"):
        load_contracts(sources)


# --- checking --------------------------------------------------------------------------------

def test_agreeing_ranges_give_edges():
    verdict = check_declared(chain())
    assert verdict.ok and verdict.problems == []
    assert {(e["consumer"], e["provider"], e["interface"]) for e in verdict.edges} == {
        ("runtime", "driver", "driver-api"), ("compiler", "runtime", "runtime-api"),
        ("compiler", "driver", "driver-api")}
    edge = next(e for e in verdict.edges if e["consumer"] == "runtime")
    assert edge == {"consumer": "runtime", "provider": "driver", "interface": "driver-api",
                    "required": ">=1.0,<2", "provided": "1.0", "satisfied": True}


def test_a_broken_edge_explains_the_chain():
    too_old = contract("runtime", {"runtime-api": "1.0"}, {"driver-api": ">=1.0,<2"})
    verdict = check_declared(chain(runtime=too_old))
    assert not verdict.ok
    assert verdict.problems == [
        "compiler 1.0.0 requires runtime-api >=1.1,<2; runtime 1.0.0 provides runtime-api 1.0; "
        "pin runtime to a release providing a matching version or pin compiler to an older release"]
    assert [e["satisfied"] for e in verdict.edges].count(False) == 1


def test_a_provider_too_new_suggests_the_other_direction():
    too_new = contract("driver", {"driver-api": "2.0"}, version="2.0.0")
    verdict = check_declared(chain(driver=too_new))
    assert verdict.problems == [
        "runtime 1.0.0 requires driver-api >=1.0,<2; driver 2.0.0 provides driver-api 2.0; "
        "pin driver to an older release providing a matching version "
        "or pin runtime to a newer release"]


def test_an_interface_nobody_provides():
    lost = contract("compiler", {"compiler-api": "1.0"}, {"runtime-api": ">=1", "gpu-api": ">=1"})
    with pytest.raises(UsageError, match="compiler/contract.yaml: requires.gpu-api: no module .* "
                                         "provides gpu-api"):
        check_declared(chain(compiler=lost))


def test_an_interface_provided_twice():
    twice = contract("runtime", {"runtime-api": "1.2", "driver-api": "1.0"}, {})
    with pytest.raises(UsageError, match="provides.driver-api: also provided by"):
        check_declared(chain(runtime=twice))


def test_a_requirement_cycle():
    backwards = contract("driver", {"driver-api": "1.0"}, {"compiler-api": ">=1"})
    with pytest.raises(UsageError, match="requirement cycle (driver|runtime|compiler) -> .* -> "):
        check_declared(chain(driver=backwards))


def test_a_module_requiring_itself():
    selfish = contract("driver", {"driver-api": "1.0"}, {"driver-api": ">=1"})
    with pytest.raises(UsageError, match="requirement cycle driver -> driver"):
        check_declared(chain(driver=selfish))


# --- the command -----------------------------------------------------------------------------

def test_contracts_check_command(tmp_path, monkeypatch, capsys):
    repo = make_stack(tmp_path)
    ws = workspace(repo, tmp_path / "home")
    monkeypatch.chdir(repo)
    assert cli.main(["contracts", "check", "--home", str(ws.home)]) == 0
    assert "declared contracts agree" in capsys.readouterr().out

    release(repo, "opslib", "1.0.0")
    write_module(repo, "compiler", "2.0.0.dev0",
                 contract=contract_text("compiler", requires={"opslib-api": ">=2,<3",
                                                              "runtime-api": ">=1.0,<2"}))
    commit(repo, "compiler wants opslib-api 2")
    assert cli.main(["contracts", "check", "--json", "--home", str(ws.home)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["problems"] == [
        "compiler 2.0.0.dev0 requires opslib-api >=2,<3; opslib 1.0.0 provides opslib-api 1.0; "
        "pin opslib to a release providing a matching version or pin compiler to an older release"]
    assert report["combination"]["modules"]["compiler"]["version"] == "2.0.0.dev0"

    assert cli.main(["contracts", "check", "--pin", "compiler=worktree", "--pin", "opslib=bad pin",
                     "--home", str(ws.home)]) == 2
    assert "stackci: error: malformed pin 'opslib=bad pin'" in capsys.readouterr().err


# --- properties ------------------------------------------------------------------------------

interface_names = st.from_regex(r"[a-z][a-z0-9-]{0,12}-api", fullmatch=True)
versions = st.builds(lambda *p: ".".join(map(str, p)), st.integers(0, 20), st.integers(0, 20))
operators = st.sampled_from([">=", ">", "<", "<=", "==", "!=", "~="])
specifiers = st.lists(st.builds(lambda op, v: f"{op}{v}", operators, versions),
                      min_size=1, max_size=3).map(",".join)


@given(module=st.from_regex(r"[a-z]{1,10}", fullmatch=True),
       provides=st.dictionaries(interface_names, versions, max_size=3),
       requires=st.dictionaries(interface_names, specifiers, max_size=3))
@settings(max_examples=60, deadline=None)
def test_loader_round_trips_or_rejects_empty_ranges(tmp_path_factory, module, provides, requires):
    path = tmp_path_factory.mktemp("c") / "contract.yaml"
    path.write_text(yaml.safe_dump({"module": module, "provides": provides, "requires": requires}))
    if any(witness(SpecifierSet(s)) is None for s in requires.values()):
        with pytest.raises(UsageError, match="is an empty range"):
            load_contract(path)
        return
    loaded = load_contract(path)
    assert loaded.module == module
    assert loaded.provides == {i: Version(v) for i, v in provides.items()}
    assert loaded.requires == {i: SpecifierSet(s) for i, s in requires.items()}


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=8)


@given(data=st.dictionaries(st.sampled_from(["module", "provides", "requires", "x"]), yaml_values))
@settings(max_examples=150, deadline=None)
def test_any_document_loads_or_is_a_usage_error(data):
    try:
        loaded = parse_contract(data, Path("c.yaml"))
    except UsageError as exc:
        assert str(exc).startswith("c.yaml: ")
    else:
        assert isinstance(loaded.module, str) and loaded.module


# Brute force over a grid fine enough to hold a point of every non-empty range of grid bounds.
GRID = [Version(f"{a}.{b}{tail}") for a in range(22) for b in range(22)
        for tail in ("", ".0.0.1", ".999999")] + [Version("0"), Version("999999")]


@given(specifiers)
@settings(max_examples=200, deadline=None)
def test_witness_finds_a_version_exactly_when_one_exists(text):
    spec = SpecifierSet(text)
    found = witness(spec)
    if found is not None:
        assert spec.contains(found, prereleases=True)
    else:
        assert not any(spec.contains(v, prereleases=True) for v in GRID)
