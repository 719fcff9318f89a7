"""The LLM's reading (:mod:`agent.reading`) applied to the rules' request: the model's words are
resolved against the catalogue (taxonomy nodes by their own names, items by embedding search),
never trusted as categories or ids, and the rules validate what the model says.

* sound: "yes" / "no" set or clear the sound requirement; "unsaid" keeps the rules'.
* a new topic drops what the rules carried over from an earlier turn (targets, exclusions, sound,
  references); a continuation with no target of its own keeps the earlier turn's targets. Any
  earlier target kept (by the rules or for the model's "it continues") must be backed by the
  catalogue: enough of the items nearest what the model says is wanted lie within it, unless
  the model names an earlier pick. Only the targets go: carried exclusions and sound stay.
* the rules' own targets of this message face the same check, against the model's words and
  the message's own: a target is dropped only when neither's nearest items back it ("making
  a farm game: what carries many people?" names the farm animals by a word, but both lie
  with the vehicles); a target the catalogue does not back would filter out every fit.
* what is wanted and the fitting kinds become two extra searches, never targets: a paraphrase
  ("a farming tool") is no evidence of a taxonomy node, and a wrong target filters out
  everything that fits.
* what to avoid is excluded by meaning (the items nearest each phrase, :meth:`Understanding.
  exclude_similar`, except those nearer a kind the model says fits: "avoid aircraft" beside
  the kind "airplane" keeps the planes) and by node when a phrase's head names one; never a
  node the request wants.
* in a message that negates nothing (by the rules), a phrase to avoid that only names an
  earlier pick is dropped unless the shopper's own words name it (a small model lists the
  picks it was shown as things to avoid: "back to the birds" would lose the birds like the
  robin it showed before). After a negation the model may name picks it rules out ("not in a
  rock band": the guitars shown).
* the pick referred to seeds "more like that".
* kinds that only repeat the titles of the picks shown last (two or more, in a message that
  points at no pick) are copies of the list, not knowledge, and are not searched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent.conversation import Conversation
from agent.reading import Reading
from agent.request import head_word
from agent.request_types import Applied, Request
from agent.vocabulary import Vocabulary
from agent.words import content_words, folded, stem, stems

MODEL = "model"
BACKING_SHARE = 0.3  # of the items nearest the model's words, inside the targets it continues
COPIED_KINDS = 2  # kinds that are titles of the picks shown last: the model copied the list

Probe = Callable[[str], Sequence[str]]  # a phrase -> the taxonomy paths of its nearest items


def _carried(applied: Applied) -> bool:
    return applied.source.startswith("earlier turn")


def _covers(node: str, wanted: str) -> bool:
    """Whether excluding ``node`` would exclude ``wanted`` (the same node or one inside it)."""
    return wanted == node or wanted.startswith(node + "/")


def apply_reading(
    request: Request,
    reading: Reading,
    convo: Conversation,
    vocabulary: Vocabulary,
    probe: Probe | None = None,
) -> Request:
    """``request`` (the rules') with what the model read in the same message; ``probe`` gives
    the taxonomy paths of the items nearest a phrase (without it, a continuation is trusted)."""
    earlier = convo.requests[-1] if convo.requests else None
    avoided = {stem(w) for phrase in reading.avoid for w in content_words(phrase)}
    kinds = [k for k in reading.kinds if k and not _mentions(k, avoided)]  # "basketball": ball
    kinds = _not_copied(kinds, earlier.titles if earlier else [], reading.refers_to)
    near = _nearest(", ".join(p for p in (reading.wanted, *kinds) if p.strip()), probe)
    if reading.new_topic and reading.refers_to == 0 and any(_carried(a) for a in request.applied):
        request = _without_carried(request)
    carried = [a.value for a in request.applied if a.kind == "target" and _carried(a)]
    if carried and reading.refers_to == 0 and not _backed(carried, near(), vocabulary):
        request.targets = [t for t in request.targets if t not in carried]  # "and a sweet treat"
        request.applied = [a for a in request.applied if not (a.kind == "target" and _carried(a))]
    own = [a.value for a in request.applied if a.kind == "target" and not _carried(a)]
    said = _nearest(request.query, probe)  # the message's own words, negations left out
    if (
        own
        and reading.refers_to == 0
        and not _backed(own, near(), vocabulary)
        and not _backed(own, said(), vocabulary)
    ):
        request.targets = [t for t in request.targets if t not in own]  # "a farm game: what
        request.applied = [  # carries many people?": not the farm animals
            a for a in request.applied if not (a.kind == "target" and a.value in own)
        ]
        own = []
    if (
        not request.targets
        and not own
        and not reading.new_topic
        and earlier is not None
        and (reading.refers_to > 0 or _backed(earlier.targets, near(), vocabulary))
    ):
        request.targets = list(earlier.targets)  # it continues: the earlier turn's targets hold
        request.applied += [
            Applied(kind="target", value=t, source=f"{MODEL}: continues") for t in earlier.targets
        ]
    if reading.sound == "yes" and not request.needs_sound:
        request.needs_sound = True
        request.applied.append(Applied(kind="sound", value="has a sound effect", source=MODEL))
    elif reading.sound == "no" and request.needs_sound:
        request.needs_sound = False
        request.applied = [a for a in request.applied if a.kind != "sound"]
    wanted = [head_word(p) for p in (reading.wanted, *reading.kinds)]
    kept = [m.node.path for m in vocabulary.resolve([w for w in wanted if w], synonyms=False)]
    negates = any(a.kind == "exclude" and a.source == "rule" for a in request.applied)
    avoid = reading.avoid if negates else _rejected(reading.avoid, convo, request.message)
    for phrase in avoid:
        _avoid(request, phrase, vocabulary, [*request.targets, *kept])
    if reading.refers_to and earlier is not None and reading.refers_to <= len(earlier.recommended):
        picked = earlier.recommended[reading.refers_to - 1]
        request.seeds = [picked]
        request.applied.append(Applied(kind="reference", value=picked, source=MODEL))
    request.kinds = kinds  # an item nearer one of them than an avoided phrase stays
    queries = [reading.wanted, ", ".join(kinds)]  # two sources: the kinds vote together
    request.queries = list(dict.fromkeys(q for q in queries if q.strip()))
    if request.queries:
        request.applied.append(
            Applied(kind="expansion", value=", ".join(request.queries), source=MODEL)
        )
    return request


def _nearest(phrase: str, probe: Probe | None) -> Callable[[], list[str] | None]:
    """The paths of the items nearest ``phrase``, searched at most once and only when asked;
    None when there is nothing to search with."""
    found: list[list[str] | None] = []

    def near() -> list[str] | None:
        if not found:
            found.append(list(probe(phrase)) if probe is not None and phrase else None)
        return found[0]

    return near


def _backed(targets: list[str], paths: list[str] | None, vocabulary: Vocabulary) -> bool:
    """Whether the catalogue backs keeping ``targets``: enough of the items nearest what the
    model says is wanted (``paths``) lie within them ("a pet" after vehicles lies elsewhere).
    Without paths the model is trusted."""
    nodes = [n for t in targets if (n := vocabulary.node(t)) is not None]
    if not paths or not nodes:
        return True
    inside = sum(any(n.contains(p) for n in nodes) for p in paths)
    return inside >= BACKING_SHARE * len(paths)


def _mentions(kind: str, stems: set[str]) -> bool:
    """Whether ``kind`` names an avoided thing, also in a compound's start or end
    ("basketball": ball), not inside another word ("scarf" is no car)."""
    words = kind.lower().split()
    return any(len(s) >= 3 and (w.startswith(s) or w.endswith(s)) for s in stems for w in words)


def _not_copied(kinds: list[str], shown: Sequence[str], refers_to: int) -> list[str]:
    """``kinds`` without the titles of the picks shown last, when two or more of them are
    such titles and the message points at no pick: a small model copies the list it was shown
    ("a vehicle that goes on water" after fruit: "cherries, apple green"), which is no
    knowledge of what fits."""
    titles = {folded(t) for t in shown}
    copied = [k for k in kinds if folded(k) in titles]
    if refers_to or len(copied) < COPIED_KINDS:
        return kinds
    return [k for k in kinds if k not in copied]


def _rejected(avoid: Sequence[str], convo: Conversation, message: str) -> list[str]:
    """The phrases of ``avoid`` the shopper rejected, for a message that negates nothing: a
    phrase that only names an earlier pick (a small model lists the picks shown) stays only
    when the shopper's own words name it."""
    titles = [set(stems(t)) for turn in convo.requests for t in turn.titles]
    said = {s for m in [*(t.message for t in convo.requests), message] for s in stems(m)}
    kept = []
    for phrase in avoid:
        words = set(stems(phrase))
        a_pick = bool(words) and any(words <= title for title in titles)
        if not a_pick or words & said:
            kept.append(phrase)
    return kept


def _without_carried(request: Request) -> Request:
    carried = [a for a in request.applied if _carried(a)]
    values = {a.value for a in carried}
    targets = {a.value for a in carried if a.kind == "target"}
    request.targets = [t for t in request.targets if t not in targets]
    request.exclude_paths = [p for p in request.exclude_paths if p not in values]
    request.exclude_terms = [t for t in request.exclude_terms if t not in values]
    if any(a.kind == "sound" for a in carried):
        request.needs_sound = False
    if any(a.kind == "reference" for a in carried):
        request.seeds = []
    request.applied = [a for a in request.applied if not _carried(a)]
    request.follow_up = False
    return request


def _avoid(request: Request, phrase: str, vocabulary: Vocabulary, wanted: list[str]) -> None:
    words = folded(phrase)
    if not words or words in request.exclude_phrases:
        return
    head = head_word(words)
    nodes = [m.node.path for m in vocabulary.resolve([head] if head else [], synonyms=False)]
    if any(_covers(n, t) for n in nodes for t in wanted):
        return  # "a wild bird, not a farm bird": the avoided head is what is wanted
    # (a node inside what is wanted is excluded: "an animal, but no birds")
    request.exclude_phrases.append(words)
    for node in nodes:
        if node not in request.exclude_paths:
            request.exclude_paths.append(node)
            request.applied.append(Applied(kind="exclude", value=node, source=MODEL, words=words))
