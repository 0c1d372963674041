"""Compatibility across versions: the support window, contract edges, and pair environments.

The support window of a module is its last N releases plus master (when master's tree differs
from every listed release). A *contract edge* is (consumer, interface, provider): one line of a
consumer's contract.yaml. A *pair* is one consumer version and one provider version on an edge.

Pair environments hold the provider and what the provider needs. Rule for the provider's own
module dependencies: the newest versions that are declared-compatible with it and with each
other, as a resolver would pick them if contract.yaml were package metadata. Candidates are
every release of the dependency (not only the window) plus master; a master provider prefers
master dependencies first (master is tested as a whole), a released provider prefers releases
(a release must work with released dependencies). No consistent choice is a pair *error*.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from packaging.version import Version

from stackci import git
from stackci.compat.contracts import (CONTRACT_FILE, Contract, explain, format_specifier,
                                      parse_contract, shown_path)
from stackci.documents import decode, parse_yaml, read_text
from stackci.errors import UsageError
from stackci.sources import modules as comb
from stackci.sources import releases as rel
from stackci.sources.combination import WORKTREE, Combination, ModuleVersion
from stackci.workspace import MODULES, Workspace

DEFAULT_WINDOW = 3
CONSUMER_TESTS_DIR = "contracts/consumers"


@dataclass(frozen=True)
class Candidate:
    """One version of a module with its declared contract; `label` is how tables name it."""

    mv: ModuleVersion
    contract: Contract
    label: str
    is_master: bool = False

    @property
    def module(self) -> str:
        return self.mv.module

    @property
    def is_release(self) -> bool:
        return not self.label.startswith("master")


@dataclass(frozen=True)
class Edge:
    consumer: str
    interface: str
    provider: str

    @property
    def name(self) -> str:
        return f"{self.consumer} -> {self.provider} ({self.interface})"

    @property
    def tests_file(self) -> str:
        return f"test_{self.interface.replace('-', '_')}.py"


# --- reading contracts at any version ---------------------------------------------------------

def contract_of(ws: Workspace, mv: ModuleVersion) -> Contract:
    """The module's contract.yaml as it is at mv's commit (or on disk for the worktree)."""
    where = Path(shown_path(mv.module, mv.commit))
    if mv.commit == WORKTREE:
        text = read_text(ws.repo / "modules" / mv.module / CONTRACT_FILE, str(where))
    else:
        text = _git_show(ws, mv.commit, f"{comb.module_path(ws, mv.module)}/{CONTRACT_FILE}")
        if text is None:
            raise UsageError(f"{where}: missing")
    return parse_contract(parse_yaml(decode(text, str(where)), str(where)), where,
                          version=mv.version)


def _git_show(ws: Workspace, commit: str, path: str) -> str | None:
    return git.git_maybe(ws.repo, "show", f"{commit}:{path}")


# --- the window ---------------------------------------------------------------------------

class Catalog:
    """Every module's candidates: all releases (for dependency resolution) and the window."""

    def __init__(self, ws: Workspace, window: int = DEFAULT_WINDOW):
        if window < 1:
            raise UsageError(f"--window {window}: expected 1 or more releases")
        self.ws, self.window = ws, window

    @cached_property
    def all(self) -> dict[str, list[Candidate]]:
        """module -> every release (oldest first) then master when its tree is new."""
        found = {}
        for module in MODULES:
            master = comb.module_at_master(self.ws, module)
            releases = rel.releases(self.ws, module)
            listed = []
            for mv in releases:
                same = mv.tree_hash == master.tree_hash
                listed.append(Candidate(mv, contract_of(self.ws, mv),
                                        f"{mv.version} (master)" if same else mv.version, same))
            if not any(c.is_master for c in listed):
                listed.append(Candidate(master, contract_of(self.ws, master),
                                        f"master {master.version}", True))
            found[module] = listed
        return found

    @cached_property
    def in_window(self) -> dict[str, list[Candidate]]:
        """module -> the last `window` releases plus master."""
        found = {}
        for module, listed in self.all.items():
            releases = [c for c in listed if c.is_release]
            chosen = releases[-self.window:]
            master = next(c for c in listed if c.is_master)
            found[module] = chosen if master in chosen else [*chosen, master]
        return found

    @cached_property
    def providers(self) -> dict[str, str]:
        """interface -> the module providing it (in any version)."""
        found: dict[str, str] = {}
        for module, listed in self.all.items():
            for candidate in listed:
                for interface in candidate.contract.provides:
                    found.setdefault(interface, module)
        return found

    @cached_property
    def edges(self) -> list[Edge]:
        """Every (consumer, interface, provider) some version in the window declares."""
        found = []
        for module in MODULES:
            for candidate in self.in_window[module]:
                for interface in candidate.contract.requires:
                    provider = self.providers.get(interface)
                    if provider is None:
                        raise UsageError(f"{candidate.contract.path}: requires.{interface}: no "
                                         f"version of any module provides {interface}")
                    edge = Edge(module, interface, provider)
                    if edge not in found:
                        found.append(edge)
        return found

    def candidate(self, mv: ModuleVersion) -> Candidate:
        for candidate in self.all[mv.module]:
            if candidate.mv.tree_hash == mv.tree_hash:
                return candidate
        return Candidate(mv, contract_of(self.ws, mv), mv.version)

    def releases_providing(self, interface: str, required) -> list[Candidate]:
        return [c for c in self.all[self.providers[interface]]
                if c.is_release and interface in c.contract.provides
                and required.contains(c.contract.provides[interface], prereleases=True)]


# --- declared ---------------------------------------------------------------------------

def declared_ok(consumer: Contract, provider: Contract, interface: str) -> bool | None:
    """None when the consumer does not require the interface or the provider does not offer it."""
    required, provided = consumer.requires.get(interface), provider.provides.get(interface)
    if required is None or provided is None:
        return None
    return required.contains(provided, prereleases=True)


def explain_chain(catalog: Catalog, consumer: Contract, provider: Contract, interface: str) -> str:
    """Why a pair is refused and which releases would do, like a resolver's error (the plain
    explanation when no release of either side would)."""
    required, provided = consumer.requires[interface], provider.provides[interface]
    matching = [c.mv.version for c in catalog.releases_providing(interface, required)]
    fixes = [c.mv.version for c in catalog.all[consumer.module]
             if c.is_release and declared_ok(c.contract, provider, interface)]
    if not matching and not fixes:
        return explain(consumer, provider, interface)
    offer = (f"releases of {provider.module} providing a matching {interface}: "
             f"{', '.join(matching)}" if matching else
             f"no release of {provider.module} provides a matching {interface}")
    alternative = (f"or pin {consumer.module} to {' or '.join(fixes)} (requires {interface} "
                   f"{_required_text(catalog, consumer.module, fixes[-1], interface)})"
                   if fixes else f"no release of {consumer.module} accepts {interface} {provided}")
    return (f"{consumer.label} requires {interface} {format_specifier(required)}; "
            f"{provider.label} provides {interface} {provided}; {offer}; {alternative}")


def _required_text(catalog: Catalog, module: str, version: str, interface: str) -> str:
    for candidate in catalog.all[module]:
        if candidate.mv.version == version:
            return format_specifier(candidate.contract.requires[interface])
    return "?"


# --- pair environments ------------------------------------------------------------------

def dependencies(catalog: Catalog, module: str) -> list[str]:
    """Modules `module` needs, transitively, through the interfaces any version requires."""
    needed: list[str] = []
    todo = [module]
    while todo:
        current = todo.pop()
        for candidate in catalog.all[current]:
            for interface in candidate.contract.requires:
                provider = catalog.providers.get(interface)
                if provider and provider != module and provider not in needed:
                    needed.append(provider)
                    todo.append(provider)
    return [m for m in MODULES if m in needed]


def pair_environment(catalog: Catalog, provider: Candidate) -> Combination:
    """The provider plus its dependencies (see the module docstring for the rule)."""
    deps = dependencies(catalog, provider.module)
    choices = [_preference(catalog.all[m], provider.is_master) for m in deps]
    for chosen in itertools.product(*choices):
        members = {provider.module: provider, **{c.module: c for c in chosen}}
        if _consistent(members):
            modules = {m: members[m].mv for m in MODULES if m in members}
            return Combination(f"pair:{provider.module}={provider.mv.version}", modules)
    raise UsageError(f"no versions of {', '.join(deps)} satisfy {provider.contract.label}'s "
                     "requirements together (see stackci contracts check)")


def _preference(listed: list[Candidate], master_first: bool) -> list[Candidate]:
    releases = sorted((c for c in listed if c.is_release),
                      key=lambda c: Version(c.mv.version), reverse=True)
    master = [c for c in listed if c.is_master and c not in releases]
    return master + releases if master_first else releases + master


def _consistent(members: dict[str, Candidate]) -> bool:
    provided = {i: c.contract for c in members.values() for i in c.contract.provides}
    for member in members.values():
        for interface, required in member.contract.requires.items():
            provider = provided.get(interface)
            if provider is not None and not required.contains(provider.provides[interface],
                                                              prereleases=True):
                return False
    return True


# --- the consumer's tests, as of its version ---------------------------------------------

@dataclass(frozen=True)
class ConsumerTests:
    commit: str       # the commit the tests are taken from
    blob: str         # git object id of the test file: the tests' identity for the cache
    text: str
    path: str


def consumer_tests(ws: Workspace, consumer: ModuleVersion, edge: Edge) -> ConsumerTests | None:
    """The consumer's contract tests for `edge` as of its version: from the last commit at which
    the consumer's module tree is still this version's (tests written after a release, before
    the consumer next changed, describe that release). None when there are none."""
    commit = _last_commit_with_tree(ws, consumer)
    top = comb.git_toplevel(ws.repo).resolve()
    prefix = ws.repo.resolve().relative_to(top).as_posix()
    path = f"{CONSUMER_TESTS_DIR}/{edge.consumer}/{edge.tests_file}"
    path = path if prefix == "." else f"{prefix}/{path}"
    if commit is None:  # the working tree
        file = ws.repo / CONSUMER_TESTS_DIR / edge.consumer / edge.tests_file
        if not file.is_file():
            return None
        text = file.read_text()
        blob = ws.git("hash-object", str(file)).strip()
        return ConsumerTests(WORKTREE, blob, text, path)
    text = _git_show(ws, commit, path)
    if text is None:
        return None
    return ConsumerTests(commit, ws.git("rev-parse", f"{commit}:{path}").strip(), text, path)


def _last_commit_with_tree(ws: Workspace, mv: ModuleVersion) -> str | None:
    if mv.commit == WORKTREE:
        return None
    path = comb.module_path(ws, mv.module)
    later = ws.git("rev-list", "--reverse", "--ancestry-path", f"{mv.commit}..HEAD", "--",
                   f":(top){path}").split()
    if not later:
        merged = git.succeeds(ws.repo, "merge-base", "--is-ancestor", mv.commit, "HEAD")
        return ws.git("rev-parse", "HEAD").strip() if merged else mv.commit
    return ws.git("rev-parse", f"{later[0]}^").strip()


# --- explaining a combination's contracts with the release history -------------------------

def release_row(ws: Workspace, mv: ModuleVersion) -> dict:
    """A release with its date and the interfaces it provides and requires."""
    try:
        declared = contract_of(ws, mv).to_dict()
        provides = ", ".join(f"{i} {v}" for i, v in declared["provides"].items())
        requires = ", ".join(f"{i} {v}" for i, v in declared["requires"].items())
    except UsageError as exc:
        provides = requires = f"(unreadable contract: {exc})"
    date = ws.git("log", "-1", "--format=%ad", "--date=short", mv.commit).strip()
    return {**mv.to_dict(), "date": date, "provides": provides, "requires": requires}


def chains(ws: Workspace, loaded: dict, edges: list[dict]) -> list[str]:
    """Each broken edge explained with the release history: which releases would do."""
    catalog = Catalog(ws)
    return [explain_chain(catalog, loaded[e["consumer"]], loaded[e["provider"]], e["interface"])
            for e in edges if not e["satisfied"]]
