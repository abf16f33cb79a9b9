"""Backend names -> (manifest section, writer, searcher): the one place that lists backends.

Adding a backend is one folder under `backends/` plus one entry in `BACKENDS` (and, when
`index build --backend NAME` should write it, one entry in `BUILDS`). A build's manifest names
the backend of each leg in its section's `backend` field, so `open_legs` needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from backends.base import LEXICAL, VECTOR, Leg, LexicalRetriever, Section, VectorRetriever, Writer
from backends.elastic.searcher import ElasticSearcher, ElasticVectorSearcher
from backends.elastic.section import ElasticSection, ElasticVectorSection
from backends.elastic.writer import ElasticVectorWriter, ElasticWriter
from backends.faiss.searcher import FaissSearcher
from backends.faiss.section import FaissSection
from backends.faiss.writer import FaissWriter
from backends.lucene.searcher import LuceneSearcher
from backends.lucene.section import LuceneSection
from backends.lucene.writer import LuceneWriter
from indexer.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from backends.manifest import Manifest
    from indexer.settings import BuildSettings


@dataclass(frozen=True)
class Backend:
    name: str
    leg: Leg
    section: type[Section]
    writer: type  # Writer: constructed from BuildSettings, `write(BuildContext) -> section`
    searcher: type  # LexicalRetriever | VectorRetriever: `open(build_dir, section, threads=) -> searcher`


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("lucene", LEXICAL, LuceneSection, LuceneWriter, LuceneSearcher),
        Backend("faiss", VECTOR, FaissSection, FaissWriter, FaissSearcher),
        Backend("elasticsearch", LEXICAL, ElasticSection, ElasticWriter, ElasticSearcher),
        Backend("elasticsearch-knn", VECTOR, ElasticVectorSection, ElasticVectorWriter, ElasticVectorSearcher),
    )
}

# `index build --backend NAME`: which backend writes each leg.
BUILDS: dict[str, dict[Leg, str]] = {
    "embedded": {LEXICAL: "lucene", VECTOR: "faiss"},
    "elasticsearch": {LEXICAL: "elasticsearch", VECTOR: "elasticsearch-knn"},  # both legs in one index
}
DEFAULT_BUILD = "embedded"


def section_type(leg: Leg) -> Any:
    """The union of every registered section model for `leg` (pydantic picks one by its `backend`)."""
    return Union[tuple(b.section for b in BACKENDS.values() if b.leg == leg)]  # noqa: UP007


def writers(settings: "BuildSettings", **kwargs: Any) -> list[Writer]:
    """The writers of a build: the lexical leg always, the vector leg when enabled.

    Constructing them checks their settings (and loads the encoder) before any corpus is read;
    `kwargs` go to every writer that accepts them (e.g. a preloaded `model`)."""
    legs = BUILDS.get(settings.backend)
    if legs is None:
        raise ConfigError(f"unknown backend '{settings.backend}' (known: {', '.join(BUILDS)})", field="backend")
    wanted = [LEXICAL] + ([VECTOR] if settings.dense.enabled else [])
    return [BACKENDS[legs[leg]].writer(settings, **kwargs) for leg in wanted]


def open_legs(build_dir: Path, manifest: "Manifest", *, threads: int = 2) -> dict[Leg, LexicalRetriever | VectorRetriever]:
    """The searchers of the legs `manifest` names, keyed by leg (cheap: heavy files load on first use)."""
    legs: dict[Leg, Any] = {}
    try:
        for leg in (LEXICAL, VECTOR):
            section = manifest.section(leg)
            if section is not None:
                legs[leg] = BACKENDS[section.backend].searcher.open(build_dir, section, threads=threads)
    except BaseException:
        for opened in legs.values():
            opened.close()
        raise
    return legs
