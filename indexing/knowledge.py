"""What the catalogue does not say about its items, from other sources, stored fact by fact.

Each :class:`Fact` is one field of one item from one source (``wordnet``, ``vision:<model>``,
``llm:<model>``): the item's WordNet ``kind`` ("badger; musteline mammal, carnivore, mammal"),
its ``gloss`` ("sturdy carnivorous burrowing mammal with strong claws …"). They live in their
own Chroma collection beside the text and image ones (``<prefix>_knowledge``), one vector per
fact, so each field can be searched, measured and switched off on its own: a long gloss appended
to an item's one-line text would dilute its vector instead.

A fact records the item's ``text_hash`` and the source's version when it was made; enrichment
(:mod:`indexing.enrich`) redoes an item's facts only when either changed. A fact's text is data
about the item, never an instruction to a model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from indexing.records import Filters, Hit, StoredItem
from indexing.store import GET_CHUNK, Store, pages
from tools.config import TurnSettings

log = logging.getLogger(__name__)
FILTER_KEYS = ("category", "price", "has_image", "has_audio")  # what Filters.where() reads
MAX_FACT_CHARS = 600


@dataclass(frozen=True)
class Fact:
    item_id: str
    field: str  # "kind", "gloss", …
    text: str
    source: str  # "wordnet", "vision:<model>", "llm:<model>"

    @property
    def key(self) -> str:
        return f"{self.item_id}#{self.source}#{self.field}"


@dataclass(frozen=True)
class Made:
    """When an item's facts from one source were made: the item's hash and the source version."""

    item_hash: str
    version: str


class KnowledgeStore:
    """The knowledge collection of one store (same client, same text embedder)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        name, wanted = f"{store.prefix}_knowledge", store.text_ef.embedder.model_id
        if name in {c.name for c in store.client.list_collections()}:
            made_by = (store.client.get_collection(name).metadata or {}).get("text_embedder")
            if made_by not in (None, wanted):  # facts are cheap to make again; vectors are not
                log.warning("the knowledge was embedded by %s, now %s: made again", made_by, wanted)
                store.client.delete_collection(name)
        self.collection = store.client.get_or_create_collection(
            name,
            embedding_function=store.text_ef,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"text_embedder": wanted},
        )

    @classmethod
    def existing(cls, store: Store) -> KnowledgeStore | None:
        """The knowledge of ``store`` when it has any (``recagent enrich`` made it), else None;
        creates nothing."""
        name = f"{store.prefix}_knowledge"
        return cls(store) if name in {c.name for c in store.client.list_collections()} else None

    @classmethod
    def for_turn(cls, store: Store, turn: TurnSettings) -> KnowledgeStore | None:
        """What a conversation turn reads, when the store has knowledge: the fields it
        searches (``knowledge_fields``) and those its exclusions check (``exclusion_knowledge``).
        Without knowledge a turn does neither; nothing is created."""
        wanted = turn.knowledge_fields or turn.exclusion_knowledge
        return cls.existing(store) if wanted else None

    def _all(self, include: list[str]) -> Iterable[tuple[str, dict[str, Any], str]]:
        for got in pages(self.collection, include):
            metas = got.get("metadatas") or [{} for _ in got["ids"]]
            docs = got.get("documents") or ["" for _ in got["ids"]]
            yield from zip(got["ids"], metas, docs, strict=True)

    def made(self, source: str) -> dict[str, Made]:
        """Item id → when its facts from ``source`` were made (items done, facts or not)."""
        found: dict[str, Made] = {}
        for _, meta, _ in self._all(["metadatas"]):
            if meta.get("source") == source:
                found[str(meta["item_id"])] = Made(str(meta["item_hash"]), str(meta["version"]))
        return found

    def replace(
        self,
        source: str,
        version: str,
        items: Sequence[StoredItem],
        hashes: dict[str, str],
        facts: Sequence[Fact],
    ) -> None:
        """Store ``facts`` as ``items``' facts from ``source``, dropping their older ones. An item
        with no fact gets an empty marker, so it is not asked again until it or the source
        changes."""
        self.delete([i.id for i in items], source)
        by_item = {i.id: i for i in items}
        kept: dict[str, Fact] = {}  # a source's answer is untrusted: facts of other items go,
        for fact in facts:  # and the first of a repeated key counts
            if fact.item_id in by_item:
                kept.setdefault(fact.key, fact)
        rows = list(kept.values())
        with_facts = {f.item_id for f in rows}
        rows += [Fact(i.id, "", "", source) for i in items if i.id not in with_facts]
        if not rows:
            return
        metadatas = []
        for fact in rows:
            item = by_item[fact.item_id]
            meta: dict[str, Any] = {
                "item_id": fact.item_id,
                "field": fact.field,
                "source": source,
                "item_hash": hashes.get(fact.item_id, ""),
                "version": version,
            }
            if item.category:
                meta["category"] = item.category
            for key in FILTER_KEYS[1:]:
                value = item.facts.get(key)
                if isinstance(value, bool | int | float):
                    meta[key] = value
            metadatas.append(meta)
        self.collection.upsert(
            ids=[f.key for f in rows],
            documents=[f.text[:MAX_FACT_CHARS] or " " for f in rows],
            metadatas=metadatas,
        )

    def delete(self, item_ids: Sequence[str], source: str | None = None) -> None:
        """Every fact of ``item_ids`` (from ``source`` only, when given)."""
        for start in range(0, len(item_ids), GET_CHUNK):
            chunk = list(item_ids[start : start + GET_CHUNK])
            where: dict[str, Any] = {"item_id": {"$in": chunk}}
            if source is not None:
                where = {"$and": [where, {"source": source}]}
            self.collection.delete(where=where)

    def item_ids(self) -> set[str]:
        return {str(meta["item_id"]) for _, meta, _ in self._all(["metadatas"])}

    def facts(self, item_ids: Sequence[str]) -> dict[str, list[Fact]]:
        """The stored facts of ``item_ids`` (markers left out)."""
        found: dict[str, list[Fact]] = {}
        for start in range(0, len(item_ids), GET_CHUNK):
            chunk = list(item_ids[start : start + GET_CHUNK])
            got = self.collection.get(
                where={"item_id": {"$in": chunk}}, include=["metadatas", "documents"]
            )
            for meta, doc in zip(got["metadatas"] or [], got["documents"] or [], strict=True):
                if meta.get("field"):
                    fact = Fact(str(meta["item_id"]), str(meta["field"]), doc, str(meta["source"]))
                    found.setdefault(fact.item_id, []).append(fact)
        return found

    def count(self) -> int:
        return int(self.collection.count())

    def search(
        self,
        query: str,
        k: int,
        fields: Sequence[str],
        filters: Filters | None = None,
        matched: str = "knowledge",
    ) -> list[Hit]:
        """Items whose facts of ``fields`` are nearest to ``query``; an item's similarity is
        that of its best fact."""
        if not fields or not query.strip() or not self.count():
            return []
        clauses: list[dict[str, Any]] = [{"field": {"$in": list(fields)}}]
        where = (filters or Filters()).where()
        if where:
            clauses.append(where)
        self.store.searches.add(1, where=True)  # the field is always a filter
        result = self.collection.query(
            query_texts=[query],
            n_results=k * len(fields),
            where=clauses[0] if len(clauses) == 1 else {"$and": clauses},
            include=["metadatas", "distances"],
        )
        best: dict[str, float] = {}
        for meta, distance in zip(result["metadatas"][0], result["distances"][0], strict=True):
            item_id = str(meta["item_id"])
            best[item_id] = max(best.get(item_id, -1.0), 1.0 - float(distance))
        ranked = sorted(best.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
        stored = self.store.items([i for i, _ in ranked])
        return [Hit.of(stored[i], round(score, 4), matched) for i, score in ranked if i in stored]
