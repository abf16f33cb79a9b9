"""The typed build manifest: general build facts plus one section per leg, each owned by its backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from backends.base import LEXICAL, VECTOR, Leg, Section
from backends.registry import section_type
from indexer import layout
from indexer.checksums import FileRecord
from indexer.errors import IndexFormatError


class CorpusInfo(BaseModel):
    paths: list[str]
    sha256: str


class Manifest(BaseModel):
    """`manifest.json` of one build. Extra top-level keys are annotations (e.g. the authority list's hash)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    format_version: int = layout.FORMAT_VERSION
    drsearch_version: str
    version: str
    built_at: str
    build_seconds: float
    corpus: CorpusInfo
    counts: dict[str, Any]
    languages: dict[str, int] = {}  # documents per language (ISO 639-1); empty for builds before languages were kept
    chunking: dict[str, Any]
    bm25: section_type(LEXICAL)  # type: ignore[valid-type]
    dense: section_type(VECTOR) | None = None  # type: ignore[valid-type]
    timings: dict[str, float] = {}
    libraries: dict[str, str] = {}
    settings: dict[str, Any] = {}
    files: dict[str, FileRecord] | None = None  # relative path -> size and digest (indexer.checksums); None for builds before them

    def section(self, leg: Leg) -> Section | None:
        return self.bm25 if leg == LEXICAL else self.dense

    @property
    def legs(self) -> tuple[Leg, ...]:
        return tuple(leg for leg in (LEXICAL, VECTOR) if self.section(leg) is not None)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def write(self, build_dir: Path) -> None:
        """Write it last: its presence marks the build complete."""
        layout.write_manifest(build_dir, self.as_json())

    @classmethod
    def read(cls, build_dir: Path) -> "Manifest":
        raw = layout.read_manifest(build_dir)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise IndexFormatError(
                f"manifest field {where}: {err['msg']}", where=str(build_dir / layout.MANIFEST)
            ) from None
