"""Advice as Markdown, one document per team: what to change, the modelled gain, the evidence."""

from __future__ import annotations

from stackci.analysis.advice import by_team


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def team_markdown(team: str, items: list[dict], suite_us: float | None = None) -> str:
    contact = next((i["contact"] for i in items if i.get("contact")), "")
    lines = [f"# Advice for {team}" + (f" ({contact})" if contact else ""), ""]
    if not items:
        return "\n".join(lines + ["Nothing to change: no finding of the analysis is yours.", ""])
    total = sum(i["gain_us"] for i in items)
    lines += [f"{len(items)} items, modelled gain {total:.1f} us"
              + (f" of the suite's {suite_us:.1f} us" if suite_us else "") + ".", ""]
    for number, item in enumerate(items, 1):
        lines += [f"## {number}. {item['change']}", "",
                  f"- modelled gain: {item['gain_us']:.2f} us ({100 * item['gain_share']:.2f}% of the suite)",
                  f"- where: `{item['path']}`"]
        if item.get("workloads"):
            lines.append(f"- workloads: {', '.join(item['workloads'])}")
        evidence = item.get("evidence") or []
        if evidence:
            columns = list(dict.fromkeys(k for row in evidence for k in row))
            lines += ["", "| " + " | ".join(columns) + " |",
                      "| " + " | ".join("---" for _ in columns) + " |"]
            lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |"
                      for row in evidence]
            if item.get("evidence_count", 0) > len(evidence):
                lines.append(f"\n... and {item['evidence_count'] - len(evidence)} more")
        lines.append("")
    return "\n".join(lines)


def markdown_by_team(items: list[dict], teams: list[str] = (),
                     suite_us: float | None = None) -> dict[str, str]:
    """{team: Markdown}: every team with advice, and every team in `teams` (even with none)."""
    grouped = by_team(items)
    names = list(dict.fromkeys(list(teams) + list(grouped)))
    return {team: team_markdown(team, grouped.get(team, []), suite_us) for team in names}
