"""The compatibility matrix: per contract edge, consumer versions x provider versions, each
cell holding the three levels of evidence (declared, verified, measured).

Built from stored verdicts (one `contracts verify` batch) and the nightly's measured runs, so
the CLI and the dashboard show the same thing: a read model of the results, which is why it
lives here and not in compat/ (the dashboard reads results only). A cell where declared and verified disagree is
a finding of its own: the module claims a range its behaviour does not honour (or refuses one
it would honour), and such cells are listed first.
"""

from __future__ import annotations


def disagreement(declared: bool | None, status: str) -> str | None:
    if declared is True and status == "failed":
        return "declared compatible, but the consumer's contract tests fail"
    if declared is False and status == "passed":
        return "declared incompatible, but the consumer's contract tests pass"
    return None


def is_measured(row: dict, measured: list[dict]) -> bool:
    return any(vector["trees"].get(row["consumer"]) == row["consumer_tree"]
               and vector["trees"].get(row["provider"]) == row["provider_tree"]
               for vector in measured)


def build_matrix(verdicts: list[dict], measured: list[dict]) -> dict:
    """`{batch, disagreements: [cell], edges: [{consumer, provider, interface, consumers,
    providers, cells: [cell]}]}`; a cell is `{consumer, consumer_version, provider,
    provider_version, interface, declared, verified, measured, message, disagreement}`."""
    edges: dict[tuple[str, str, str], dict] = {}
    disagreements = []
    # A vector per distinct set of trees: a year of nights repeats each combination's.
    measured = list({tuple(sorted(v["trees"].items())): v for v in measured}.values())
    for row in verdicts:
        key = (row["consumer"], row["provider"], row["interface"])
        edge = edges.setdefault(key, {"consumer": key[0], "provider": key[1],
                                      "interface": key[2], "consumers": [], "providers": [],
                                      "cells": []})
        for side, label in (("consumers", row["consumer_label"]),
                            ("providers", row["provider_label"])):
            if label not in edge[side]:
                edge[side].append(label)
        cell = {
            "consumer": row["consumer"], "consumer_version": row["consumer_label"],
            "provider": row["provider"], "provider_version": row["provider_label"],
            "interface": row["interface"], "declared": row["declared"],
            "verified": row["status"], "measured": is_measured(row, measured),
            "message": row["message"], "cached": row.get("cached_from") is not None,
            "disagreement": disagreement(row["declared"], row["status"]),
        }
        edge["cells"].append(cell)
        if cell["disagreement"]:
            disagreements.append(cell)
    return {"batch": verdicts[0]["batch"] if verdicts else None,
            "disagreements": disagreements, "edges": list(edges.values())}


def declared_text(declared: bool | None) -> str:
    return {True: "ok", False: "refused", None: "-"}[declared]

