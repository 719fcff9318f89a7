"""The results of `recagent eval conversations` as Markdown (results.md): precision@5 by slice,
the other figures per system, the paraphrase gap and the bars, per half."""

from __future__ import annotations

from typing import Any

from eval.conversation_set import SLICES


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Conversations: the labelled set over the demo catalogue", ""]
    for half, data in results["halves"].items():
        per_system = {k: v for k, v in data["systems"].items() if v}
        lines += [f"## {half} half", "", "Precision@5 by slice:", ""]
        header = ["system", "turns", "overall", *SLICES]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for name, summary in per_system.items():
            cells = [name, str(summary["overall"]["turns"])] + [
                f"{summary[s]['precision_at_5']:.3f}" if s in summary else "-"
                for s in ["overall", *SLICES]
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Safety, explanations and speed (all turns):", ""]
        header = [
            "system",
            "forbidden items",
            "wrong carry-overs",
            "supported sentences",
            "tautologies",
            "first list p50 (s)",
            "ranked p50 (s)",
            "turn p50 (s)",
            "turn p95 (s)",
        ]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for name, summary in per_system.items():
            o = summary["overall"]
            share = "-" if o["supported_share"] is None else f"{o['supported_share']:.1%}"
            lines.append(
                f"| {name} | {o['forbidden_items']} | {o['wrong_carry_overs']} | {share} | "
                f"{o['tautologies']} | {o['first_ranked_p50_s']} | {o['ranked_p50_s']} | "
                f"{o['turn_p50_s']} | "
                f"{o['turn_p95_s']} |"
            )
        gaps = {n: g for n, g in (data.get("paraphrase") or {}).items() if g}
        if gaps:
            lines += [
                "",
                "Paraphrases (first phrasing - the others, precision@5): "
                + "; ".join(
                    f"{n} {g['first']} - {g['others']} = {g['gap']}" for n, g in gaps.items()
                ),
            ]
        if data.get("bars"):
            lines += [
                "",
                "Bars (the agent): " + ", ".join(f"{k}: {v}" for k, v in data["bars"].items()),
                "",
            ]
        lines.append("")
    for name, per_turn in (results.get("chroma_searches_per_turn") or {}).items():
        lines += [
            f"Vector searches per turn ({name}, for sizing Chroma): {per_turn['all']}, of "
            f"them with a metadata filter: {per_turn['filtered']}",
            "",
        ]
    return "\n".join(lines)
