"""The combinations of the nightly's default plan: `master`, `release:latest`, and the fewest extra combinations
that cover every verified-compatible pair of versions along each contract edge in the window.

Pairwise coverage, not the full product: a pair (consumer version, provider version) is worth
running when it is declared compatible and its contract tests passed (the newest stored
verdict). Candidate combinations are the version vectors of the window whose every edge is such
a pair; a greedy set cover then picks, until every pair is covered, the vector covering the
most pairs not yet covered (ties: the newest versions, so the night stays close to what ships).
"""

from __future__ import annotations

import itertools
import logging

from packaging.version import Version

from stackci.compat.catalog import Candidate, Catalog, declared_ok
from stackci.errors import UsageError
from stackci.sources.combination import Combination
from stackci.workspace import MODULES

log = logging.getLogger("stackci")

PairKey = tuple[str, str, str]  # (interface, consumer tree, provider tree)


def compatible_pairs(catalog: Catalog, verdict_for) -> set[PairKey]:
    """Pairs in the window declared compatible whose newest verdict passed.
    `verdict_for(interface, consumer_tree, provider_tree) -> dict | None`."""
    found = set()
    for edge in catalog.edges:
        for consumer in catalog.in_window[edge.consumer]:
            for provider in catalog.in_window[edge.provider]:
                if not declared_ok(consumer.contract, provider.contract, edge.interface):
                    continue
                verdict = verdict_for(edge.interface, consumer.mv.tree_hash,
                                      provider.mv.tree_hash)
                if verdict and verdict["status"] == "passed":
                    found.add((edge.interface, consumer.mv.tree_hash, provider.mv.tree_hash))
    return found


def pairs_of(catalog: Catalog, vector: dict[str, Candidate]) -> set[PairKey] | None:
    """The edge pairs a version vector contains, or None if any edge is declared broken."""
    found = set()
    for edge in catalog.edges:
        consumer, provider = vector.get(edge.consumer), vector.get(edge.provider)
        if consumer is None or provider is None or \
                edge.interface not in consumer.contract.requires:
            continue
        if not declared_ok(consumer.contract, provider.contract, edge.interface):
            return None
        found.add((edge.interface, consumer.mv.tree_hash, provider.mv.tree_hash))
    return found


def cover(catalog: Catalog, wanted: set[PairKey], already: list[set[PairKey]]
          ) -> list[dict[str, Candidate]]:
    """Greedy set cover of `wanted` by consistent vectors of the window."""
    uncovered = wanted - set().union(*already) if already else set(wanted)
    vectors = []
    for choice in itertools.product(*(catalog.in_window[m] for m in MODULES)):
        vector = dict(zip(MODULES, choice))
        pairs = pairs_of(catalog, vector)
        # Only vectors made wholly of verified-compatible pairs: anything else fails its night.
        if pairs is not None and pairs <= wanted:
            vectors.append((vector, pairs))
    chosen = []
    while uncovered:
        best = max(vectors, key=lambda item: (len(item[1] & uncovered), _newness(item[0])),
                   default=None)
        if best is None or not best[1] & uncovered:
            log.warning("stackci: warning: %d verified pair(s) fit in no consistent "
                        "combination of the window", len(uncovered))
            break
        chosen.append(best[0])
        uncovered -= best[1]
    return chosen


def _newness(vector: dict[str, Candidate]) -> tuple:
    return tuple(Version(vector[m].mv.version) for m in MODULES)


def vector_combination(vector: dict[str, Candidate], latest: Combination | None) -> Combination:
    """Name a vector as release:latest with pins, so the same words rebuild it."""
    pins = []
    for module in MODULES:
        candidate = vector[module]
        if latest is not None and latest.modules[module].tree_hash == candidate.mv.tree_hash:
            continue
        pins.append(f"{module}={candidate.mv.version if candidate.is_release else 'master'}")
    name = "+".join(["release:latest", *pins])
    return Combination(name, {m: vector[m].mv for m in MODULES})


def default_plan(ws, store, *, resolve, window: int = 3) -> list[Combination]:
    """master, release:latest (when every module has a release), then pairwise coverage."""
    plan = [resolve(ws, "master", ())]
    try:
        latest = resolve(ws, "release:latest", ())
        plan.append(latest)
    except UsageError as exc:
        log.warning("stackci: warning: release:latest left out of the plan: %s", exc)
        latest = None
    catalog = Catalog(ws, window)
    wanted = compatible_pairs(catalog, store.verdict_for)
    already = []
    for combination in plan:
        vector = {m: catalog.candidate(mv) for m, mv in combination.modules.items()}
        already.append(pairs_of(catalog, vector) or set())
    for vector in cover(catalog, wanted, already):
        plan.append(vector_combination(vector, latest))
    unique: dict[str, Combination] = {}
    for combination in plan:
        unique.setdefault(combination.key, combination)
    return list(unique.values())
