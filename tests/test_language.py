"""The rules' words live in a data file per language (prompts/language_<code>.toml)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import prompts
from agent import language as lang
from agent.language import LanguageError, any_of, language, request_patterns


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    lang.language.cache_clear()
    lang.request_patterns.cache_clear()
    yield
    lang.language.cache_clear()
    lang.request_patterns.cache_clear()


def test_the_english_file_loads_with_every_list_filled() -> None:
    words = language("en")
    assert "please" in words.stop
    assert "cartoon" in words.generic_path_words
    assert words.request.ordinals["second"] == 1
    assert "meat" in words.request.diets["vegetarian"]
    assert "honey" in words.request.diets["vegan"]
    assert "honey" not in words.request.diets["vegetarian"]
    assert "gray" in words.explanations.colours


def test_the_longest_cue_wins_at_one_place() -> None:
    cues = request_patterns("en")
    match = cues.negation.search("never show me spiders again")
    assert match is not None and match.group(0) == "never show me"
    assert cues.negation.search("nothing but cats").group(0) == "nothing but"  # type: ignore[union-attr]
    # whole words only: "not" is no cue inside "nothing", "no" none inside "north"
    assert cues.negation.search("north") is None


def test_cue_patterns_capture_what_the_rules_read() -> None:
    cues = request_patterns("en")
    price = cues.max_price.search("a hat under $20 please")
    assert price is not None and price.group(1) == "20"
    ordinal = cues.ordinal.search("the second one")
    assert ordinal is not None and ordinal.group(1) == "second"
    assert cues.ordinal.search("number 3").group(2) == "3"  # type: ignore[union-attr]
    back = cues.back.search("go back to the birds. thanks")
    assert back is not None and back.group("what").strip() == "the birds"
    assert cues.pronoun_follow_up.search("and a red one") is not None
    assert cues.pronoun_follow_up.search("a handbag") is None
    assert "sound" in cues.sound_stems and "food" in cues.food_stems


def test_phrases_are_escaped_not_read_as_patterns() -> None:
    assert any_of(["a.b", "c"]) == r"(?:a\.b|c)"


def test_an_unknown_language_names_the_missing_file(fresh_cache: None) -> None:
    with pytest.raises(LanguageError, match=r"language_xx\.toml is missing"):
        language("xx")


def test_a_code_that_is_not_a_language_code_is_refused(fresh_cache: None) -> None:
    with pytest.raises(LanguageError, match="two or three lower-case letters"):
        language("../secrets")


def test_a_malformed_file_names_the_file_and_the_field(
    fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = prompts.load_text("language_en.toml")
    broken = good.replace('number = "number"\n', "")  # a required cue left out
    monkeypatch.setattr(prompts, "load_text", lambda name: broken)
    with pytest.raises(LanguageError, match=r"language_en\.toml.*number"):
        language("en")


def test_a_file_that_is_not_toml_is_refused(
    fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prompts, "load_text", lambda name: "stop = [unclosed")
    with pytest.raises(LanguageError, match=r"language_en\.toml"):
        language("en")


def test_an_empty_phrase_is_refused(fresh_cache: None, monkeypatch: pytest.MonkeyPatch) -> None:
    good = prompts.load_text("language_en.toml")
    broken = good.replace('back = ["go back to",', 'back = ["", "go back to",')
    assert broken != good
    monkeypatch.setattr(prompts, "load_text", lambda name: broken)
    with pytest.raises(LanguageError, match="back"):
        language("en")
