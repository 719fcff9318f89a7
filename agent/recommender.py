"""One recommendation turn, as its steps: understand → retrieve → use tools → fuse → explain →
remember.

* **understand**: the LLM updates the structured profile; constraints the user states in plain
  words are applied by rule on top.
* **retrieve**: retrievals that need no model: the message itself, the collaborative model on
  the user's history, the profile's likes. A turn has candidates even when the model calls
  nothing useful.
* **use tools**: the LLM plans further retrievals as tool calls.
* **fuse**: one ranking from the candidate buffer, constraints re-checked, seen items dropped.
  Recommendations only ever come out of the buffer; the model's text cannot add an item.
* **explain**: the streamed intro and grounded explanations (template ones where the LLM fails).
* **remember**: the conversation and profile are updated.

Each LLM step runs through a :class:`~agent.steps.StepRunner`: an unusable answer falls back for
that step, an unreachable endpoint for the rest of the turn, and the user gets a notice. A
Recommender holds no per-turn state, so one instance can serve many conversations at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from agent.buffer import Candidate
from agent.conversation import Conversation, Recommendation, TurnResult
from agent.fusion import Scored, fuse
from agent.grounding import Checked, template
from agent.llm import ChatFactory
from agent.llm_steps import Clock, LLMSteps
from agent.profile import Constraints, UserProfile, merge, stated_constraints
from agent.steps import StepRunner
from agent.toolkit import TurnContext, retrieve_collab, retrieve_text
from indexing.records import Filters
from indexing.store import Store
from tools.collaborative import CollabModel, discover, tuned_fusion
from tools.config import FusionWeights, Settings
from tools.factory import Models


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
        stored = store.all_items()
        self.collab, tuned = collab, None
        if collab is None:
            self.collab, tuned = load_collab(settings, [item.id for item in stored])
        chosen = settings.fusion.model_dump()
        if tuned and "fusion" not in settings.model_fields_set:  # the user's own weights win
            chosen.update(tuned)
        self.weights = weights or FusionWeights(**chosen)
        self.catalogue_titles = catalogue_titles or sorted({item.title for item in stored})
        self.categories = sorted({item.category for item in stored if item.category})
        self.steps = (
            LLMSteps(chat, settings.llm, self.categories, self.catalogue_titles)
            if chat is not None
            else None
        )
        models.text_embedder.load()  # load now, not inside the first turn's timings

    # -- the steps ----------------------------------------------------------------------------
    def understand(
        self, convo: Conversation, message: str, runner: StepRunner, clock: Clock
    ) -> UserProfile:
        """The profile for this turn: the LLM's update, then what the user said in plain words
        (which wins)."""
        profile = convo.profile
        if self.steps is not None:
            steps = self.steps
            profile = runner.run(
                "the profile update",
                lambda: steps.update_profile(convo, message, clock),
                profile,
            )
        stated = stated_constraints(message, self.categories)
        if stated.constraints != Constraints():
            profile = merge(profile, stated).model_copy(update={"turns": profile.turns})
        return profile

    def retrieve(
        self,
        convo: Conversation,
        message: str,
        profile: UserProfile,
        attachments: dict[str, Path],
    ) -> TurnContext:
        """The retrievals that need no model; the returned context holds their candidates."""
        ctx = TurnContext(
            self.store,
            self.models,
            self.settings.index,
            filters=filters_for(profile),
            history_titles=convo.history_titles,
            attachments=dict(attachments),
            collab=self.collab,
            history_ids=convo.history_ids,
        )
        retrieve_text(ctx, message)
        retrieve_collab(ctx)
        if profile.likes:
            retrieve_text(ctx, ", ".join(profile.likes[-5:]), kind="profile", source="profile")
        return ctx

    def use_tools(self, ctx: TurnContext, message: str, runner: StepRunner, clock: Clock) -> None:
        """The model's own retrievals (tool calls), added to ``ctx.buffer``."""
        if self.steps is not None:
            steps = self.steps
            runner.run("tool calling", lambda: steps.use_tools(ctx, message, clock), None)

    def rank(
        self, ctx: TurnContext, convo: Conversation, profile: UserProfile, k: int
    ) -> list[Scored]:
        """The top ``k`` of the fused candidates, constraints re-checked, seen items left out."""
        exclude = set(convo.history_ids) | set(convo.recommended)
        ranked = fuse(
            ctx.buffer.candidates(), self.weights, exclude=exclude, allowed=allowed_by(profile)
        )
        return ranked[:k]

    def introduce(
        self,
        chosen: list[Scored],
        message: str,
        profile: UserProfile,
        runner: StepRunner,
        clock: Clock,
        on_token: Callable[[str], None] | None,
    ) -> str:
        """The reply's first sentence: streamed from the LLM, or a template."""
        fallback = (
            f"Here are {len(chosen)} picks for you."
            if chosen
            else "I found nothing that fits; describe it differently or relax a constraint."
        )
        if self.steps is None or not chosen:
            return fallback
        steps = self.steps
        titles = [s.candidate.title for s in chosen]
        text = runner.run(
            "the reply",
            lambda: steps.intro(message, profile, titles, on_token, clock),
            fallback,
        )
        return text or fallback

    def explain(
        self,
        chosen: list[Scored],
        message: str,
        profile: UserProfile,
        runner: StepRunner,
        clock: Clock,
    ) -> list[Recommendation]:
        """Each chosen item with its checked explanation (a template where there is none)."""
        checked: dict[str, Checked] = {}
        if self.steps is not None and chosen:
            steps = self.steps
            checked = runner.run(
                "the explanations", lambda: steps.explain(chosen, profile, message, clock), {}
            )
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
        return recommendations

    @staticmethod
    def remember(
        convo: Conversation,
        message: str,
        intro: str,
        recommendations: list[Recommendation],
        profile: UserProfile,
    ) -> None:
        convo.messages.append(("user", message))
        convo.messages.append(
            ("assistant", intro + " " + "; ".join(r.title for r in recommendations))
        )
        convo.recommended.extend(r.item_id for r in recommendations)
        convo.profile = profile

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
        clock: Clock = {}
        runner = StepRunner(available=self.steps is not None)
        if self.steps is None:
            runner.notices.append(
                "No LLM configured: embedding ranking with template explanations."
            )
        profile = self.understand(convo, message, runner, clock)
        ctx = self.retrieve(convo, message, profile, attachments or {})
        self.use_tools(ctx, message, runner, clock)
        chosen = self.rank(ctx, convo, profile, k)
        ranked_at = time.perf_counter()
        if explain:
            intro = self.introduce(chosen, message, profile, runner, clock, on_token)
            recommendations = self.explain(chosen, message, profile, runner, clock)
        else:
            intro = self.introduce(chosen, message, profile, StepRunner(False), clock, None)
            recommendations = self.explain(chosen, message, profile, StepRunner(False), clock)
        self.remember(convo, message, intro, recommendations, profile)
        total = time.perf_counter() - started
        timings = {
            "total": total,
            "llm": clock.get("llm", 0.0),
            "tools": ctx.seconds["tools"],
            "retrieval": ctx.seconds["retrieval"],
            "first_token_after_tools": (
                clock["first_token_at"] - ranked_at if "first_token_at" in clock else 0.0
            ),
        }
        timings["agent_overhead"] = max(0.0, total - timings["llm"])
        return TurnResult(intro, recommendations, profile, runner.notices, ctx.calls, timings)
