"""Request understanding: each message, with the turns before it, becomes a typed
:class:`Request` by rule.

What the rules read (English):

* **targets**: the taxonomy nodes the message names ("a bird" → ``animals/birds``), matched
  against the catalogue's own vocabulary by stem or embedding (:mod:`agent.vocabulary`); the
  head of the request wins ("an insect that pollinates flowers" targets insects, not flowers).
* **exclusions** from negations: "no …", "not …", "without …", "anything but …", "except …",
  "other than …", "never show me …", "allergic to …", "scared of …": the nodes they name and the
  head word, so "a pet, but not a cat" drops cats and anything titled or described as a cat.
* **modality**: "that makes a noise", "I can hear", "with a sound effect" → has a sound effect.
* **price bounds**: "under 20", "at least 5", "cheaper" (than what was shown).
* **references** to earlier turns: "more like that", "the second one", "same again",
  "go back to …", "something different", "one that …"; a follow-up inherits the referenced
  turn's target, sound requirement and exclusions, a new topic inherits nothing.
* **standing preferences**: only what the user states as standing ("never …", "… ever",
  "always", "I'm allergic to …", "I'm vegetarian"); they stay in the profile for later turns.

The LLM may add expansions (concrete kinds for "an animal that hibernates"), used only as extra
search queries; nothing here takes an id or a category name from the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

from agent.language import request_patterns
from agent.request_types import Applied, Request, Standing, TurnMemory
from agent.vocabulary import Node, NodeMatch, Vocabulary
from agent.words import content_words, folded, stem, stems


def _negations(text: str) -> list[tuple[str, str, int, int]]:
    """(cue, phrase, start, end) for each negation; the phrase runs to the next boundary."""
    found = []
    cues = request_patterns()
    for match in cues.negation.finditer(text):
        rest = text[match.end() :]
        stop = cues.boundary.search(rest)
        phrase = rest[: stop.start()] if stop else rest
        if not content_words(phrase):
            continue
        found.append((match.group(0), phrase.strip(), match.start(), match.end() + len(phrase)))
    for match in cues.closed.finditer(text):  # "fruit's done": the topic comes first
        if content_words(match.group("topic")):
            found.append((match.group(0), match.group("topic"), match.start(), match.end()))
    found.sort(key=lambda item: item[2])
    kept: list[tuple[str, str, int, int]] = []
    for item in found:  # "never show me" and "no" inside one span: keep the outer one
        if not any(k[2] <= item[2] < k[3] for k in kept):
            kept.append(item)
    return kept


def _parts(phrase: str) -> list[str]:
    return [p for p in re.split(r"\bor\b|\band\b|,|/|\bnor\b", phrase) if content_words(p)]


def _head(words: list[str]) -> str:
    return words[-1] if words else ""


def head_word(phrase: str) -> str:
    """The head noun of a short noun phrase ("a bird that is not a farm bird" → "bird")."""
    parts = _phrases(folded(phrase))
    return _head(content_words(parts[0])) if parts else ""


def _phrases(text: str) -> list[str]:
    """``text`` cut before each marker that starts a new phrase ("that", "for", "but" …)."""
    cuts = [m.start() for m in request_patterns().head_end.finditer(text)]
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in pairwise(bounds) if text[a:b].strip()]


def _targets(positive: str, vocabulary: Vocabulary, pronoun: bool) -> list[NodeMatch]:
    """Nodes named by the request. Its head phrase decides, by its last word that names a node
    (the head noun: "a farm animal" → animals, not farming); when the head has no noun at all,
    the first later phrase that names a node ("something for Christmas"); a pronoun head ("one
    that lives where it is cold") names the kind of the turn referred to. A node's ancestors are
    dropped when the node itself was named."""
    phrases = [p for p in re.split(r"[.;!?,:]", positive) if p.strip()] or [positive]
    found: list[NodeMatch] = []
    used = len(phrases)
    for index, sentence in enumerate(phrases):
        used = index + 1
        parts = _phrases(sentence)
        if not parts:
            continue
        # later phrases only when the head has no noun of its own ("something for Christmas",
        # not "a person who helps in emergencies")
        later = not pronoun and not content_words(parts[0])
        order = [(parts[0], True)] + ([(p, False) for p in parts[1:]] if later else [])
        for phrase, is_head in order:
            words = content_words(phrase)
            for word in reversed(words) if is_head or len(words) <= 2 else words:
                found = vocabulary.match(word)
                if found:
                    break
            if found:
                break
        if found:
            break
    found = _narrowed(found, phrases[used:], vocabulary)
    paths = {m.node.path for m in found}
    return [m for m in found if not any(p.startswith(m.node.path + "/") for p in paths)]


def _narrowed(
    found: list[NodeMatch], clauses: Sequence[str], vocabulary: Vocabulary
) -> list[NodeMatch]:
    """A later clause that names a kind inside the target narrows it ("a vehicle for her, she
    loved planes" → planes). Only a separate clause: "an animal that eats fish" stays animals."""
    if not found:
        return found
    inner: list[NodeMatch] = []
    for clause in clauses:
        for m in vocabulary.resolve(content_words(clause)):
            if any(m.node.path.startswith(f.node.path + "/") for f in found):
                inner.append(m)
    return inner or found


def _referenced_turn(text: str, history: Sequence[TurnMemory]) -> TurnMemory | None:
    if not history:
        return None
    back = request_patterns().back.search(text)
    if back is None:
        return history[-1]
    wanted = set(stems(back.group("what")))
    for turn in reversed(history[:-1] or history):
        mentioned = set(stems(turn.message)) | {
            stem(w) for p in turn.targets for w in re.split(r"[/_-]", p)
        }
        if wanted & mentioned:
            return turn
    return history[-2] if len(history) > 1 else history[-1]


def parse(
    message: str,
    vocabulary: Vocabulary,
    history: Sequence[TurnMemory] = (),
    standing: Sequence[Standing] = (),
    turn: int = 1,
) -> Request:
    """Understand ``message`` given the earlier turns of the conversation (oldest first) and
    the standing preferences stated before."""
    cues = request_patterns()
    text = " ".join(message.lower().replace("’", "'").split())
    applied: list[Applied] = []
    exclude_paths: list[str] = []
    exclude_terms: list[str] = []
    exclude_phrases: list[str] = []
    new_standing: list[Standing] = []
    clauses = [c for c in re.split(r"[.;!?]", text) if c.strip()]
    standing_clauses = [c for c in clauses if cues.standing.search(c)]
    for before, clause in pairwise(clauses):  # "… no blades. Ever."
        if clause in standing_clauses and not content_words(cues.standing.sub(" ", clause)):
            standing_clauses.append(before)

    # Negations: what they name is excluded, and removed from what is searched for.
    positive = text
    negated: list[tuple[str, list[Node]]] = []  # (term, nodes) per negated part of the message

    def exclude(said: str, head: str, phrase: str, nodes: list[NodeMatch], lasting: bool) -> None:
        """Exclude ``nodes`` and the word ``head`` (``said``: the words shown for them)."""
        for m in nodes:
            exclude_paths.append(m.node.path)
            applied.append(Applied(kind="exclude", value=m.node.path, source=m.how, words=said))
            if lasting:
                new_standing.append(
                    Standing(kind="exclude_path", value=m.node.path, words=said, turn=turn)
                )
        term = stem(head)
        negated.append((term, [m.node for m in nodes]))
        exclude_terms.append(term)
        exclude_phrases.append(phrase)
        applied.append(Applied(kind="exclude", value=term, source="rule", words=said, term=True))
        if lasting:
            new_standing.append(Standing(kind="exclude_term", value=term, words=said, turn=turn))

    for cue, phrase, start, end in _negations(text):
        lasting = cue.startswith(tuple(cues.words.lasting_negation)) or any(
            phrase in c and text[start:end] in c for c in standing_clauses
        )
        for part in _parts(phrase):
            words = content_words(part)
            head = _head(words)
            nodes = vocabulary.resolve([head], synonyms=False)
            exclude(part.strip(), head, " ".join(words), nodes, lasting)
        positive = positive.replace(text[start:end], " ")
    for match in cues.negated_pronoun.finditer(text):  # "birds are too fiddly, skip them"
        start = max(text.rfind(mark, 0, match.start()) for mark in ".;!?") + 1
        for m in _targets(text[start : match.start()], vocabulary, False):
            exclude(m.word, m.word, m.word, [m], False)
        positive = positive.replace(text[start : match.end()], " ")
    for diet, said in cues.diets.items():
        if said.search(text):
            new_standing.append(Standing(kind="diet", value=diet, words=diet, turn=turn))

    # References to earlier turns.
    reference = _referenced_turn(text, history)
    likes = bool(cues.like.search(positive)) or bool(cues.ordinal.search(positive))
    back = bool(cues.back.search(text))
    different = bool(cues.different.search(text))
    seeds: list[str] = []
    if reference is not None and likes and not different:
        seeds = list(reference.recommended)
        ordinal = cues.ordinal.search(positive)
        if ordinal and reference.recommended:
            index = (
                cues.words.ordinals[ordinal.group(1)]
                if ordinal.group(1)
                else int(ordinal.group(2)) - 1
            )
            if -len(seeds) <= index < len(seeds):
                seeds = [seeds[index]]
        for item_id, title in zip(reference.recommended, reference.titles, strict=False):
            named = re.compile(r"\s*".join(re.escape(c) for c in title.lower() if c != " "))
            hit = named.search(positive) if len(title) > 3 else None
            if hit is not None:  # "more like the sports car": that one, and its name is no target
                seeds = [item_id]
                positive = positive[: hit.start()] + " " + positive[hit.end() :]
                break
        if seeds:
            applied.append(
                Applied(
                    kind="reference",
                    value=", ".join(seeds),
                    source=f"earlier turn {history.index(reference) + 1}",
                    words="like that",
                )
            )
    pronoun = bool(cues.pronoun_follow_up.search(positive.strip()))
    matches = _targets(positive, vocabulary, pronoun and reference is not None)
    own_words = [
        w
        for w in content_words(positive)
        if w not in cues.words.reference_words and stem(w) not in cues.sound_stems
    ]
    follow_up = reference is not None and (
        likes or back or (not matches and (not own_words or pronoun)) or (different and not matches)
    )

    # A negation that covers some of the targets named, not all, takes those ("never anything
    # military. A vehicle": not the military vehicles); one covering them all is contradicted.
    for _term, negated_nodes in negated:
        covered = {
            m.node.path for m in matches if any(n.contains(m.node.path) for n in negated_nodes)
        }
        if covered and len(covered) < len({m.node.path for m in matches}):
            matches = [m for m in matches if m.node.path not in covered]

    # Targets: named now, else inherited by a follow-up; a new topic inherits nothing.
    targets = [m.node.path for m in matches]
    for m in matches:
        applied.append(Applied(kind="target", value=m.node.path, source=m.how, words=m.word))
    earlier = f"earlier turn {history.index(reference) + 1}" if reference is not None else ""
    if not targets and follow_up and reference is not None:
        targets = list(reference.targets)
        applied += [Applied(kind="target", value=t, source=earlier) for t in targets]

    # "a bird, but not a farm bird": a negated head that is what is wanted excludes only the
    # phrase (by meaning, later), never the wanted node or its name.
    target_words = {stem(w) for m in matches for w in m.node.words} | {
        stem(m.word) for m in matches
    }
    contradicted = _contradicted(negated, targets, target_words)
    if contradicted:
        exclude_paths = [p for p in exclude_paths if p not in contradicted]
        exclude_terms = [t for t in exclude_terms if t not in contradicted]
        new_standing = [r for r in new_standing if r.value not in contradicted]
        applied = [a for a in applied if not (a.kind == "exclude" and a.value in contradicted)]

    heard = cues.sound.search(positive)
    needs_sound = heard is not None
    if heard is not None:
        applied.append(
            Applied(kind="sound", value="has a sound effect", source="rule", words=heard.group(0))
        )
    elif follow_up and reference is not None and reference.needs_sound and not different:
        needs_sound = True
        applied.append(Applied(kind="sound", value="has a sound effect", source=earlier))
    if follow_up and reference is not None and not different:
        for path in reference.exclude_paths:
            exclude_paths.append(path)
            applied.append(Applied(kind="exclude", value=path, source=earlier))
        for term in reference.exclude_terms:
            exclude_terms.append(term)
            applied.append(Applied(kind="exclude", value=term, source=earlier, term=True))
        exclude_phrases += reference.exclude_phrases

    # Standing preferences from earlier turns (and this one).
    diet_terms: list[str] = []
    for rule in [*standing, *new_standing]:
        source = f"standing (turn {rule.turn})"
        if rule.kind == "exclude_path" and rule.value not in exclude_paths:
            exclude_paths.append(rule.value)
            applied.append(
                Applied(kind="exclude", value=rule.value, source=source, words=rule.words)
            )
        elif rule.kind == "exclude_term" and rule.value not in exclude_terms:
            exclude_phrases.append(" ".join(content_words(rule.words)))
            exclude_terms.append(rule.value)
            applied.append(
                Applied(
                    kind="exclude", value=rule.value, source=source, words=rule.words, term=True
                )
            )
        elif rule.kind == "diet":
            diet_terms += sorted({stem(w) for w in cues.words.diets.get(rule.value, ())})
            applied.append(Applied(kind="diet", value=rule.value, source=source, words=rule.words))

    # Price bounds.
    max_price = _number(cues.max_price, positive)
    min_price = _number(cues.min_price, positive)
    for kind, value in (("max_price", max_price), ("min_price", min_price)):
        if value is not None:
            applied.append(Applied(kind=kind, value=f"{value:g}", source="rule"))  # type: ignore[arg-type]

    # What is searched for: this message's own words, else the referenced turn's query.
    query = " ".join(positive.split())
    if not own_words and follow_up and reference is not None:
        query = f"{reference.query} {query}".strip()
    residual = [w for w in own_words if stem(w) not in target_words]
    return Request(
        message=message,
        query=query or message,
        targets=list(dict.fromkeys(targets)),
        exclude_paths=list(dict.fromkeys(exclude_paths)),
        exclude_terms=list(dict.fromkeys(t for t in exclude_terms if t)),
        diet_terms=list(dict.fromkeys(diet_terms)),
        exclude_phrases=list(dict.fromkeys(p for p in exclude_phrases if p)),
        needs_sound=needs_sound,
        min_price=min_price,
        max_price=max_price,
        seeds=seeds,
        follow_up=follow_up,
        different=different,
        residual=residual,
        standing=new_standing,
        applied=applied,
    )


def _contradicted(
    negated: Sequence[tuple[str, list[Node]]], targets: Sequence[str], target_terms: set[str]
) -> set[str]:
    """The exclusions of this message's negations that would exclude what it asks for: a node
    that is (or holds) a target, and the negated head's term with it."""
    out: set[str] = set()
    for term, nodes in negated:
        covering = {n.path for n in nodes if any(n.contains(t) for t in targets)}
        out |= covering
        if covering or term in target_terms:
            out.add(term)
    return out


def _number(pattern: re.Pattern[str], text: str) -> float | None:
    match = pattern.search(text)
    return float(match.group(1)) if match else None


def cheaper_than(request: Request, text: str, prices: Sequence[float]) -> Request:
    """ "cheaper": a price bound below the cheapest item shown before."""
    if request_patterns().cheaper.search(text.lower()) and prices and request.max_price is None:
        bound = min(prices) - 0.01
        request.max_price = bound
        request.applied.append(
            Applied(kind="max_price", value=f"{bound:g}", source="rule", words="cheaper")
        )
    return request
