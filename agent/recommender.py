"""One recommendation turn: profile -> tool phase -> fusion -> grounded explanations -> reply.

The LLM writes the profile update and the explanations through JSON-schema structured output,
and plans retrievals as tool calls (LangChain ``create_agent``). Two retrievals always run
without it (the message itself, and the profile's likes), so a turn has candidates even when the
model calls nothing useful. Recommendations only ever come out of the candidate buffer, fused and
filtered here; the model's text cannot add an item.

When the LLM is unreachable, slow or returns garbage, the turn still answers: embedding ranking,
template explanations, and a notice saying so.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

import prompts
from agent.buffer import Candidate
from agent.explainer import checked, explain_prompt, explanation_schema
from agent.fusion import FusionWeights, Scored, fuse
from agent.grounding import Checked, template
from agent.profile import (
    Constraints,
    ProfileUpdate,
    UserProfile,
    grounded,
    merge,
    stated_constraints,
)
from agent.toolkit import TurnContext, build_tools, retrieve_collab, retrieve_text
from indexing.search import Filters
from indexing.store import Store
from tools.collab import CollabModel, discover, tuned_fusion
from tools.config import Settings
from tools.factory import Models

ChatFactory = Callable[[bool, int], Any]
"""Returns a LangChain chat model: (streaming, max_tokens) -> model."""

# Output budgets per step: a small model left unbounded can ramble until the context is full.
MAX_TOKENS = {"profile": 200, "tools": 160, "explain": 600, "intro": 60}


class LLMFailure(RuntimeError):
    """The LLM could not be used for this step. ``unreachable``: the endpoint is down or timed
    out (no point asking again this turn); otherwise its output was unusable for this step."""

    def __init__(self, message: str, unreachable: bool = True) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def _failure(exc: BaseException) -> LLMFailure:
    import httpx
    import openai

    from agent.llm import LLMUnavailable

    transport = (
        openai.APIConnectionError,
        openai.APITimeoutError,
        httpx.TransportError,
        LLMUnavailable,
        ConnectionError,
        TimeoutError,
    )
    return LLMFailure(f"{type(exc).__name__}: {exc}", unreachable=isinstance(exc, transport))


@dataclass
class Recommendation:
    item_id: str
    title: str
    score: float
    breakdown: dict[str, float]
    explanation: str
    cited_fields: list[str]
    explanation_source: str
    facts: dict[str, Any]
    problems: list[str] = field(default_factory=list)


@dataclass
class TurnResult:
    intro: str
    recommendations: list[Recommendation]
    profile: UserProfile
    notices: list[str] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "intro": self.intro,
            "recommendations": [
                {
                    "id": r.item_id,
                    "title": r.title,
                    "score": round(r.score, 6),
                    "breakdown": r.breakdown,
                    "explanation": r.explanation,
                    "cited_fields": r.cited_fields,
                    "explanation_source": r.explanation_source,
                }
                for r in self.recommendations
            ],
            "profile": self.profile.model_dump(),
            "notices": self.notices,
            "tool_calls": self.tool_calls,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass
class Conversation:
    """What the agent remembers of a session."""

    user_id: str
    profile: UserProfile
    messages: list[tuple[str, str]] = field(default_factory=list)  # (role, text)
    recommended: list[str] = field(default_factory=list)
    history_ids: list[str] = field(default_factory=list)
    history_titles: list[str] = field(default_factory=list)

    def transcript(self, last: int = 8) -> str:
        return "\n".join(f"{role}: {text}" for role, text in self.messages[-last:]) or "(none)"


def _llm_errors() -> tuple[type[BaseException], ...]:
    import httpx
    import openai
    from langchain_core.exceptions import OutputParserException

    from agent.llm import LLMUnavailable

    return (
        LLMUnavailable,
        openai.OpenAIError,
        httpx.HTTPError,
        OutputParserException,
        ValidationError,
        json.JSONDecodeError,
        TimeoutError,
        ConnectionError,
        ValueError,
    )


def filters_for(profile: UserProfile) -> Filters:
    c = profile.constraints
    return Filters(
        category=c.categories[0] if len(c.categories) == 1 else None,
        min_price=c.min_price,
        max_price=c.max_price,
        has_image=True if c.modality == "image" else None,
        has_audio=True if c.modality == "audio" else None,
    )


def allowed_by(profile: UserProfile) -> Callable[[Candidate], bool]:
    c = profile.constraints
    wanted = {x.lower() for x in c.categories}
    banned = {x.lower() for x in c.exclude_categories}

    def allowed(candidate: Candidate) -> bool:
        category = (candidate.category or "").lower()
        price = candidate.facts.get("price")
        if wanted and category not in wanted:
            return False
        if category in banned:
            return False
        if c.max_price is not None and (price is None or float(price) > c.max_price):
            return False
        if c.min_price is not None and (price is None or float(price) < c.min_price):
            return False
        if c.modality == "audio" and not candidate.facts.get("has_audio"):
            return False
        return not (c.modality == "image" and not candidate.facts.get("has_image"))

    return allowed


def load_collab(
    settings: Settings, store_ids: list[str]
) -> tuple[CollabModel | None, dict[str, float] | None]:
    """The configured collaborative model, or the one under DATA_DIR/collab that covers the
    store's items, with the fusion weights tuned beside it."""
    folder = settings.collab_dir or discover(settings.data_dir / "collab", store_ids)
    if folder is None:
        return None, None
    return CollabModel.load(folder), tuned_fusion(folder)


class Recommender:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        models: Models,
        chat: ChatFactory | None,
        weights: FusionWeights | None = None,
        catalogue_titles: list[str] | None = None,
        collab: CollabModel | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.models = models
        self.chat = chat
        stored = store.text.get(include=["metadatas"])
        metadatas = stored["metadatas"] or []
        self.collab, tuned = collab, None
        if collab is None:
            self.collab, tuned = load_collab(settings, stored["ids"])
        chosen = settings.fusion.model_dump()
        if tuned and "fusion" not in settings.model_fields_set:  # the user's own weights win
            chosen.update(tuned)
        self.weights = weights or FusionWeights(**chosen)
        self.catalogue_titles = catalogue_titles or sorted({str(m["title"]) for m in metadatas})
        self.categories = sorted({str(m["category"]) for m in metadatas if m.get("category")})
        models.text_embedder.load()  # load now, not inside the first turn's timings

    # -- LLM steps ----------------------------------------------------------------------------
    def _structured(
        self, schema: type[BaseModel], prompt: str, clock: dict[str, float], budget: int
    ) -> Any:
        if self.chat is None:
            raise LLMFailure("no LLM configured")
        start = time.perf_counter()
        try:
            model = self.chat(False, budget).with_structured_output(schema, method="json_schema")
            result = model.invoke(prompt)
        except _llm_errors() as exc:
            raise _failure(exc) from exc
        finally:
            clock["llm"] = clock.get("llm", 0.0) + time.perf_counter() - start
        if isinstance(result, dict):
            result = schema.model_validate(result)
        if not isinstance(result, schema):
            raise LLMFailure(f"expected {schema.__name__}, got {type(result).__name__}", False)
        return result

    def update_profile(
        self, convo: Conversation, message: str, clock: dict[str, float]
    ) -> UserProfile:
        prompt = prompts.render(
            "profile",
            profile_json=convo.profile.model_dump_json(exclude={"user_id", "turns"}),
            history="; ".join(convo.history_titles[-15:]) or "(none)",
            conversation=convo.transcript(),
            message=message,
            categories=", ".join(self.categories) or "(none)",
        )
        update: ProfileUpdate = self._structured(
            ProfileUpdate, prompt, clock, MAX_TOKENS["profile"]
        )
        known = {c.lower(): c for c in self.categories}
        for field_name in ("categories", "exclude_categories"):  # a category the catalogue lacks
            values = getattr(update.constraints, field_name)  # would filter everything out
            setattr(
                update.constraints,
                field_name,
                [known[v.lower()] for v in values if v.lower() in known],
            )
        return merge(convo.profile, grounded(update, message))

    def tool_phase(self, ctx: TurnContext, message: str, clock: dict[str, float]) -> None:
        if self.chat is None:
            raise LLMFailure("no LLM configured")
        from langchain.agents import create_agent
        from langchain.agents.middleware import ModelCallLimitMiddleware

        from agent.middleware import TolerantToolCalls, ToolChoicePolicy

        usable = [t for t in build_tools(ctx) if self._usable(t.name, ctx)]
        attached = (" Attached files: " + ", ".join(ctx.attachments)) if ctx.attachments else ""
        start = time.perf_counter()
        tools_before = ctx.seconds["tools"]
        try:
            agent = create_agent(
                self.chat(False, MAX_TOKENS["tools"]),
                usable,
                system_prompt=prompts.render("agent_system", today_hint=""),
                middleware=[
                    ModelCallLimitMiddleware(  # type: ignore[list-item]
                        run_limit=self.settings.llm.max_steps, exit_behavior="end"
                    ),
                    ToolChoicePolicy(self.settings.llm.tool_choice),
                    TolerantToolCalls(),
                ],
            )
            agent.invoke(
                {"messages": [{"role": "user", "content": message + attached}]},
                {"recursion_limit": 4 * self.settings.llm.max_steps + 4},
            )
        except _llm_errors() as exc:
            raise _failure(exc) from exc
        finally:
            spent = time.perf_counter() - start - (ctx.seconds["tools"] - tools_before)
            clock["llm"] = clock.get("llm", 0.0) + spent

    @staticmethod
    def _usable(name: str, ctx: TurnContext) -> bool:
        if name in {"search_by_image", "caption_image", "transcribe_audio"}:
            return bool(ctx.attachments)
        if name == "user_history":
            return bool(ctx.history_titles)
        return True

    def explain(
        self, chosen: list[Scored], profile: UserProfile, message: str, clock: dict[str, float]
    ) -> dict[str, Checked]:
        schema = explanation_schema([s.candidate.id for s in chosen])
        prompt = explain_prompt(
            [(s.candidate.id, s.candidate.facts) for s in chosen], profile.summary, message
        )
        result = self._structured(schema, prompt, clock, MAX_TOKENS["explain"] * len(chosen) // 3)
        facts = {s.candidate.id: {**s.candidate.facts} for s in chosen}
        return checked(result.explanations, facts, self.catalogue_titles)

    def intro(
        self,
        message: str,
        profile: UserProfile,
        count: int,
        on_token: Callable[[str], None] | None,
        clock: dict[str, float],
        chosen_titles: list[str],
    ) -> str:
        if self.chat is None:
            raise LLMFailure("no LLM configured")
        prompt = prompts.render(
            "reply_intro",
            request=message,
            profile_summary=profile.summary or "(unknown)",
            count=count,
        )
        start = time.perf_counter()
        parts: list[str] = []
        try:
            for chunk in self.chat(True, MAX_TOKENS["intro"]).stream(prompt):
                text = str(chunk.content)
                if text:
                    if not parts:
                        clock["first_token_at"] = time.perf_counter()
                    parts.append(text)
                    if on_token:
                        on_token(text)
        except _llm_errors() as exc:
            raise _failure(exc) from exc
        finally:
            clock["llm"] = clock.get("llm", 0.0) + time.perf_counter() - start
        text = "".join(parts).strip().strip('"').split("\n")[0]
        allowed = {t.lower() for t in chosen_titles}
        named = [
            t
            for t in self.catalogue_titles
            if len(t) >= 3
            and t.lower() not in allowed
            and re.search(rf"\b{re.escape(t.lower())}s?\b", text.lower())
        ]
        if named:  # the intro may not name items the user is not being recommended
            return f"Here are {count} picks for you."
        return text

    # -- the turn -----------------------------------------------------------------------------
    def respond(
        self,
        convo: Conversation,
        message: str,
        k: int = 3,
        attachments: dict[str, Path] | None = None,
        on_token: Callable[[str], None] | None = None,
        explain: bool = True,
    ) -> TurnResult:
        """One turn. ``explain=False`` skips the LLM's intro and explanations (template ones
        instead): the simulated-user evaluation judges the recommendations only."""
        started = time.perf_counter()
        clock: dict[str, float] = {}
        notices: list[str] = []
        llm_ok = self.chat is not None
        if not llm_ok:
            notices.append("No LLM configured: embedding ranking with template explanations.")

        def degrade(step: str, exc: LLMFailure) -> None:
            nonlocal llm_ok
            if exc.unreachable:
                llm_ok = False
                notices.append(
                    f"The LLM failed during {step} ({exc}); falling back to embedding "
                    "ranking and template explanations."
                )
            else:  # one bad answer: this step falls back, the others still use the LLM
                notices.append(
                    f"The LLM's answer for {step} was unusable ({str(exc)[:160]}); "
                    "that step fell back."
                )

        profile = convo.profile
        if llm_ok:
            try:
                profile = self.update_profile(convo, message, clock)
            except LLMFailure as exc:
                degrade("the profile update", exc)
        stated = stated_constraints(message, self.categories)
        if stated.constraints != Constraints():  # what the user said in plain words wins
            profile = merge(profile, stated).model_copy(update={"turns": profile.turns})
        ctx = TurnContext(
            self.store,
            self.models,
            self.settings.index,
            filters=filters_for(profile),
            history_titles=convo.history_titles,
            attachments=dict(attachments or {}),
            collab=self.collab,
            history_ids=convo.history_ids,
        )
        retrieve_text(ctx, message)
        retrieve_collab(ctx)
        if profile.likes:
            retrieve_text(ctx, ", ".join(profile.likes[-5:]), kind="profile", source="profile")
        if llm_ok:
            try:
                self.tool_phase(ctx, message, clock)
            except LLMFailure as exc:
                degrade("tool calling", exc)
        exclude = set(convo.history_ids) | set(convo.recommended)
        ranked = fuse(
            ctx.buffer.candidates(), self.weights, exclude=exclude, allowed=allowed_by(profile)
        )
        chosen = ranked[:k]
        tool_phase_end = time.perf_counter()
        intro = (
            f"Here are {len(chosen)} picks for you."
            if chosen
            else "I found nothing that fits; describe it differently or relax a constraint."
        )
        if llm_ok and chosen and explain:  # streamed first, so the reply starts at once
            try:
                intro = (
                    self.intro(
                        message,
                        profile,
                        len(chosen),
                        on_token,
                        clock,
                        [s.candidate.title for s in chosen],
                    )
                    or intro
                )
            except LLMFailure as exc:
                degrade("the reply", exc)
            if "first_token_at" in clock:
                clock["first_token_after_tools"] = clock["first_token_at"] - tool_phase_end
        checked: dict[str, Checked] = {}
        if llm_ok and chosen and explain:
            try:
                checked = self.explain(chosen, profile, message, clock)
            except LLMFailure as exc:
                degrade("the explanations", exc)
        recommendations = []
        for scored in chosen:
            c = scored.candidate
            got = checked.get(c.id)
            if got is None:
                text, used = template(c.facts)
                got = Checked(c.id, text, used, "template")
            recommendations.append(
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
                )
            )
        convo.messages.append(("user", message))
        convo.messages.append(
            ("assistant", intro + " " + "; ".join(r.title for r in recommendations))
        )
        convo.recommended.extend(r.item_id for r in recommendations)
        convo.profile = profile
        total = time.perf_counter() - started
        timings = {
            "total": total,
            "llm": clock.get("llm", 0.0),
            "tools": ctx.seconds["tools"],
            "retrieval": ctx.seconds["retrieval"],
            "first_token_after_tools": clock.get("first_token_after_tools", 0.0),
        }
        timings["agent_overhead"] = max(0.0, total - timings["llm"])
        return TurnResult(intro, recommendations, profile, notices, ctx.calls, timings)
