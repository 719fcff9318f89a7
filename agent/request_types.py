"""What request understanding produces (:mod:`agent.request`): the typed request of one turn,
the constraints that shaped it with their sources, standing preferences, and what a turn leaves
for later turns to refer back to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

Source = str  # "rule", "embedding (…)", "model", "earlier turn N", "standing (turn N)"


class Applied(BaseModel):
    """A constraint that shaped this turn, and where it came from (shown by /why, /profile)."""

    kind: Literal[
        "target", "exclude", "sound", "min_price", "max_price", "reference", "diet", "expansion"
    ]
    value: str
    source: Source
    words: str = ""
    term: bool = False  # an exclusion by word stem ("appl"), not by taxonomy node ("animals")

    def shown(self) -> str:
        """The value as a person reads it: an excluded word is matched by its stem ("appl"),
        which is shown as what it matches."""
        if self.term:
            return f"titles and descriptions with “{self.value}…”"
        return self.value


class Standing(BaseModel):
    """A preference the user stated as standing; it applies to every later turn."""

    kind: Literal["exclude_path", "exclude_term", "diet"]
    value: str
    words: str = ""
    turn: int = 0


class TurnMemory(BaseModel):
    """What a turn asked for, kept so later turns can refer back to it."""

    message: str
    query: str = ""
    targets: list[str] = Field(default_factory=list)
    exclude_paths: list[str] = Field(default_factory=list)
    exclude_terms: list[str] = Field(default_factory=list)
    exclude_phrases: list[str] = Field(default_factory=list)
    needs_sound: bool = False
    recommended: list[str] = Field(default_factory=list)
    titles: list[str] = Field(default_factory=list)
    prices: list[float | None] = Field(default_factory=list)


class Request(BaseModel):
    """One message, understood."""

    message: str
    query: str
    targets: list[str] = Field(default_factory=list)
    exclude_paths: list[str] = Field(default_factory=list)
    exclude_terms: list[str] = Field(default_factory=list)
    diet_terms: list[str] = Field(default_factory=list)
    exclude_phrases: list[str] = Field(default_factory=list)  # what each negation named
    exclude_ids: list[str] = Field(default_factory=list)  # items nearest those phrases
    needs_sound: bool = False
    min_price: float | None = None
    max_price: float | None = None
    seeds: list[str] = Field(default_factory=list)
    follow_up: bool = False
    different: bool = False  # "something else": nothing shown before comes back
    residual: list[str] = Field(default_factory=list)  # content words no rule accounted for
    standing: list[Standing] = Field(default_factory=list)  # stated in this message
    expansions: list[str] = Field(default_factory=list)
    queries: list[str] = Field(default_factory=list)  # the model's reading: each searched alone
    kinds: list[str] = Field(default_factory=list)  # the kinds the model's reading says fit
    applied: list[Applied] = Field(default_factory=list)

    @property
    def excludes_words(self) -> bool:
        """Whether an item's words decide an exclusion (a negated word or a diet)."""
        return bool(self.exclude_terms or self.diet_terms)

    def memory(
        self,
        recommended: Sequence[str],
        titles: Sequence[str],
        prices: Sequence[float | None] = (),
    ) -> TurnMemory:
        own = {a.value for a in self.applied if a.kind == "exclude" and "standing" not in a.source}
        return TurnMemory(
            message=self.message,
            query=self.query,
            targets=self.targets,
            exclude_paths=[p for p in self.exclude_paths if p in own],
            exclude_terms=[t for t in self.exclude_terms if t in own],
            exclude_phrases=[
                p for p in self.exclude_phrases if p not in {s.words for s in self.standing}
            ],
            needs_sound=self.needs_sound,
            recommended=list(recommended),
            titles=list(titles),
            prices=list(prices),
        )
