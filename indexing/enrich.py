"""``recagent enrich``: every stored item gains facts from knowledge sources
(:mod:`indexing.knowledge`), incrementally.

An item is asked of a source again only when its ``text_hash`` or the source's version changed
since its facts were made; facts of items no longer in the store are dropped. Work goes in
batches, each written before the next starts, so a killed run resumes where it stopped. A
source that fails on a batch costs that batch (reported), never the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from indexing.knowledge import Fact, KnowledgeStore
from indexing.records import StoredItem
from indexing.store import Store
from tools.errors import RecagentError

log = logging.getLogger(__name__)
BATCH = 64

Progress = Callable[[int, int], None]


class Source(Protocol):
    name: str
    version: str

    def facts(self, items: Sequence[StoredItem]) -> list[Fact]: ...


@dataclass
class SourceReport:
    asked: int = 0  # items whose facts were (re)made
    unchanged: int = 0
    with_facts: int = 0
    facts: int = 0
    failed: list[str] = field(default_factory=list)  # "batch of N from ID: problem"
    seconds: float = 0.0


@dataclass
class EnrichReport:
    sources: dict[str, SourceReport] = field(default_factory=dict)
    pruned: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pruned": self.pruned,
            "sources": {
                name: {
                    "asked": r.asked,
                    "unchanged": r.unchanged,
                    "with facts": r.with_facts,
                    "facts": r.facts,
                    "failed": r.failed,
                    "seconds": round(r.seconds, 3),
                }
                for name, r in self.sources.items()
            },
        }


def enrich(
    store: Store,
    sources: Sequence[Source],
    progress: Progress | None = None,
    batch: int = BATCH,
) -> EnrichReport:
    """Bring every item's facts from ``sources`` up to date."""
    knowledge = KnowledgeStore(store)
    items = store.all_items()
    hashes = store.stored_state([i.id for i in items]).text_hash
    report = EnrichReport()
    gone = sorted(knowledge.item_ids() - {i.id for i in items})
    knowledge.delete(gone)
    report.pruned = len(gone)
    plans = []
    for source in sources:
        made = knowledge.made(source.name)
        todo = [
            i
            for i in items
            if (m := made.get(i.id)) is None
            or (m.item_hash, m.version) != (hashes.get(i.id, ""), source.version)
        ]
        report.sources[source.name] = SourceReport(unchanged=len(items) - len(todo))
        plans.append((source, todo))
    total, done = sum(len(todo) for _, todo in plans), 0
    if progress:
        progress(0, total)
    for source, todo in plans:
        result = report.sources[source.name]
        started = time.perf_counter()
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            try:
                facts = source.facts(chunk)
            except (RecagentError, OSError, ValueError) as exc:
                result.failed.append(f"batch of {len(chunk)} from {chunk[0].id}: {exc}")
                log.warning("%s failed on a batch from %s: %s", source.name, chunk[0].id, exc)
            else:
                knowledge.replace(source.name, source.version, chunk, hashes, facts)
                result.asked += len(chunk)
                result.facts += len(facts)
                result.with_facts += len({f.item_id for f in facts})
            done += len(chunk)
            if progress:
                progress(done, total)
        result.seconds = time.perf_counter() - started
    return report
