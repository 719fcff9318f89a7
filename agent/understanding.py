"""Request understanding bound to one catalogue: its vocabulary, the parse of a message in its
conversation, and what the parsed request allows (targets, exclusions, sound, price, diet)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from agent.buffer import Candidate
from agent.conversation import Conversation
from agent.language import request_patterns
from agent.reasons import has_sound_effect
from agent.request import cheaper_than, parse
from agent.request_types import Applied, Request
from agent.vocabulary import Embed, Vocabulary, item_path
from agent.wording import say
from agent.words import compound_heads, name_words, stem, stems
from indexing.records import Filters, Hit, Taxonomy
from indexing.store import Store

PROBE_DEPTH = 10  # nearest items that vote on an uncertain target
SIMILAR_FLOOR = 0.40  # an item this similar to an excluded phrase is excluded too …
SIMILAR_SHARE = 0.85  # … when it is also this close to the phrase's nearest item


def _item_stems(candidate: Candidate) -> set[str]:
    """What an exclusion is checked against: the stems of the item's title, description and
    path, the kind its title's last word ends in ("basketball": ball), and what other
    sources know it as (:attr:`Candidate.known`)."""
    facts = candidate.facts
    title = str(facts.get("title") or "")
    words = set(stems(title))
    words |= set(stems(str(facts.get("description") or "")))
    words |= {stem(w) for w in name_words(item_path(facts))}
    last = name_words(title)[-1:]  # the title's head: a "football helmet" is no ball
    words |= {head for w in last for head in compound_heads(w)}
    return words | set(stems(candidate.known))


@dataclass
class Understanding:
    vocabulary: Vocabulary

    @classmethod
    def of(cls, taxonomy: Taxonomy, embed: Embed | None, threshold: float) -> Understanding:
        return cls(Vocabulary(taxonomy, embed, threshold))

    def request(self, convo: Conversation, message: str) -> Request:
        """``message`` understood in its conversation (earlier turns, standing preferences)."""
        request = parse(
            message,
            self.vocabulary,
            convo.requests,
            convo.profile.standing,
            turn=len(convo.requests) + 1,
        )
        if convo.requests:
            shown = [p for p in convo.requests[-1].prices if p is not None]
            request = cheaper_than(request, message, shown)
        return request

    def within_catalogue(self, request: Request) -> tuple[Request, list[str]]:
        """``request`` without the wishes no item of this catalogue can meet (sound where no
        item has audio nor says whether it has a sound effect; a price bound where no item has
        a price), and a notice for each: such a wish would filter every item away."""
        taxonomy, update = self.vocabulary.taxonomy, dict[str, object]()
        left_out: list[tuple[set[str], str, str]] = []  # (applied kinds, wording key, default)
        sound_known = taxonomy.with_audio or self.vocabulary.has_sound_attribute
        if request.needs_sound and not sound_known:
            left_out.append(({"sound"}, "no_sound", "sound"))
            update["needs_sound"] = False
        bounded = request.min_price is not None or request.max_price is not None
        if bounded and not taxonomy.with_price:
            left_out.append(({"min_price", "max_price"}, "no_price", "a price"))
            update.update(min_price=None, max_price=None)
        if not left_out:
            return request, []
        notices = []
        for kinds, key, default in left_out:
            said = " / ".join(a.words or a.value for a in request.applied if a.kind in kinds)
            notices.append(say("catalogue", key, words=said or default))
        gone = {kind for kinds, _, _ in left_out for kind in kinds}
        update["applied"] = [a for a in request.applied if a.kind not in gone]
        return request.model_copy(update=update), notices

    def confirm(self, request: Request, probe: Callable[[], Sequence[Hit]]) -> Request:
        """Keep a target named by a synonym, or by a word several nodes share ("music": the
        instruments or the notes), only where the query's nearest items (``probe``: an
        unfiltered search, run only when some target is uncertain) actually sit; a synonym with
        no such evidence filters nothing."""
        groups: dict[str, list[Applied]] = {}
        for a in request.applied:
            if a.kind == "target" and (a.source == "rule" or a.source.startswith("embedding")):
                groups.setdefault(a.words, []).append(a)

        def by_synonym(group: list[Applied]) -> bool:
            return any(a.source.startswith("embedding") for a in group)

        uncertain = [g for g in groups.values() if len(g) > 1 or by_synonym(g)]
        if not uncertain:
            return request
        paths = [item_path(h.facts) for h in probe()[:PROBE_DEPTH]]
        dropped: set[str] = set()
        for group in uncertain:
            synonym = by_synonym(group)
            counts = {
                a.value: sum(n.contains(p) for p in paths)
                for a in group
                if (n := self.vocabulary.node(a.value)) is not None
            }
            best = max(counts.values(), default=0)
            for a in group:
                weak = counts.get(a.value, 0) < max(1.0, best / 2)
                if weak and (synonym or best > 0):
                    dropped.add(a.value)
        if dropped:
            request.targets = [t for t in request.targets if t not in dropped]
            request.applied = [
                a for a in request.applied if not (a.kind == "target" and a.value in dropped)
            ]
        return request

    def exclude_similar(self, request: Request, store: Store) -> Request:
        """What a negation names, by meaning too: the items nearest each excluded phrase
        ("trucks" → the lorries and the tow truck), at least ``SIMILAR_FLOOR`` similar and
        within ``SIMILAR_SHARE`` of the nearest one."""
        phrases, kinds, embed = request.exclude_phrases, request.kinds, self.vocabulary.embed
        said = _unit(embed([*phrases, *kinds])) if phrases and kinds and embed else None
        for n, phrase in enumerate(phrases):
            hits = store.search_text(phrase, 30)
            if not hits:
                continue
            floor = max(SIMILAR_FLOOR, SIMILAR_SHARE * hits[0].score)
            near = [h.id for h in hits if h.score >= floor]
            if said is not None and near:
                near = _nearer_than_kinds(near, said[n], said[len(phrases) :], store)
            request.exclude_ids = list(dict.fromkeys([*request.exclude_ids, *near]))
            if near:
                request.applied.append(
                    Applied(
                        kind="exclude",
                        value=f"{len(near)} items like “{phrase}”",
                        source="embedding",
                        words=phrase,
                    )
                )
        return request

    def filters(self, request: Request) -> list[Filters]:
        """Store filters for the retrievals: one per target category (a subcategory is checked
        afterwards, the store filters on categories only), or one without a category."""
        categories = list(dict.fromkeys(t.split("/")[0] for t in request.targets))
        audio = True if request.needs_sound and not self.vocabulary.has_sound_attribute else None
        base = Filters(None, request.min_price, request.max_price, None, audio)
        if not categories:
            return [base]
        return [Filters(c, request.min_price, request.max_price, None, audio) for c in categories]

    def allowed(self, request: Request, relax: int = 0) -> Callable[[Candidate], bool]:
        """Whether a candidate satisfies the request's hard constraints. ``relax`` widens the
        targets: 1 to their parent nodes, 2 drops them; an exclusion is never relaxed."""
        paths = request.targets
        if relax == 1:
            paths = list(dict.fromkeys(t.rsplit("/", 1)[0] for t in request.targets))
        with_targets = relax < 2
        targets = [n for t in paths if (n := self.vocabulary.node(t))]
        excluded_ids = set(request.exclude_ids)
        excluded = [n for p in request.exclude_paths if (n := self.vocabulary.node(p))]
        terms = set(request.exclude_terms)
        diet = set(request.diet_terms)
        by_attribute = self.vocabulary.has_sound_attribute

        def allowed(candidate: Candidate) -> bool:
            path = item_path(candidate.facts)
            if candidate.id in excluded_ids:
                return False
            if with_targets and targets and not any(n.contains(path) for n in targets):
                return False
            if any(n.contains(path) for n in excluded):
                return False
            words = _item_stems(candidate)
            if terms & words:
                return False
            # a diet rules out food, not animals
            if diet & words and words & request_patterns().food_stems:
                return False
            if request.needs_sound and not has_sound_effect(candidate.facts, by_attribute):
                return False
            price = candidate.facts.get("price")
            return within_price(price, request.min_price, request.max_price)

        return allowed


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    unit: np.ndarray = rows / (np.linalg.norm(rows, axis=-1, keepdims=True) + 1e-12)
    return unit


def _nearer_than_kinds(
    ids: list[str], phrase: np.ndarray, kinds: np.ndarray, store: Store
) -> list[str]:
    """Of the items near an avoided phrase, those nearer it than every kind the reading says
    fits (unit vectors): a model that says "avoid aircraft" while it names "airplane" as
    wanted keeps the planes; "avoid farm birds" beside "sparrow" still drops the hen."""
    vectors = store.text_vectors(ids)
    kept = []
    for item_id in ids:
        vector = vectors.get(item_id)
        if vector is None:
            kept.append(item_id)
            continue
        item = _unit(vector)
        if float(phrase @ item) >= float((kinds @ item).max()):
            kept.append(item_id)
    return kept


def paths_near(store: Store, phrase: str) -> list[str]:
    """The taxonomy paths of the items nearest ``phrase`` (an unfiltered search)."""
    return [item_path(h.facts) for h in store.search_text(phrase, PROBE_DEPTH)]


def seen_titles(convo: Conversation, ids: Collection[str]) -> dict[str, str]:
    """Titles of earlier recommendations, by id (for "more like that" reasons)."""
    out: dict[str, str] = {}
    for turn in convo.requests:
        out.update(zip(turn.recommended, turn.titles, strict=False))
    return {i: out[i] for i in ids if i in out}


def within_price(price: object, min_price: float | None, max_price: float | None) -> bool:
    """Whether a price meets the bounds; an item without a price meets none."""
    if min_price is None and max_price is None:
        return True
    if not isinstance(price, int | float):
        return False
    return (max_price is None or price <= max_price) and (min_price is None or price >= min_price)
