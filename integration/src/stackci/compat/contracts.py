"""Declared compatibility: what each module provides and requires, in interface versions.

Each module's `contract.yaml` (versioned with its code) reads:

    module: compiler
    provides: {compiler-api: "1.0"}
    requires: {opslib-api: ">=1.0,<2", runtime-api: ">=1.0,<2"}

Interface versions are not release versions: many releases of a module may provide the same
interface version. `check_declared` is the first level of evidence for a combination (the
ranges agree); verified (contract tests) and measured (workloads) come later in the nightly.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from stackci.documents import load_yaml, one_line
from stackci.errors import UsageError

CONTRACT_FILE = "contract.yaml"


@dataclass(frozen=True)
class Contract:
    module: str
    provides: dict[str, Version]
    requires: dict[str, SpecifierSet]
    path: Path | None = None
    version: str = ""  # the module's release version, when known (for messages)

    @property
    def label(self) -> str:
        return f"{self.module} {self.version}".strip()

    def to_dict(self) -> dict:
        return {
            "module": self.module,
            "version": self.version,
            "provides": {i: str(v) for i, v in self.provides.items()},
            "requires": {i: format_specifier(s) for i, s in self.requires.items()},
        }


# Lower bounds before upper bounds, as people write ranges (packaging sorts them as text).
OPERATOR_ORDER = {op: i for i, op in enumerate(("==", "~=", ">=", ">", "!=", "<=", "<"))}


def format_specifier(spec: SpecifierSet) -> str:
    return ",".join(str(s) for s in sorted(spec, key=lambda s: (OPERATOR_ORDER.get(s.operator, 9),
                                                                  s.version)))


@dataclass
class Verdict:
    ok: bool
    problems: list[str] = field(default_factory=list)
    edges: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "problems": self.problems, "edges": self.edges}


# --- loading ---------------------------------------------------------------------------------

def load_contract(path: str | Path, *, version: str = "", shown: str | None = None
                  ) -> Contract:
    """Read and validate one contract.yaml; any defect is a UsageError naming file and field:
    `shown` (as the user knows the file, e.g. `modules/runtime/contract.yaml @ 1a2b3c4d5e6f`
    for a copy exported from a commit), else its path.

    The module's release version (for messages) is `version`, else the pyproject beside it.
    """
    path = Path(path)
    version = version or _version_beside(path)
    where = Path(shown) if shown else path
    return parse_contract(load_yaml(path, str(where)), where, version=version)


def _version_beside(path: Path) -> str:
    try:
        pyproject = tomllib.loads((path.parent / "pyproject.toml").read_text())
        return str(pyproject["project"]["version"])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return ""


def parse_contract(data, path: Path, *, version: str = "") -> Contract:
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with module, provides, requires")
    unknown = sorted(set(map(str, data)) - {"module", "provides", "requires"})
    unknown = [one_line(name, 60) for name in unknown]
    if unknown:
        raise UsageError(f"{path}: unknown field {unknown[0]!r} "
                         "(expected module, provides, requires)")
    module = data.get("module")
    if not isinstance(module, str) or not module.strip():
        raise UsageError(f"{path}: module: expected the module's name, got {module!r}")
    provides = {name: _parse_version(value, path, f"provides.{name}")
                for name, value in _mapping(data, "provides", path).items()}
    requires = {name: _parse_specifier(value, path, f"requires.{name}")
                for name, value in _mapping(data, "requires", path).items()}
    return Contract(module, provides, requires, path, version)


def _mapping(data: dict, key: str, path: Path) -> dict:
    if key not in data:
        raise UsageError(f"{path}: {key}: missing (write `{key}: {{}}` when there is none)")
    value = data[key]
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{path}: {key}: expected a mapping interface -> version")
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"{path}: {key}: interface name {name!r} is not a non-empty string")
    return value


def _parse_version(value, path: Path, where: str) -> Version:
    # YAML reads an unquoted 1.0 as a float; its text is still the version the author meant.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"{path}: {where}: expected an interface version like \"1.0\", "
                         f"got {value!r}")
    try:
        return Version(str(value))
    except InvalidVersion:
        raise UsageError(f"{path}: {where}: {value!r} is not a PEP 440 version") from None


def _parse_specifier(value, path: Path, where: str) -> SpecifierSet:
    if not isinstance(value, str):
        raise UsageError(f"{path}: {where}: expected a PEP 440 specifier like \">=1.0,<2\", "
                         f"got {value!r}")
    try:
        spec = SpecifierSet(value)
    except InvalidSpecifier:
        raise UsageError(f"{path}: {where}: {value!r} is not a PEP 440 specifier") from None
    if any(s.operator == "===" for s in spec):
        raise UsageError(f"{path}: {where}: {value!r}: arbitrary equality (===) is not an "
                         "interface range")
    if witness(spec) is None:
        raise UsageError(f"{path}: {where}: {value!r} is an empty range: no version satisfies it")
    return spec


# --- empty ranges ----------------------------------------------------------------------------

def witness(spec: SpecifierSet) -> Version | None:
    """A version inside `spec`, or None when the range is empty.

    A specifier set is an intersection of intervals minus points, so if it holds any version
    it holds one at or just above one of its own bounds: those, plus both ends of the line,
    are the candidates.
    """
    candidates = {Version("0"), Version("999999")}
    for item in spec:
        bound = _bound(item)
        candidates |= {bound, _just_above(bound), _just_below(bound)}
    for candidate in sorted(candidates):
        if spec.contains(candidate, prereleases=True):
            return candidate
    return None


def _bound(item: Specifier) -> Version:
    return Version(item.version.removesuffix(".*"))


def _just_above(version: Version) -> Version:
    """A version above `version` and below any version a person would write next to it."""
    return Version(".".join(map(str, (*version.release, 0, 0, 1))))


def _just_below(version: Version) -> Version:
    """A release below `version` when there is one (a final release, not a pre-release,
    since `<V` excludes V's own pre-releases)."""
    release = list(version.release)
    for i in range(len(release) - 1, -1, -1):
        if release[i] > 0:
            release[i] -= 1
            return Version(".".join(map(str, (*release[:i + 1], 999999))))
    return Version("0")


# --- checking --------------------------------------------------------------------------------

def check_declared(contracts: dict[str, Contract]) -> Verdict:
    """Do the declared ranges agree? One edge per (consumer, required interface).

    A requirement nobody provides, an interface provided twice, or a requirement cycle are
    defects of the declarations themselves (UsageError naming file and field), not verdicts.
    """
    providers = _providers(contracts)
    edges, problems = [], []
    for consumer in contracts.values():
        for interface, required in consumer.requires.items():
            provider = providers.get(interface)
            if provider is None:
                raise UsageError(
                    f"{_where(consumer)}: requires.{interface}: no module in the combination "
                    f"provides {interface} (provided: {', '.join(sorted(providers)) or 'none'})")
            provided = provider.provides[interface]
            satisfied = required.contains(provided, prereleases=True)
            edges.append({
                "consumer": consumer.module, "provider": provider.module,
                "interface": interface, "required": format_specifier(required),
                "provided": str(provided),
                "satisfied": satisfied,
            })
            if not satisfied:
                problems.append(explain(consumer, provider, interface))
    _check_cycles(contracts, providers)
    return Verdict(ok=not problems, problems=problems, edges=edges)


def explain(consumer: Contract, provider: Contract, interface: str) -> str:
    """The chain behind one disagreement, and what to do about it."""
    required = consumer.requires[interface]
    provided = provider.provides[interface]
    too_new = any(s.operator in ("<", "<=") and not s.contains(provided, prereleases=True)
                  for s in required)
    if too_new:
        advice = (f"pin {provider.module} to an older release providing a matching version "
                  f"or pin {consumer.module} to a newer release")
    else:
        advice = (f"pin {provider.module} to a release providing a matching version "
                  f"or pin {consumer.module} to an older release")
    return (f"{consumer.label} requires {interface} {format_specifier(required)}; "
            f"{provider.label} provides {interface} {provided}; {advice}")


def _providers(contracts: dict[str, Contract]) -> dict[str, Contract]:
    providers: dict[str, Contract] = {}
    for contract in contracts.values():
        for interface in contract.provides:
            other = providers.get(interface)
            if other is not None:
                raise UsageError(f"{_where(contract)}: provides.{interface}: also provided by "
                                 f"{other.module} ({_where(other)}); one provider per interface")
            providers[interface] = contract
    return providers


def _check_cycles(contracts: dict[str, Contract], providers: dict[str, Contract]) -> None:
    """Requirements must point one way (driver <- runtime <- ...): a cycle is a defect."""
    needs = {c.module: [(i, providers[i].module) for i in c.requires] for c in contracts.values()}
    by_module = {c.module: c for c in contracts.values()}
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in done:
            return
        stack = [*stack, module]
        for interface, provider in needs[module]:
            if provider in stack:
                cycle = " -> ".join([*stack[stack.index(provider):], provider])
                raise UsageError(f"{_where(by_module[module])}: requires.{interface}: "
                                 f"requirement cycle {cycle}")
            visit(provider, stack)
        done.add(module)

    for module in needs:
        visit(module, [])


def _where(contract: Contract) -> str:
    return str(contract.path) if contract.path else f"contract of {contract.module}"


def shown_path(module: str, commit: str | None) -> str:
    """A module's contract.yaml as the user knows it: its path in the repository at the
    commit it was exported from (not the cache copy the harness reads)."""
    where = f"modules/{module}/{CONTRACT_FILE}"
    if not commit:
        return where
    return f"{where} (working tree)" if commit == "worktree" else f"{where} @ {commit[:12]}"


def load_contracts(sources: dict[str, Path], versions: dict[str, str] | None = None,
                   commits: dict[str, str] | None = None) -> dict[str, Contract]:
    """The contracts of a combination, read from each module's exported source tree (named
    in errors by the module's path at `commits[module]`)."""
    contracts = {}
    for module, root in sources.items():
        contract = load_contract(root / CONTRACT_FILE, version=(versions or {}).get(module, ""),
                                 shown=shown_path(module, (commits or {}).get(module))
                                 if commits else None)
        if contract.module != module:
            raise UsageError(f"{contract.path}: module: says {contract.module!r} "
                             f"but the file belongs to module {module!r}")
        contracts[module] = contract
    return contracts


# --- what a job needs ------------------------------------------------------------------------

def provided_interfaces(contracts: dict[str, Contract]) -> dict[str, str]:
    """interface -> version provided by the modules whose contracts these are."""
    provided = {}
    for contract in contracts.values():
        provided.update({name: str(version) for name, version in contract.provides.items()})
    return provided


def unmet_requirements(requires, provided: dict[str, str]) -> list[str]:
    """Which of `requires` ((interface, PEP 440 specifier) pairs) a combination providing
    `provided` (interface -> version) lacks, one line each."""
    unmet = []
    for interface, specifier in requires:
        version = provided.get(interface)
        if version is None or Version(version) not in SpecifierSet(specifier):
            have = f"provides {version}" if version else "does not provide it"
            unmet.append(f"needs {interface} {specifier}; the combination {have}")
    return unmet
