"""The inputs the evaluation commands share, built from the configuration alone.

* :class:`ML100K` / :func:`load_ml100k`: the ML-100K movies and their leave-one-out split,
  with the texts and titles the ranking embeds and the judge's cases (``eval rank``,
  ``eval judge``, ``bench eval``).
* :func:`simulation_setup`: the recommender, catalogue and case sampler for simulated users
  (``eval simulate``, ``bench eval``). On ml-100k the movies are indexed once into
  ``DATA_DIR/eval-stores/ml-100k``; on demo the configured store is used.
* :func:`conversation_setup`: recommenders with different turn settings over one store
  (``eval conversations``).

Nothing here writes to a terminal: callers pass ``progress(done, total)`` and ``log(line)``.
Unknown datasets raise :class:`~tools.errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from agent.build import build_recommender, open_indexed_store, reachable_endpoint
from agent.llm import EndpointChat
from agent.recommender import Recommender
from eval import simulate
from eval.cases import Case, ml100k_cases
from eval.movielens import Split, load_split
from indexing import movielens
from indexing.loaders import LoadResult
from indexing.pipeline import Indexer
from indexing.schema import Item
from indexing.store import Store, open_store
from tools.config import Settings, TurnSettings
from tools.errors import InputError

RANK_DATASETS = ("ml-100k",)
SIMULATION_DATASETS = ("ml-100k", "demo")


def rank_dataset(dataset: str) -> str:
    """``dataset`` if the ranking evaluation has it (check before anything slow starts)."""
    if dataset not in RANK_DATASETS:
        raise InputError(
            f"unknown dataset {dataset!r}: only {' or '.join(RANK_DATASETS)} is available"
        )
    return dataset


def simulation_dataset(dataset: str) -> str:
    """``dataset`` if simulated users can run on it (check before anything slow starts)."""
    if dataset not in SIMULATION_DATASETS:
        raise InputError(f"unknown dataset {dataset!r}: use {' or '.join(SIMULATION_DATASETS)}")
    return dataset


@dataclass(frozen=True)
class ML100K:
    """The ML-100K movies (by id) and their split; lists follow ``split.item_ids``."""

    items: dict[str, Item]
    split: Split

    @property
    def item_ids(self) -> list[str]:
        return self.split.item_ids

    @cached_property
    def texts(self) -> list[str]:
        """What the ranking embeds for each movie."""
        return [self.items[i].text_for_embedding() for i in self.item_ids]

    @cached_property
    def titles(self) -> list[str]:
        """ "Title (year)" for each movie, as the LLM rerank sees them."""
        return [
            f"{self.items[i].title} ({self.items[i].attributes.get('year', '?')})"
            for i in self.item_ids
        ]

    @cached_property
    def catalogue_titles(self) -> list[str]:
        """Every title once, sorted (the names a grounded explanation may mention)."""
        return sorted({item.title for item in self.items.values()})

    def cases(self, n: int, seed: int) -> list[Case]:
        """``n`` users (a seeded sample), each with the held-out next movie as the target."""
        return ml100k_cases(self.split, self.items, n, seed)


def load_ml100k() -> ML100K:
    """The movies (from the installed data packages) and the leave-one-out split."""
    return ML100K({item.id: item for item in movielens.load_items()}, load_split())


@dataclass(frozen=True)
class Simulation:
    """What simulated users need: the recommender, the ids it may recommend, a case sampler
    ``cases(n, seed)`` and what an item is called in the simulator's prompt."""

    recommender: Recommender
    catalogue: set[str]
    cases: Callable[[int, int], list[Case]]
    kind: str


def simulation_setup(
    settings: Settings,
    dataset: str,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> Simulation:
    """The :class:`Simulation` for ``dataset``. ml-100k indexes the movies once into
    ``DATA_DIR/eval-stores/ml-100k`` (unless a store is configured), reporting through ``log``
    and ``progress``; demo uses the configured store. ``on_notice`` hears why the recommender
    runs without the LLM, if it does. Raises :class:`InputError` for an unknown dataset and
    :class:`~tools.errors.EmptyStore` when the store holds nothing."""
    simulation_dataset(dataset)
    if dataset == "ml-100k":
        if settings.store_dir is None and settings.chroma_url is None:
            settings = settings.model_copy(
                update={"store_dir": settings.data_dir / "eval-stores" / "ml-100k"}
            )
        data = load_ml100k()
        _index_once(settings, list(data.items.values()), progress, log)
        recommender = build_recommender(settings, on_notice)
        return Simulation(recommender, recommender.store.ids(), data.cases, "movie")
    recommender = build_recommender(settings, on_notice)
    stored = recommender.store.all_items()
    pairs = [(item.id, item.facts) for item in stored]

    def cases(n: int, seed: int) -> list[Case]:
        return simulate.demo_cases(pairs, n, seed)

    return Simulation(recommender, {item.id for item in stored}, cases, "catalogue item")


def _index_once(
    settings: Settings,
    items: list[Item],
    progress: Callable[[int, int], None] | None,
    log: Callable[[str], None] | None,
) -> None:
    """Index ``items`` into the configured store unless it already holds as many."""
    store, models = open_store(settings)
    if store.count()[0] >= len(items):
        return
    if log is not None:
        log(f"indexing the {len(items)} ML-100K movies for the agent (once)")
    Indexer(store, models, settings.index).run(LoadResult(items), progress=progress)


@dataclass
class ConversationSetup:
    """What `eval conversations` needs: the store and a recommender per turn setting."""

    store: Store
    make_recommender: Callable[[TurnSettings], Recommender]
    llm: str  # the model name, or "" without an LLM


def conversation_setup(
    settings: Settings, on_notice: Callable[[str], None] | None = None
) -> ConversationSetup:
    """Recommenders over the configured (demo) store that share its models; without a
    reachable LLM only the systems that need none can run (``llm`` is then "")."""
    store, models = open_indexed_store(settings)
    target = reachable_endpoint(settings, on_notice, "only the systems without an LLM run")
    chat = EndpointChat(settings) if target is not None else None
    llm = target.model if target is not None else ""

    def make(turn: TurnSettings) -> Recommender:
        return Recommender.build(settings.model_copy(update={"turn": turn}), store, models, chat)

    return ConversationSetup(store, make, llm)
