"""The rank step: one fused ranking of the turn's candidate buffer, with the request's hard
constraints checked on each item. Recommendations only ever come out of the buffer."""

from __future__ import annotations

from agent.buffer import Candidate
from agent.feedback import Opinions, feedback_scores
from agent.fusion import Scored, fuse
from agent.preferences import preference_scores
from agent.spread import spread
from agent.toolkit import TurnContext
from agent.turn_state import Turn
from agent.understanding import Understanding
from indexing.store import Store
from tools.config import FusionWeights
from tools.factory import Models

SPREAD_WINDOW = 4  # pages of k looked at for different items before a near-duplicate


def rank(
    turn: Turn,
    ctx: TurnContext,
    k: int,
    understanding: Understanding,
    weights: FusionWeights,
    store: Store,
    models: Models,
    near_duplicate: float,
) -> list[Scored]:
    """The top ``k`` fused candidates that satisfy the constraints, seen items left out.
    When the request's targets leave fewer than ``k``, the rest come from outside them
    (never from an exclusion, never a disliked item or its near-duplicate). An item at least
    ``near_duplicate`` alike to one placed before it waits behind the next different ones
    (:mod:`agent.spread`)."""
    request, profile, convo = turn.request, turn.profile, turn.convo
    candidates = ctx.buffer.candidates()
    opinions = Opinions.of(convo.feedback)
    ids = [c.id for c in candidates]
    vectors = (
        store.text_vectors([*ids, *opinions.liked, *opinions.disliked])
        if profile.likes or profile.dislikes or opinions
        else {}
    )
    preference = preference_scores(
        {i: vectors[i] for i in ids if i in vectors},
        models.text_embedder.embed,
        profile.likes,
        profile.dislikes,
    )
    feedback, blocked = feedback_scores(vectors, opinions) if opinions else ({}, set())
    never = set(convo.history_ids) | blocked  # disliked items never come back
    exclude = never | set(convo.recommended)

    def ranked(taken: set[str], relax: int = 0) -> list[Scored]:
        allowed = understanding.allowed(request, relax)

        def fits(c: Candidate) -> bool:
            return allowed(c) and turn.bounds.admits(c.facts)

        return fuse(candidates, weights, taken, fits, preference, feedback)

    # near-duplicates (three strawberries) spread apart within the first few pages
    window = ranked(exclude)[: k * SPREAD_WINDOW]
    if near_duplicate < 1.0 and len(window) > 1:
        titles = [s.candidate.title or s.candidate.id for s in window]
        rows = models.text_embedder.embed(titles)
        ids = [s.candidate.id for s in window]
        vectors_by_id = {i: rows[n] for n, i in enumerate(ids)}
        relevance = [s.breakdown.get("text", s.total) for s in window]
        chosen = spread(window, ids, vectors_by_id, k, near_duplicate, relevance)
    else:
        chosen = window[:k]
    # Too few inside the targets: what fits that was shown before (the constraint matters
    # more than novelty, unless the user asked for something different), then the
    # targets' parents, then anywhere.
    passes = [(never, 0)] if not request.different else []
    for taken, relax in [*passes, (exclude, 1), (exclude, 2)]:
        if len(chosen) >= k or not request.targets:
            break
        chosen += ranked(taken | {s.candidate.id for s in chosen}, relax)[: k - len(chosen)]
    return chosen
