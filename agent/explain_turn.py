"""The explain step: the reply's first sentence and each chosen item with its explanation.

The reasons are computed first (:mod:`agent.reasons`: which words of the request matched which
field of the item). With ``turn.explain_llm`` / ``turn.intro_llm`` the LLM phrases them (asked
at once, so vLLM batches the calls) and the checker keeps only what the facts and reasons back;
otherwise, or where the checker rejects the model's text, the wording file says them
(:mod:`agent.wording`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.conversation import Recommendation
from agent.fusion import Scored
from agent.grounding import Checked
from agent.llm_steps import LLMSteps
from agent.reasons import Reason, reasons
from agent.steps import StepRunner, background
from agent.turn_state import Turn
from agent.understanding import seen_titles
from agent.vocabulary import Vocabulary
from agent.wording import from_reasons, intro, reason
from tools.config import TurnSettings


def explain(
    turn: Turn,
    chosen: list[Scored],
    steps: LLMSteps | None,
    settings: TurnSettings,
    vocabulary: Vocabulary,
    writer: StepRunner,
    on_token: Callable[[str], None] | None,
) -> tuple[str, list[Recommendation]]:
    """The intro and the recommendations; ``writer`` runs the LLM's writing steps (one that is
    not available leaves every sentence to the wording file)."""
    request, clock, message, profile = turn.request, turn.clock, turn.message, turn.profile
    titles = [s.candidate.title for s in chosen]
    opening = intro(titles)
    like = seen_titles(turn.convo, request.seeds)
    found: dict[str, list[Reason]] = {
        s.candidate.id: reasons(request, s.candidate.facts, vocabulary, like, request.seeds)
        for s in chosen
    }
    phrases = {i: [reason(r) for r in rs] for i, rs in found.items()}
    asked = {i: " ".join(r.words() for r in rs) for i, rs in found.items()}
    checked: dict[str, Checked] = {}
    want_intro = steps is not None and bool(chosen) and settings.intro_llm
    want_explain = steps is not None and bool(chosen) and settings.explain_llm
    llm_before, started = clock.get("llm", 0.0), time.perf_counter()
    with background(2) as pool:
        pending = (
            pool.submit(steps.explain, chosen, profile, message, clock, phrases, asked)
            if want_explain and steps is not None and writer.available
            else None
        )
        if want_intro and steps is not None:
            written = writer.run(
                "the reply",
                lambda: steps.intro(message, profile, titles, on_token, clock),
                opening,
            )
            opening = written or opening
        if pending is not None:
            checked = writer.run("the explanations", pending.result, {})
    if want_intro and pending is not None:  # two calls at once: count the wall time once
        clock["llm"] = llm_before + time.perf_counter() - started
    out = []
    for scored in chosen:
        c = scored.candidate
        got = checked.get(c.id)
        if got is not None and got.source == "template":
            got = None  # the checker rejected the model's text: say the reasons instead
        if got is None:
            text, used = from_reasons(c.facts, found[c.id])
            got = Checked(c.id, text, used, "reasons")
        out.append(
            Recommendation(
                c.id,
                c.title,
                scored.total,
                scored.breakdown,
                got.text,
                got.cited_fields,
                got.source,
                c.facts,
                got.problems,
                phrases[c.id],
            )
        )
    return opening, out
