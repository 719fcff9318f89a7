"""One recommendation turn, as its steps: understand → retrieve → use tools → rank → explain →
remember.

* **understand**: the message becomes a typed :class:`~agent.request.Request` by rule (targets in
  the catalogue's taxonomy, exclusions, sound, price, references, standing preferences); the
  profile notes likes and dislikes. With ``turn.understanding`` off (the earlier design, kept
  as a baseline) the LLM's profile update and its constraints drive the turn instead.
* **retrieve**: the request's query within its target categories, the LLM's expansions (extra
  queries, run while the base retrieval runs), neighbours of the items a follow-up refers to,
  the collaborative model on the user's history.
* **use tools** (``turn.tools_llm``): the LLM plans further retrievals as tool calls.
* **rank**: one ranking from the candidate buffer, the request's hard constraints checked on
  each item, seen items dropped. Recommendations only ever come out of the buffer.
* **explain**: reasons computed from the request and the item's fields, phrased by a template
  (or by the LLM with ``turn.explain_llm``, checked against the facts and reasons).
* **remember**: the conversation, the request (later turns refer back to it) and the profile.

Each LLM step runs through a :class:`~agent.steps.StepRunner`: an unusable answer falls back for
that step, an unreachable endpoint for the rest of the turn, and the user gets a notice. A
Recommender holds no per-turn state, so one instance can serve many conversations at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.attachments import read_attachments
from agent.buffer import Candidate
from agent.conversation import Conversation, Recommendation, TurnResult
from agent.feedback import Feedback, Opinions, feedback_scores
from agent.fusion import Scored, fuse
from agent.grounding import Checked, template
from agent.llm import ChatFactory
from agent.llm_steps import Clock, LLMSteps
from agent.preferences import preference_scores
from agent.profile import (
    MAX_PHRASES,
    PHRASE_CHARS,
    Constraints,
    ProfileUpdate,
    UserProfile,
    merge,
    stated_constraints,
    union,
)
from agent.profile_filters import allowed_by, filters_for
from agent.reasons import Reason, describe, reasons
from agent.request_types import Applied, Request
from agent.resolve import apply_reading
from agent.steps import StepRunner, background
from agent.toolkit import TurnContext, retrieve_collab, retrieve_knowledge, retrieve_text
from agent.understanding import Understanding, seen_titles
from indexing.knowledge import KnowledgeStore
from indexing.photo_search import search_photo
from indexing.records import Filters, Hit, Taxonomy
from indexing.store import Store
from tools.collaborative import CollabModel, discover, tuned_fusion
from tools.config import FusionWeights, Settings
from tools.errors import InputError, MediaError
from tools.factory import Models

OnRanked = Callable[[list[tuple[str, str]]], None]
DEFAULT_MESSAGE = "Recommend something I would like."
REQUEST_DEPTH = 60  # candidates per retrieval when the request's constraints filter them after


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
        knowledge: KnowledgeStore | None = None,
    ) -> None:
        self.settings = settings
        self.turn = settings.turn
        self.store = store
        self.models = models
        self.chat = chat
        self.knowledge = knowledge
        if knowledge is None and self.turn.knowledge_fields:
            self.knowledge = KnowledgeStore(store)
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
        self.understanding = (
            Understanding.of(
                Taxonomy.of(stored), models.text_embedder.embed, self.turn.synonym_threshold
            )
            if self.turn.understanding
            else None
        )
        models.text_embedder.load()  # load now, not inside the first turn's timings

    # -- the steps ----------------------------------------------------------------------------
    def understand(
        self, convo: Conversation, message: str, runner: StepRunner, clock: Clock
    ) -> tuple[Request | None, UserProfile]:
        """The request (None without request understanding) and the profile for this turn."""
        profile = convo.profile
        if self.steps is not None and self.turn.profile_llm:
            steps = self.steps
            profile = runner.run(
                "the profile update", lambda: steps.update_profile(convo, message, clock), profile
            )
        if self.understanding is None:  # the profile's constraints drive the turn
            stated = stated_constraints(message, self.categories)
            if stated.constraints != Constraints():
                profile = merge(profile, stated).model_copy(update={"turns": profile.turns})
            return None, profile
        request = self.understanding.request(convo, message)
        if self.steps is not None and self.turn.reading_llm:
            steps = self.steps
            reading = runner.run("the reading", lambda: steps.read(convo, message, clock), None)
            if reading is not None:
                vocabulary = self.understanding.vocabulary
                request = apply_reading(request, reading, convo, vocabulary)
        noted = ProfileUpdate(  # the words as said (the model's may be long): phrases, cut
            likes=[
                a.words[:PHRASE_CHARS] for a in request.applied if a.kind == "target" and a.words
            ][:MAX_PHRASES],
            dislikes=[
                a.words[:PHRASE_CHARS]
                for a in request.applied
                if a.kind == "exclude" and a.source in {"rule", "model"} and a.words
            ][:MAX_PHRASES],
        )
        profile = merge(profile, noted).model_copy(
            update={
                "constraints": Constraints(),  # constraints live in the request, per turn
                "standing": [*profile.standing, *request.standing],
                "turns": convo.profile.turns + 1,
            }
        )
        return request, profile

    def retrieve(
        self,
        convo: Conversation,
        message: str,
        request: Request | None,
        profile: UserProfile,
        attachments: dict[str, Path],
        runner: StepRunner,
        clock: Clock,
        bounds: Filters | None = None,
    ) -> TurnContext:
        """The retrievals; the returned context holds their candidates."""
        outer = bounds or Filters()
        ctx = TurnContext(
            self.store,
            self.models,
            self.settings.index,
            filters=(filters_for(profile) if request is None else Filters()).within(outer),
            history_titles=convo.history_titles,
            attachments=dict(attachments),
            collab=self.collab,
            history_ids=[*convo.history_ids, *Opinions.of(convo.feedback).liked],
        )
        liked = Opinions.of(convo.feedback).liked[-3:]
        if request is None or self.understanding is None:
            retrieve_text(ctx, message)
            retrieve_collab(ctx)
            if profile.likes:
                retrieve_text(ctx, ", ".join(profile.likes[-5:]), kind="profile", source="profile")
            self.near_liked(ctx, liked, ctx.filters)
            return ctx
        query = request.query

        def probe() -> list[Hit]:
            with ctx.timed("retrieval"):
                return self.store.search_text(query, 20)

        request = self.understanding.confirm(request, probe)
        self.understanding.exclude_similar(request, self.store)
        filters = [f.within(outer) for f in self.understanding.filters(request)]
        expand = self.steps is not None and self.turn.expansion_llm and bool(request.residual)
        with background(1) as pool:
            pending = None
            if expand and self.steps is not None:
                pending = pool.submit(self.steps.expand, " ".join(request.query.split()), clock)
            for f in filters:  # the base retrieval runs while the model thinks
                retrieve_text(
                    ctx, request.query, filters=f, source=f"text:{f.category}", k=REQUEST_DEPTH
                )
                if self.knowledge is not None:
                    fields = self.turn.knowledge_fields
                    retrieve_knowledge(ctx, self.knowledge, request.query, fields, f)
            for seed in request.seeds[:5] if not request.residual else []:  # new words lead
                with ctx.timed("retrieval"):
                    near = self.store.neighbours(seed, REQUEST_DEPTH // 3, filters[0])
                ctx.buffer.add(f"similar:{seed}", "text", near.get("text", []))
            retrieve_collab(ctx)
            self.near_liked(ctx, liked, filters[0])
            if pending is not None:
                request.expansions = runner.run("the expansion", pending.result, [])
                if request.expansions:
                    request.applied.append(
                        Applied(
                            kind="expansion", value=", ".join(request.expansions), source="model"
                        )
                    )
        if request.expansions:  # one list for all kinds: a small model's guesses are noisy
            kinds = ", ".join(request.expansions)
            for f in filters:
                retrieve_text(ctx, kinds, filters=f, source=f"expansion:{f.category}")
        for query in request.queries:  # the model's reading: what is wanted; the fitting kinds
            for f in filters:
                retrieve_text(ctx, query, filters=f, source=f"reading:{query}:{f.category}")
        return ctx

    def near_liked(self, ctx: TurnContext, liked: Sequence[str], filters: Filters) -> None:
        """The text and picture neighbours of items the user liked in this session."""
        for item_id in liked:
            with ctx.timed("retrieval"):
                near = self.store.neighbours(item_id, REQUEST_DEPTH // 3, filters)
            for kind, hits in near.items():  # ranks only: similarity enters as the feedback term
                ctx.buffer.add(f"liked:{item_id}:{kind}", "feedback", hits)

    def search_pictures(
        self,
        ctx: TurnContext,
        pictures: list[Path],
        request: Request | None,
        runner: StepRunner,
        bounds: Filters | None = None,
    ) -> None:
        """Items whose pictures look like the attached ones (within the request's targets)."""
        filters = (
            [f.within(bounds or Filters()) for f in self.understanding.filters(request)]
            if request is not None and self.understanding is not None
            else [ctx.filters]
        )
        for picture in pictures:
            try:
                for f in filters:
                    with ctx.timed("retrieval"):
                        found = search_photo(
                            self.store, self.models.photo_tagger, picture, REQUEST_DEPTH, f
                        )
                    for kind, hits in found.by_kind().items():
                        ctx.buffer.add(f"{kind}:{picture.name}:{f.category}", kind, hits)
            except MediaError as exc:
                runner.notices.append(f"The attached picture {picture.name} cannot be used: {exc}")

    def use_tools(self, ctx: TurnContext, message: str, runner: StepRunner, clock: Clock) -> None:
        """The model's own retrievals (tool calls), added to ``ctx.buffer``."""
        if self.steps is not None and self.turn.tools_llm:
            steps = self.steps
            runner.run("tool calling", lambda: steps.use_tools(ctx, message, clock), None)

    def rank(
        self,
        ctx: TurnContext,
        convo: Conversation,
        request: Request | None,
        profile: UserProfile,
        k: int,
        bounds: Filters | None = None,
    ) -> list[Scored]:
        """The top ``k`` fused candidates that satisfy the constraints, seen items left out.
        When the request's targets leave fewer than ``k``, the rest come from outside them
        (never from an exclusion, never a disliked item or its near-duplicate)."""
        candidates = ctx.buffer.candidates()
        opinions = Opinions.of(convo.feedback)
        ids = [c.id for c in candidates]
        vectors = (
            self.store.text_vectors([*ids, *opinions.liked, *opinions.disliked])
            if profile_signals(profile) or opinions
            else {}
        )
        preference = preference_scores(
            {i: vectors[i] for i in ids if i in vectors},
            self.models.text_embedder.embed,
            profile.likes,
            profile.dislikes,
        )
        feedback, blocked = feedback_scores(vectors, opinions) if opinions else ({}, set())
        never = set(convo.history_ids) | blocked  # disliked items never come back
        exclude = never | set(convo.recommended)
        outer = bounds or Filters()
        if request is None or self.understanding is None:
            legacy = allowed_by(profile)

            def fits(c: Candidate) -> bool:
                return legacy(c) and outer.admits(c.facts)

            return fuse(candidates, self.weights, exclude, fits, None, feedback)[:k]
        understanding = self.understanding

        def ranked(taken: set[str], relax: int = 0) -> list[Scored]:
            allowed = understanding.allowed(request, relax)

            def fits(c: Candidate) -> bool:
                return allowed(c) and outer.admits(c.facts)

            return fuse(candidates, self.weights, taken, fits, preference, feedback)

        chosen = ranked(exclude)[:k]
        # Too few inside the targets: what fits that was shown before (the constraint matters
        # more than novelty, unless the user asked for something different), then the
        # targets' parents, then anywhere.
        passes = [(never, 0)] if not request.different else []
        for taken, relax in [*passes, (exclude, 1), (exclude, 2)]:
            if len(chosen) >= k or not request.targets:
                break
            chosen += ranked(taken | {s.candidate.id for s in chosen}, relax)[: k - len(chosen)]
        return chosen

    def record_feedback(self, convo: Conversation, feedback: Feedback) -> None:
        """Note ``feedback`` on an item this session was shown: the next ranking uses it
        (:mod:`agent.feedback`) and the profile's likes or dislikes gain the item's title."""
        if feedback.item_id not in convo.recommended:
            raise InputError(
                f"item {feedback.item_id!r} was not recommended in this session; feedback is "
                "for items the session was shown"
            )
        convo.feedback.pop(feedback.item_id, None)  # the latest word on an item counts
        convo.feedback[feedback.item_id] = feedback
        if not (feedback.liked or feedback.disliked):  # a middling rating says neither
            return
        stored = self.store.items([feedback.item_id]).get(feedback.item_id)
        title = (stored.title if stored else feedback.item_id)[:60]
        liked, disliked = ([title], []) if feedback.liked else ([], [title])
        profile = convo.profile  # as merge() does: a new like drops the same dislike, and back
        convo.profile = profile.model_copy(
            update={
                "likes": union(profile.likes, liked, disliked),
                "dislikes": union(profile.dislikes, disliked, liked),
            }
        )

    def explain(
        self,
        chosen: list[Scored],
        convo: Conversation,
        message: str,
        request: Request | None,
        profile: UserProfile,
        runner: StepRunner,
        clock: Clock,
        on_token: Callable[[str], None] | None,
    ) -> tuple[str, list[Recommendation]]:
        """The reply's first sentence and each chosen item with its explanation. The LLM's
        intro and explanations (when on) are asked for at once; vLLM batches them."""
        titles = [s.candidate.title for s in chosen]
        intro = _template_intro(titles, listed=request is not None)
        found: dict[str, list[Reason]] = {}
        if request is not None and self.understanding is not None:
            like = seen_titles(convo, request.seeds)
            vocabulary = self.understanding.vocabulary
            for s in chosen:
                found[s.candidate.id] = reasons(
                    request, s.candidate.facts, vocabulary, like, request.seeds
                )
        phrases = {i: [r.phrase() for r in rs] for i, rs in found.items()}
        why = phrases or None
        asked = {i: " ".join(r.words() for r in rs) for i, rs in found.items()} or None
        checked: dict[str, Checked] = {}
        steps = self.steps
        want_intro = steps is not None and bool(chosen) and self.turn.intro_llm
        want_explain = steps is not None and bool(chosen) and self.turn.explain_llm
        llm_before, started = clock.get("llm", 0.0), time.perf_counter()
        with background(2) as pool:
            pending = (
                pool.submit(steps.explain, chosen, profile, message, clock, why, asked)
                if want_explain and steps is not None and runner.available
                else None
            )
            if want_intro and steps is not None:
                intro = (
                    runner.run(
                        "the reply",
                        lambda: steps.intro(message, profile, titles, on_token, clock),
                        intro,
                    )
                    or intro
                )
            if pending is not None:
                checked = runner.run("the explanations", pending.result, {})
        if want_intro and pending is not None:  # two calls at once: count the wall time once
            clock["llm"] = llm_before + time.perf_counter() - started
        out = []
        for scored in chosen:
            c = scored.candidate
            got = checked.get(c.id)
            if got is not None and got.source == "template" and c.id in found:
                got = None  # the checker rejected the model's text: say the reasons instead
            if got is None and c.id in found:
                text, used = describe(c.facts, found[c.id])
                got = Checked(c.id, text, used, "reasons")
            elif got is None:
                text, used = template(c.facts)
                got = Checked(c.id, text, used, "template")
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
                    phrases.get(c.id, []),
                )
            )
        return intro, out

    @staticmethod
    def remember(
        convo: Conversation,
        message: str,
        intro: str,
        recommendations: list[Recommendation],
        profile: UserProfile,
        request: Request | None,
    ) -> None:
        convo.messages.append(("user", message))
        convo.messages.append(
            ("assistant", intro + " " + "; ".join(r.title for r in recommendations))
        )
        convo.recommended.extend(r.item_id for r in recommendations)
        convo.profile = profile
        if request is not None:
            convo.requests.append(
                request.memory(
                    [r.item_id for r in recommendations],
                    [r.title for r in recommendations],
                    [_price(r.facts.get("price")) for r in recommendations],
                )
            )

    # -- the turn -----------------------------------------------------------------------------
    def respond(
        self,
        convo: Conversation,
        message: str,
        k: int = 3,
        attachments: dict[str, Path] | None = None,
        on_token: Callable[[str], None] | None = None,
        explain: bool = True,
        on_ranked: OnRanked | None = None,
        filters: Filters | None = None,
        on_understood: Callable[[list[Applied]], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> TurnResult:
        """One turn. ``on_ranked`` hears the ranked (id, title) list as soon as it is known,
        before any explanation is written. ``explain=False`` skips the LLM's intro and
        explanations (the simulated-user evaluation judges the recommendations only).
        ``filters`` are hard bounds on top of the request's (category, price, picture, sound);
        ``cancel``, once set, stops the turn's LLM use (a client that went away);
        ``on_understood`` hears the request's constraints as soon as they are parsed."""
        started = time.perf_counter()
        clock: Clock = {}
        runner = StepRunner(
            available=self.steps is not None, deadline_s=self.turn.llm_deadline_s, cancel=cancel
        )
        if self.steps is None and self.turn.uses_llm:
            runner.notices.append(
                "No LLM configured: embedding ranking with template explanations."
            )
        attached = read_attachments(attachments or {}, self.models, self.settings.index)
        runner.notices += attached.notices
        message = attached.message(message, DEFAULT_MESSAGE)
        request, profile = self.understand(convo, message, runner, clock)
        if on_understood is not None and request is not None:
            on_understood(list(request.applied))  # what the turn looks for, before any search
        bounds = filters or Filters()
        ctx = self.retrieve(
            convo, message, request, profile, attachments or {}, runner, clock, bounds
        )
        self.search_pictures(ctx, attached.pictures, request, runner, bounds)
        self.use_tools(ctx, message, runner, clock)
        chosen = self.rank(ctx, convo, request, profile, k, bounds)
        ranked_at = time.perf_counter()
        if on_ranked is not None:
            on_ranked([(s.candidate.id, s.candidate.title) for s in chosen])
        writer = runner if explain else StepRunner(available=False)
        intro, recommendations = self.explain(
            chosen, convo, message, request, profile, writer, clock, on_token if explain else None
        )
        self.remember(convo, message, intro, recommendations, profile, request)
        total = time.perf_counter() - started
        timings = {
            "total": total,
            "ranked": ranked_at - started,
            "llm": clock.get("llm", 0.0),
            "tools": ctx.seconds["tools"],
            "retrieval": ctx.seconds["retrieval"],
            "first_token_after_tools": (
                clock["first_token_at"] - ranked_at if "first_token_at" in clock else 0.0
            ),
        }
        timings["agent_overhead"] = max(0.0, total - timings["llm"])
        applied = request.applied if request is not None else []
        return TurnResult(
            intro, recommendations, profile, runner.notices, ctx.calls, timings, applied
        )


def profile_signals(profile: UserProfile) -> bool:
    """Whether the profile has likes or dislikes to weigh."""
    return bool(profile.likes or profile.dislikes)


def _template_intro(titles: list[str], listed: bool) -> str:
    if not titles:
        return "I found nothing that fits; describe it differently or relax a constraint."
    if not listed:
        return f"Here are {len(titles)} picks for you."
    if len(titles) == 1:
        return f"Here is a pick for you: {titles[0]}."
    return f"Here are {len(titles)} picks for you: {', '.join(titles[:-1])} and {titles[-1]}."


def _price(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
