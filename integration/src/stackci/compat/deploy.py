"""can-i-deploy: the evidence for every contract edge of one combination (declared,
verified, measured), verifying missing pairs unless told not to."""

from __future__ import annotations

from stackci.compat.catalog import Catalog, Edge, declared_ok, explain_chain
from stackci.compat.verify import Pair, Verifier
from stackci.errors import UsageError
from stackci.results.matrix import is_measured


def deploy_evidence(ws, store, combo, *, verify: bool = True) -> tuple[bool, list[dict]]:
    """(deployable, one evidence row per edge): deployable when every edge is declared and
    verified compatible."""
    catalog = Catalog(ws)
    verifier = Verifier(ws, store, catalog) if verify else None
    measured = store.measured_vectors()
    evidence = []
    for consumer_module, consumer_mv in combo.modules.items():
        consumer = catalog.candidate(consumer_mv)
        for interface in consumer.contract.requires:
            provider_module = catalog.providers.get(interface)
            if provider_module not in combo.modules:
                raise UsageError(f"{consumer.contract.path}: requires.{interface}: no module of "
                                 f"the combination provides it")
            provider = catalog.candidate(combo.modules[provider_module])
            edge = Edge(consumer_module, interface, provider_module)
            evidence.append(edge_evidence(catalog, store, verifier, measured,
                                          Pair(edge, consumer, provider)))
    return all(e["declared"] and e["verified"] == "passed" for e in evidence), evidence


def edge_evidence(catalog, store, verifier, measured, pair: Pair) -> dict:
    interface = pair.edge.interface
    declared = declared_ok(pair.consumer.contract, pair.provider.contract, interface)
    verdict = store.verdict_for(interface, pair.consumer.mv.tree_hash, pair.provider.mv.tree_hash)
    if verdict is None and verifier is not None:
        verdict = verifier.verify(pair)
    verified = verdict["status"] if verdict else "not verified"
    row = {"consumer": pair.edge.consumer, "provider": pair.edge.provider,
           "consumer_tree": pair.consumer.mv.tree_hash,
           "provider_tree": pair.provider.mv.tree_hash}
    if not declared:
        why = explain_chain(catalog, pair.consumer.contract, pair.provider.contract,
                                   interface)
    else:
        why = verdict["message"] if verdict else "no stored verdict (run contracts verify)"
    return {"edge": pair.edge.name, "interface": interface,
            "versions": f"{pair.consumer.label} x {pair.provider.label}",
            "declared": declared, "verified": verified,
            "measured": is_measured(row, measured), "evidence": why}
