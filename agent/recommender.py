"""One recommendation turn, as its steps: understand → retrieve → use tools → rank → explain →
remember.

* **understand**: the message becomes a typed :class:`~agent.request.Request` by rule (targets in
  the catalogue's taxonomy, exclusions, sound, price, references, standing preferences), refined
  by the LLM's reading with ``turn.reading_llm``; the profile notes likes and dislikes.
* **retrieve**: the request's query within its target categories, the LLM's expansions and
  reading (extra queries, asked while the base retrieval runs), neighbours of the items a
  follow-up refers to, the collaborative model on the user's history.
* **use tools** (``turn.tools_llm``): the LLM plans further retrievals as tool calls.
* **rank** (:mod:`agent.ranking`): one ranking from the candidate buffer, the request's hard
  constraints checked on each item, seen items dropped.
* **explain** (:mod:`agent.explain_turn`): reasons computed from the request and the item's
  fields, phrased by the wording file or by the LLM (checked against the facts and reasons).
* **remember**: the conversation, the request (later turns refer back to it) and the profile.

The turn's state is one :class:`~agent.turn_state.Turn` that the steps read. Each LLM step runs
through a :class:`~agent.steps.StepRunner`: an unusable answer falls back for that step, an
unreachable endpoint for the rest of the turn, and the user gets a notice. A Recommender holds
no per-turn state, so one instance can serve many conversations at once. Its constructor does
no I/O: :meth:`Recommender.build` reads what it needs from the store and the data folder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from agent import toolkit
from agent.attachments import read_attachments
from agent.catalogue_view import Catalogue, load_collab
from agent.conversation import Conversation, Recommendation, TurnResult
from agent.explain_turn import explain
from agent.feedback import Feedback, Opinions
from agent.fusion import Scored
from agent.llm import ChatFactory
from agent.llm_steps import Clock, LLMSteps
from agent.profile import MAX_PHRASES, PHRASE_CHARS, ProfileUpdate, UserProfile, merge, union
from agent.ranking import rank
from agent.request_types import Applied, Request
from agent.resolve import apply_reading
from agent.steps import StepRunner, background
from agent.toolkit import TurnContext, retrieve_collab, retrieve_knowledge, retrieve_text
from agent.turn_state import Turn
from agent.understanding import Understanding, paths_near
from indexing.knowledge import KnowledgeStore
from indexing.photo_search import search_photo
from indexing.records import Filters, Hit
from indexing.store import Store
from tools.collaborative import CollabModel
from tools.config import FusionWeights, Settings
from tools.errors import InputError, MediaError
from tools.factory import Models

OnRanked = Callable[[list[tuple[str, str]]], None]
DEFAULT_MESSAGE = "Recommend something I would like."
REQUEST_DEPTH = 60  # candidates per retrieval when the request's constraints filter them after


class Recommender:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        models: Models,
        chat: ChatFactory | None,
        catalogue: Catalogue,
        weights: FusionWeights | None = None,
        collab: CollabModel | None = None,
        knowledge: KnowledgeStore | None = None,
    ) -> None:
        """Binds the parts; reads nothing. Use :meth:`build` to read them from the store."""
        self.settings = settings
        self.turn = settings.turn
        self.store = store
        self.models = models
        self.chat = chat
        self.catalogue = catalogue
        self.weights = weights or settings.fusion
        self.collab = collab
        self.knowledge = knowledge
        self.steps = LLMSteps(chat, settings.llm, catalogue.titles) if chat is not None else None
        self.understanding = Understanding.of(
            catalogue.taxonomy, models.text_embedder.embed, self.turn.synonym_threshold
        )

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        models: Models,
        chat: ChatFactory | None,
        collab: CollabModel | None = None,
    ) -> Recommender:
        """A Recommender over ``store``: its catalogue, the collaborative model under
        DATA_DIR/collab that covers the store's items (or ``settings.collab_dir``) with the
        fusion weights tuned beside it, the knowledge collection when the turn searches it; the
        text embedder is loaded now, not inside the first turn's timings."""
        catalogue = Catalogue.of(store)
        tuned = None
        if collab is None:
            collab, tuned = load_collab(settings, catalogue.ids)
        chosen = settings.fusion.model_dump()
        if tuned and "fusion" not in settings.model_fields_set:  # the user's own weights win
            chosen.update(tuned)
        knowledge = KnowledgeStore.for_turn(store, settings.turn)
        models.text_embedder.load()
        weights = FusionWeights(**chosen)
        return cls(settings, store, models, chat, catalogue, weights, collab, knowledge)

    # -- the steps ----------------------------------------------------------------------------
    @property
    def reads_twice(self) -> bool:
        """Whether a turn has a rules' list to show before the LLM's reading refines it."""
        return self.steps is not None and self.turn.reading_llm and self.turn.rules

    def understand(
        self, convo: Conversation, message: str, runner: StepRunner, clock: Clock
    ) -> tuple[Request, UserProfile]:
        """The request and the profile for this turn."""
        profile = convo.profile
        if self.steps is not None and self.turn.profile_llm:
            steps = self.steps
            profile = runner.run(
                "the profile update", lambda: steps.update_profile(convo, message, clock), profile
            )
        if self.turn.rules:
            request = self.understanding.request(convo, message)
        else:  # the ablation "LLM reading only": the model's reading alone shapes the turn
            request = Request(message=message, query=message)
        if self.steps is not None and self.turn.reading_llm:
            steps = self.steps
            reading = runner.run("the reading", lambda: steps.read(convo, message, clock), None)
            if reading is not None:
                words, near = self.understanding.vocabulary, partial(paths_near, self.store)
                request = apply_reading(request, reading, convo, words, near)
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
                "standing": [*profile.standing, *request.standing],
                "turns": convo.profile.turns + 1,
            }
        )
        return request, profile

    def retrieve(self, turn: Turn) -> tuple[Turn, TurnContext]:
        """The retrievals; returns the turn with its request confirmed against the store (an
        uncertain target the nearest items do not back is dropped; items like an excluded
        phrase are excluded too) and the context that holds the candidates."""
        convo, understanding = turn.convo, self.understanding
        ctx = TurnContext(
            self.store,
            self.models,
            self.settings.index,
            filters=turn.bounds,
            history_titles=convo.history_titles,
            attachments=dict(turn.attachments),
            collab=self.collab,
            history_ids=[*convo.history_ids, *Opinions.of(convo.feedback).liked],
        )
        liked = Opinions.of(convo.feedback).liked[-3:]
        query = turn.request.query

        def probe() -> list[Hit]:
            with ctx.timed("retrieval"):
                return self.store.search_text(query, 20)

        request, notices = understanding.within_catalogue(turn.request.model_copy(deep=True))
        turn.runner.notices += notices
        request = understanding.exclude_similar(understanding.confirm(request, probe), self.store)
        query, filters = request.query, self.filters(request, turn.bounds)
        expand = self.steps is not None and self.turn.expansion_llm and bool(request.residual)
        expansions: list[str] = []
        with background(1) as pool:
            pending = None
            if expand and self.steps is not None:
                pending = pool.submit(self.steps.expand, " ".join(query.split()), turn.clock)
            for f in filters:  # the base retrieval runs while the model thinks
                retrieve_text(ctx, query, filters=f, source=f"text:{f.category}", k=REQUEST_DEPTH)
                if self.knowledge is not None:
                    fields = self.turn.knowledge_fields
                    retrieve_knowledge(ctx, self.knowledge, query, fields, f)
            for seed in request.seeds[:5] if not request.residual else []:  # new words lead
                with ctx.timed("retrieval"):
                    near = self.store.neighbours(seed, REQUEST_DEPTH // 3, filters[0])
                ctx.buffer.add(f"similar:{seed}", "text", near.get("text", []))
            retrieve_collab(ctx)
            toolkit.retrieve_near_liked(ctx, liked, filters[0], REQUEST_DEPTH // 3)
            if pending is not None:
                expansions = turn.runner.run("the expansion", pending.result, [])
        if expansions:  # one list for all kinds: a small model's guesses are noisy
            request = request.model_copy(
                update={
                    "expansions": expansions,
                    "applied": [
                        *request.applied,
                        Applied(kind="expansion", value=", ".join(expansions), source="model"),
                    ],
                }
            )
            for f in filters:
                retrieve_text(
                    ctx, ", ".join(expansions), filters=f, source=f"expansion:{f.category}"
                )
        for extra in request.queries:  # the model's reading: what is wanted; the fitting kinds
            for f in filters:
                retrieve_text(ctx, extra, filters=f, source=f"reading:{extra}:{f.category}")
                if self.knowledge is not None:  # its words against what items are known for
                    fields, asked = self.turn.knowledge_fields, f"reading:{extra}"
                    retrieve_knowledge(ctx, self.knowledge, extra, fields, f, asked_by=asked)
        return turn.with_request(request), ctx

    def filters(self, request: Request, bounds: Filters) -> list[Filters]:
        """The store filters of the request's targets, within the caller's bounds."""
        return [f.within(bounds) for f in self.understanding.filters(request)]

    def search_pictures(self, turn: Turn, ctx: TurnContext) -> None:
        """Items whose pictures look like the attached ones (within the request's targets)."""
        for picture in turn.pictures:
            try:
                for f in self.filters(turn.request, turn.bounds):
                    with ctx.timed("retrieval"):
                        found = search_photo(
                            self.store, self.models.photo_tagger, picture, REQUEST_DEPTH, f
                        )
                    for kind, hits in found.by_kind().items():
                        ctx.buffer.add(f"{kind}:{picture.name}:{f.category}", kind, hits)
            except MediaError as exc:
                turn.runner.notices.append(
                    f"The attached picture {picture.name} cannot be used: {exc}"
                )

    def use_tools(self, turn: Turn, ctx: TurnContext) -> None:
        """The model's own retrievals (tool calls), added to ``ctx.buffer``."""
        if self.steps is not None and self.turn.tools_llm:
            steps = self.steps
            turn.runner.run(
                "tool calling", lambda: steps.use_tools(ctx, turn.message, turn.clock), None
            )

    def rank(self, turn: Turn, ctx: TurnContext, k: int) -> list[Scored]:
        """The top ``k`` candidates that fit (:func:`agent.ranking.rank`)."""
        if self.knowledge is not None and turn.request.excludes_words:
            toolkit.note_known(
                ctx.buffer.candidates(), self.knowledge, self.turn.exclusion_knowledge
            )
        spread_at = self.turn.near_duplicate
        return rank(
            turn, ctx, k, self.understanding, self.weights, self.store, self.models, spread_at
        )

    def first_look(
        self, convo: Conversation, message: str, bounds: Filters, pictures: list[Path], k: int
    ) -> list[Scored]:
        """The rules' ranking of ``message``, before the LLM's reading refines it: no LLM step
        runs, nothing is remembered."""
        request = self.understanding.request(convo, message)
        quiet = StepRunner(available=False)
        turn = Turn(convo, message, request, convo.profile, quiet, {}, bounds, {}, pictures)
        turn, ctx = self.retrieve(turn)
        self.search_pictures(turn, ctx)
        return self.rank(turn, ctx, k)

    def explain(
        self,
        turn: Turn,
        chosen: list[Scored],
        writer: StepRunner,
        on_token: Callable[[str], None] | None = None,
    ) -> tuple[str, list[Recommendation]]:
        """The reply's first sentence and each chosen item with its explanation
        (:func:`agent.explain_turn.explain`)."""
        vocabulary = self.understanding.vocabulary
        return explain(turn, chosen, self.steps, self.turn, vocabulary, writer, on_token)

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
        on_first_look: OnRanked | None = None,
    ) -> TurnResult:
        """One turn. ``on_ranked`` hears the ranked (id, title) list as soon as it is known,
        before any explanation is written. ``explain=False`` skips the LLM's intro and
        explanations (the simulated-user evaluation judges the recommendations only).
        ``filters`` are hard bounds on top of the request's (category, price, picture, sound);
        ``cancel``, once set, stops the turn's LLM use (a client that went away);
        ``on_understood`` hears the request's constraints as soon as they are parsed;
        ``on_first_look`` hears the rules' ranked list before the LLM's reading (when it runs)."""
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
        bounds, pictures = filters or Filters(), list(attached.pictures)
        first_at = None
        if on_first_look is not None and self.reads_twice:
            look = self.first_look(convo, message, bounds, pictures, k)
            on_first_look([(s.candidate.id, s.candidate.title) for s in look])
            first_at = time.perf_counter()
        request, profile = self.understand(convo, message, runner, clock)
        if on_understood is not None:
            on_understood(list(request.applied))  # what the turn looks for, before any search
        turn = Turn(
            convo,
            message,
            request,
            profile,
            runner,
            clock,
            bounds,
            dict(attachments or {}),
            pictures,
        )
        turn, ctx = self.retrieve(turn)
        self.search_pictures(turn, ctx)
        self.use_tools(turn, ctx)
        chosen = self.rank(turn, ctx, k)
        ranked_at = time.perf_counter()
        if on_ranked is not None:
            on_ranked([(s.candidate.id, s.candidate.title) for s in chosen])
        writer = runner if explain else StepRunner(available=False)
        intro, recommendations = self.explain(turn, chosen, writer, on_token if explain else None)
        turn.remember(intro, recommendations)
        total = time.perf_counter() - started
        timings = {
            "total": total,
            "ranked": ranked_at - started,
            "first_ranked": (first_at or ranked_at) - started,
            "llm": clock.get("llm", 0.0),
            "tools": ctx.seconds["tools"],
            "retrieval": ctx.seconds["retrieval"],
            "first_token_after_tools": (
                clock["first_token_at"] - ranked_at if "first_token_at" in clock else 0.0
            ),
        }
        timings["agent_overhead"] = max(0.0, total - timings["llm"])
        return TurnResult(
            intro,
            recommendations,
            profile,
            runner.notices,
            ctx.calls,
            timings,
            turn.request.applied,
        )
