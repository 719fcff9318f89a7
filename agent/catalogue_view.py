"""What a :class:`~agent.recommender.Recommender` reads once when it is built: the catalogue's
ids, titles and taxonomy, and the collaborative model that covers the store's items."""

from __future__ import annotations

from dataclasses import dataclass

from indexing.records import Taxonomy
from indexing.store import Store
from tools.collaborative import CollabModel, discover, tuned_fusion
from tools.config import Settings


def load_collab(
    settings: Settings, store_ids: list[str]
) -> tuple[CollabModel | None, dict[str, float] | None]:
    """The configured collaborative model, or the one under DATA_DIR/collab that covers the
    store's items, with the fusion weights tuned beside it."""
    folder = settings.collab_dir or discover(settings.data_dir / "collab", store_ids)
    if folder is None:
        return None, None
    return CollabModel.load(folder), tuned_fusion(folder)


@dataclass(frozen=True)
class Catalogue:
    """What a Recommender knows of the store's catalogue, read once when it is built."""

    ids: list[str]  # every item's, in the store's order
    titles: list[str]  # every title: what the checker and the intro guard compare against
    taxonomy: Taxonomy

    @classmethod
    def of(cls, store: Store) -> Catalogue:
        stored = store.all_items()
        return cls(
            [item.id for item in stored],
            sorted({item.title for item in stored}),
            Taxonomy.of(stored),
        )
