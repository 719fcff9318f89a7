"""WordNet 3.0, from Debian's ``wordnet-base`` package, read by nltk: what an ImageNet label means
(its synonyms, its hypernyms, its gloss).

nltk reads a WordNet folder only inside one of its data paths and needs a ``lexnames`` file that
Debian does not ship, so :func:`prepare_wordnet` copies the folder into the cache
(``CACHE_DIR/nltk_data/corpora/wordnet``) and writes that file (the standard 45 lexicographer
file names); :func:`open_wordnet` then reads the copy. Both are no-ops when done already.
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

from tools.errors import ModelError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
APT_PACKAGES = "wordnet-base wordnet-sense-index"
# The lexicographer files of WordNet 3.0, in number order (lexnames(5WN)).
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group "
    "noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant "
    "noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
    "noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_SYNTACTIC_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
NEEDED = ("data.noun", "index.noun", "index.sense")


def wordnet_dir(cache_dir: Path) -> Path:
    return cache_dir / "nltk_data" / "corpora" / "wordnet"


def prepare_wordnet(cache_dir: Path, source: Path = DEBIAN_WORDNET) -> Path:
    """The cache's WordNet folder, copied from ``source`` with a ``lexnames`` file added."""
    target = wordnet_dir(cache_dir)
    if (target / "lexnames").is_file():
        return target
    if not all((source / name).is_file() for name in NEEDED):
        raise ModelError(f"WordNet is not installed in {source}: apt-get install {APT_PACKAGES}")
    staging = target.with_name("wordnet.staging")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(source, staging)
    (staging / "lexnames").write_text(
        "".join(
            f"{number:02d}\t{name}\t{_SYNTACTIC_CATEGORY[name.split('.')[0]]}\n"
            for number, name in enumerate(LEXNAMES)
        )
    )
    if target.exists():
        shutil.rmtree(target)
    staging.replace(target)
    return target


@lru_cache(maxsize=4)
def open_wordnet(cache_dir: Path) -> Any:
    """nltk's WordNet reader on the cache's copy (prepared on first use when missing)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    folder = prepare_wordnet(cache_dir)
    data_root = str(folder.parent.parent)
    if data_root not in nltk.data.path:  # nltk reads only inside its data paths
        nltk.data.path.append(data_root)
    import warnings

    with warnings.catch_warnings():  # "multilingual functions are not available": not used
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(str(folder), None)
