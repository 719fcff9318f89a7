"""Builds the recommender a front end uses, from the configuration alone: the indexed store,
the LLM endpoint when one answers, the Recommender on them."""

from __future__ import annotations

from collections.abc import Callable

from agent.llm import Endpoint, EndpointChat, endpoint
from agent.recommender import Recommender
from indexing.store import Store, open_store
from tools.config import Settings
from tools.errors import EmptyStore, LLMUnavailable
from tools.factory import Models


def open_indexed_store(settings: Settings) -> tuple[Store, Models]:
    """The configured store and its models; :class:`EmptyStore` when nothing is indexed."""
    store, models = open_store(settings)
    if store.count()[0] == 0:
        raise EmptyStore(
            f"the store {settings.chroma_url or settings.resolved_store_dir} is "
            "empty: index a catalogue first (`recagent index …` or `recagent demo`)"
        )
    return store, models


def reachable_endpoint(
    settings: Settings, on_notice: Callable[[str], None] | None, without: str
) -> Endpoint | None:
    """The LLM endpoint, or None when it is not reachable; ``on_notice`` hears why and what
    happens ``without`` it."""
    try:
        return endpoint(settings)
    except LLMUnavailable as exc:
        if on_notice is not None:
            on_notice(f"{exc}; {without}")
        return None


def build_recommender(
    settings: Settings,
    on_notice: Callable[[str], None] | None = None,
    start_llm: Callable[[], None] | None = None,
    need_llm: bool = False,
) -> Recommender:
    """A Recommender on the configured store. Without a reachable LLM it still works (embedding
    ranking and template explanations); ``on_notice`` hears why. Raises :class:`EmptyStore` when
    nothing is indexed; ``start_llm`` (a front end starting the local server) runs only after
    that check, so an empty store fails at once, and only when a step of the turn uses the
    LLM (``turn.*_llm``) or the caller ``need_llm`` (a benchmark of the LLM's steps)."""
    store, models = open_indexed_store(settings)
    if not (settings.turn.uses_llm or need_llm):  # no step asks the LLM: none is needed
        return Recommender.build(settings, store, models, None)
    if start_llm is not None:
        start_llm()
    if reachable_endpoint(settings, on_notice, "answering without the LLM") is None:
        return Recommender.build(settings, store, models, None)
    return Recommender.build(settings, store, models, EndpointChat(settings))
