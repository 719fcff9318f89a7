"""The request parser (rules only, no model): targets in the catalogue's taxonomy, negations,
modality, price, scoping across turns, references and standing preferences; and the
explanation checker (tautologies, words the facts do not back)."""

from __future__ import annotations

from agent.grounding import supported, unsupported_words
from agent.item_text import tautology
from agent.reasons import reasons
from agent.request import parse
from agent.request_types import Request, TurnMemory
from agent.vocabulary import Vocabulary, item_path
from agent.wording import from_reasons
from indexing.records import Taxonomy

TAXONOMY = Taxonomy(
    categories={"animals": 40, "food": 30, "vehicles": 20, "hobbies": 10, "seasonal": 10},
    subcategories={
        "animals": {"birds": 10, "mammals/cats": 5, "mammals/bovines": 8, "insects": 6},
        "food": {"fruit": 12, "dessert": 4, "nuts": 3},
        "vehicles": {"auto": 6, "flight": 4, "race": 3},
        "hobbies": {"music/string": 5, "music/percussion": 3},
        "seasonal": {"christmas": 6, "halloween": 4},
    },
    attributes={"subcategory": 120, "has_sound_effect": 120},
)


def vocab() -> Vocabulary:
    return Vocabulary(TAXONOMY)


def _kinds(request: Request, kind: str) -> list[str]:
    return [a.value for a in request.applied if a.kind == kind]


def test_targets_come_from_the_taxonomy_and_the_head_wins() -> None:
    assert parse("Show me a bird", vocab()).targets == ["animals/birds"]
    assert parse("Now some fruit would be nice", vocab()).targets == ["food/fruit"]
    # "an insect that ... flowers": the head (insect) decides, not a later word
    assert parse("An insect that likes fruit", vocab()).targets == ["animals/insects"]
    # "something for Christmas": no node in the head, so the rest decides
    assert parse("Something for Christmas", vocab()).targets == ["seasonal/christmas"]
    assert parse("a musical instrument with strings", vocab()).targets[0].startswith("hobbies")
    assert parse("Surprise me", vocab()).targets == []
    # a later clause naming a kind inside the target narrows it; the same clause does not
    assert parse("A vehicle for her, she loved flight", vocab()).targets == ["vehicles/flight"]
    assert parse("An animal that eats birds", vocab()).targets == ["animals"]
    assert parse("A vehicle for her, she loved fruit", vocab()).targets == ["vehicles"]


def test_negations_exclude_nodes_and_words_and_leave_the_query() -> None:
    request = parse("Show me any vehicle except trucks.", vocab())
    assert request.targets == ["vehicles"] and "truck" in request.exclude_terms
    assert "truck" not in request.query
    pet = parse("A pet, but not a cat.", vocab())
    assert "animals/mammals/cats" in pet.exclude_paths and "cat" in pet.exclude_terms
    none = parse("No animals please, just something fun to play with.", vocab())
    assert "animals" in none.exclude_paths and none.targets == []
    both = parse("Okay, now any animal except birds and fish.", vocab())
    assert both.targets == ["animals"] and "animals/birds" in both.exclude_paths
    assert {"bird", "fish"} <= set(both.exclude_terms)
    assert parse("Anything but vehicles", vocab()).exclude_paths == ["vehicles"]
    assert "drum" in parse("Not a drum, something with strings.", vocab()).exclude_terms


def test_modality_and_price() -> None:
    assert parse("An animal that makes a noise, I want to hear it.", vocab()).needs_sound
    assert parse("a vehicle I can hear", vocab()).needs_sound
    assert not parse("a quiet vehicle", vocab()).needs_sound
    assert not parse("a bird without sound", vocab()).needs_sound
    priced = parse("a dessert under 20 dollars, at least 5", vocab())
    assert priced.max_price == 20 and priced.min_price == 5


def _memory(request: Request, ids: list[str]) -> TurnMemory:
    return request.memory(ids, [i.rsplit("/", 1)[-1].title() for i in ids])


def test_a_new_topic_replaces_the_old_target_and_carries_nothing() -> None:
    first = parse("I love farm animals that make a noise", vocab())
    assert first.targets == ["animals"] and first.needs_sound
    second = parse(
        "Now something sweet to eat, please: fruit would be nice.",
        vocab(),
        [_memory(first, ["animals/mammals/bovines/cow"])],
    )
    assert second.targets == ["food/fruit"]
    assert not second.needs_sound and not second.follow_up
    assert all("earlier" not in a.source for a in second.applied)


def test_follow_ups_inherit_from_the_turn_they_refer_to() -> None:
    first = parse("An animal that makes a noise", vocab())
    memory = [_memory(first, ["animals/birds/owl", "animals/mammals/cats/lion"])]
    more = parse("More like that, but a bird.", vocab(), memory)
    assert more.targets == ["animals/birds"] and more.needs_sound and more.follow_up
    assert more.seeds == ["animals/birds/owl", "animals/mammals/cats/lion"]
    second = parse("I like the second one", vocab(), memory)
    assert second.seeds == ["animals/mammals/cats/lion"]
    still = parse("Still with a sound, but no big cats.", vocab(), memory)
    assert still.targets == ["animals"] and "animals/mammals/cats" in still.exclude_paths
    assert any(a.source == "earlier turn 1" for a in still.applied if a.kind == "target")
    # "one that ...": the same kind of thing, new words
    cold = parse("Now one that lives where it is cold", vocab(), memory)
    assert cold.targets == ["animals"] and cold.follow_up


def test_go_back_to_an_earlier_turn() -> None:
    christmas = parse("Something for Christmas.", vocab())
    easter = parse("More like that, but for Halloween instead.", vocab(), [_memory(christmas, [])])
    assert easter.targets == ["seasonal/halloween"]
    history = [_memory(christmas, ["seasonal/christmas/tree"]), _memory(easter, [])]
    back = parse("Go back to the christmas ones", vocab(), history)
    assert back.targets == ["seasonal/christmas"] and back.follow_up


def test_standing_preferences_are_only_those_stated_as_standing() -> None:
    stated = parse("Never show me insects, they give me the creeps. A flower.", vocab())
    assert [s.value for s in stated.standing if s.kind == "exclude_path"] == ["animals/insects"]
    later = parse("Now show me some animals.", vocab(), [_memory(stated, [])], stated.standing)
    assert later.targets == ["animals"] and "animals/insects" in later.exclude_paths
    assert any(a.source.startswith("standing") for a in later.applied)
    once = parse("A pet, but not a cat.", vocab())
    assert once.standing == []
    allergy = parse("I'm allergic to nuts, keep that in mind. A snack.", vocab())
    assert any(s.value == "food/nuts" for s in allergy.standing)
    diet = parse("I'm vegetarian. Something to eat?", vocab())
    assert [s.value for s in diet.standing] == ["vegetarian"] and "sausag" in parse(
        "dinner", vocab(), standing=diet.standing
    ).diet_terms


def test_reasons_and_template_say_why_without_tautology() -> None:
    request = parse("An animal that makes a noise, from the farm", vocab())
    facts = {
        "title": "Cow",
        "description": "Cow.",
        "category": "animals",
        "attributes": {"subcategory": "mammals/bovines", "has_sound_effect": True},
        "has_audio": True,
    }
    assert item_path(facts) == "animals/mammals/bovines"
    found = reasons(request, facts, vocab())
    assert [r.field for r in found] == ["kind", "sound"]
    text, cited = from_reasons(facts, found)
    assert not text.startswith("Cow: Cow")  # a description that repeats the name is left out
    assert "sound effect" in text and "attributes.subcategory" in cited
    asked = " ".join(f"{r.asked} {r.value}" for r in found)
    assert all(supported(s, facts, asked) is None for s in text.split(". ") if s)


def test_checker_rejects_tautologies_and_invented_attributes() -> None:
    cow = {"title": "Cow", "description": "A cow says moo.", "category": "animals"}
    assert tautology("Bull is a bull.", {"title": "Bull"})
    assert not tautology("Cow says moo.", cow)
    assert unsupported_words("Cow is a sweet animal.", cow) == ["sweet"]
    # only the item's computed reasons may add words: none of the cow's says "sweet"
    assert "sweet" in str(supported("Cow is a sweet animal.", cow, "farm animal"))
    assert supported("Cow is a sweet animal.", cow, "sweet") is None
    assert supported("Bull is a bull.", {"title": "Bull"}, "") is not None


def test_stemming_is_safe_from_many_threads() -> None:
    """A Snowball stemmer keeps state while it works; turns served at once must not share
    one (an IndexError in eval simulate found this)."""
    from concurrent.futures import ThreadPoolExecutor

    from agent.words import stem

    words = [f"{w}{n}ings" for n in range(2000) for w in ("walk", "sing", "bake")]
    with ThreadPoolExecutor(8) as pool:
        stemmed = list(pool.map(stem, words))
    assert stemmed[:3] == ["walk0", "sing0", "bake0"]


def test_preference_scores_are_likes_minus_dislikes() -> None:
    import numpy as np

    from agent.preferences import preference_scores

    table = {"red": [1.0, 0.0], "blue": [0.0, 1.0]}

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray([table[t] for t in texts], dtype=np.float32)

    vectors = {"a": np.asarray([2.0, 0.0]), "b": np.asarray([0.0, 3.0])}
    scores = preference_scores(vectors, embed, ["red"], ["blue"])
    assert scores == {"a": 1.0, "b": -1.0}
    assert preference_scores(vectors, embed, [], []) == {}
    assert preference_scores(vectors, embed, ["red"], []) == {"a": 1.0, "b": 0.0}


def test_exclusions_are_shown_as_what_they_match() -> None:
    request = parse("Anything but animals", vocab())
    shown = {a.shown() for a in request.applied if a.kind == "exclude"}
    assert "animals" in shown  # the taxonomy node, as named
    assert "titles and descriptions with “anim…”" in shown  # the word, by its stem


def test_a_negated_phrase_whose_head_is_wanted_excludes_only_the_phrase() -> None:
    """ "A bird, but not a farm bird": the negation's head is what is asked for, so only the
    phrase is excluded (by meaning, against the store), never the wanted node or its name."""
    for message, target, head in [
        ("A bird, but not a farm bird: no chickens.", "animals/birds", "bird"),
        ("an animal, but not a farm animal", "animals", "anim"),
    ]:
        request = parse(message, vocab())
        assert request.targets == [target]
        assert target not in request.exclude_paths and head not in request.exclude_terms
        assert any("farm" in p for p in request.exclude_phrases)
    chickens = parse("A bird, but not a farm bird: no chickens.", vocab())
    assert "chicken" in chickens.exclude_terms  # a narrower negation still excludes
    # a node inside the target is still excluded by node
    assert "animals/birds" in parse("an animal, but no birds", vocab()).exclude_paths


def test_everyday_negations_exclude_and_near_misses_do_not() -> None:
    assert "animals/birds" in parse("Skip the birds.", vocab()).exclude_paths
    assert "food/fruit" in parse("Leave out the fruit, a dessert", vocab()).exclude_paths
    assert "food" in parse("Done with food. Something to ride", vocab()).exclude_paths
    stand = parse("I can't stand cats. A pet, maybe?", vocab())
    assert "animals/mammals/cats" in stand.exclude_paths
    assert any(s.kind == "exclude_path" for s in stand.standing)  # a dislike that lasts
    for said in ["skip to the desserts", "Don't forget the candles for the cake"]:
        request = parse(said, vocab())
        assert not request.exclude_paths and not request.exclude_terms, said


def test_a_contracted_not_negates_like_not() -> None:
    """ "isn't", "aren't", "doesn't", "won't" say "not": what follows is excluded, as after
    "is not"."""
    for message, excluded in [
        ("Anything from the household that isn't a vehicle?", "vehicles"),
        ("Some food that isn't fruit.", "food/fruit"),
        ("Animals, but ones that aren't birds", "animals/birds"),
        ("My son won't touch any fruit, a dessert please", "food/fruit"),
    ]:
        assert excluded in parse(message, vocab()).exclude_paths, message
    assert parse("Something that isn't green", vocab()).exclude_terms == ["green"]
    assert "feather" in parse("A pet that doesn't have feathers", vocab()).exclude_terms
    assert parse("A dessert that is not fruit", vocab()).exclude_paths == ["food/fruit"]


def test_a_standing_cue_said_on_its_own_makes_the_clause_before_it_last() -> None:
    """ "… so nothing with fruit. Ever.": the cue stands alone, after the negation it governs."""
    said = ["No fruit in anything. Ever.", "nothing with fruit, ever!", "No fruit. From now on."]
    for message in said:
        request = parse(message, vocab())
        assert "food/fruit" in request.exclude_paths, message
        assert any(s.kind == "exclude_path" for s in request.standing), message
    passing = parse("No fruit today. A bird, ever seen one?", vocab())
    assert not any(s.kind == "exclude_path" for s in passing.standing)


def test_a_topic_said_to_be_done_is_left_behind() -> None:
    """ "Fruit's done.", "the vehicles are sorted": the topic named before the closing word is
    excluded for the turn (and not read as what is wanted), never when the word goes on."""
    moved_on = parse("Fruit's done. Now something to ride on.", vocab())
    assert "food/fruit" in moved_on.exclude_paths and "food/fruit" not in moved_on.targets
    assert not moved_on.standing
    sorted_out = parse("ok, the vehicles are sorted, what about a bird?", vocab())
    assert "vehicles" in sorted_out.exclude_paths and sorted_out.targets == ["animals/birds"]
    assert "food/fruit" in parse("I'm over the fruit. A dessert?", vocab()).exclude_paths
    for said in ["a bird flying over the fruit trees", "the dessert is done in the oven"]:
        request = parse(said, vocab())
        assert not request.exclude_paths and not request.exclude_terms, said


def test_a_negation_takes_the_targets_it_covers_when_others_remain() -> None:
    """ "Never anything military. A vehicle that flies": "vehicle" names the vehicles and the
    military vehicles; the lasting exclusion of the military stays and takes the military
    vehicles out of the targets, instead of being dropped as a contradiction."""
    words = Vocabulary(
        Taxonomy(
            categories={"vehicles": 20, "military": 6},
            subcategories={"vehicles": {"flight": 5}, "military": {"vehicles": 3}},
            attributes={"subcategory": 26},
        )
    )
    request = parse("Never show me anything military. A vehicle that flies, please.", words)
    assert "military" in request.exclude_paths
    assert "vehicles" in request.targets and "military/vehicles" not in request.targets
    assert any(s.kind == "exclude_path" and s.value == "military" for s in request.standing)


def test_a_negated_pronoun_takes_what_the_sentence_named_before_it() -> None:
    """ "Birds are too fiddly to draw, skip them": the pronoun stands for what the sentence
    named before the cue, which is excluded and not searched for; a pronoun with nothing named
    before it in its sentence excludes nothing, and one that is not negated is no negation."""
    skipped = parse("birds are too fiddly for me to draw, skip them", vocab())
    assert "animals/birds" in skipped.exclude_paths and not skipped.targets
    assert "bird" in skipped.exclude_terms
    cats = parse("Cats make me sneeze, so none of those. A pet that is quiet?", vocab())
    assert "animals/mammals/cats" in cats.exclude_paths
    assert "animals/mammals/cats" not in cats.targets
    for said in ["skip them", "I love birds. Show me them!", "Fruit. Skip to the desserts"]:
        request = parse(said, vocab())
        assert not request.exclude_paths and not request.exclude_terms, said
