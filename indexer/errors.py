"""Typed errors. The CLI and the HTTP service map them to one-line messages / 4xx codes."""

from __future__ import annotations


ECHO_CHARS = 100  # the most of a client's text an error message quotes


def echo(text: object, limit: int = ECHO_CHARS) -> str:
    """Client-supplied text (a query, a field value, a host, a URL) as an error message quotes it: as
    repr() writes it (quoted; control characters, newlines and lone surrogates escaped) and cut to
    `limit` characters with a marker saying how long it was, so a message stays one short line
    whatever a client sends. Every message that echoes client text goes through here."""
    value = text if isinstance(text, str) else repr(text)
    if len(value) <= limit:
        return repr(value) if isinstance(text, str) else value
    cut = value[:limit]
    return f"{repr(cut) if isinstance(text, str) else cut}… ({len(value)} characters)"


class DrsearchError(Exception):
    """Base of every error caused by user input or environment, never by a bug."""

    def __init__(self, message: str, *, where: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where  # "file:line", a path, ...
        self.field = field  # request field or parameter name

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class CorpusError(DrsearchError):
    """A corpus file is missing, unreadable, of the wrong layout or has a bad record."""


class IndexFormatError(DrsearchError):
    """A directory is not a drsearch index, is incomplete, or was written by a newer version."""


class QueryError(DrsearchError):
    """A query or a search option is unusable (empty, no searchable terms, bad value)."""


class ConfigError(DrsearchError):
    """A setting, model directory or list file is invalid."""


class BackendUnavailable(DrsearchError):
    """A search backend that runs elsewhere (an Elasticsearch cluster) cannot be reached or failed."""


class IndexClosed(BackendUnavailable):
    """A `SearchPipeline` was used after `close()`, or in a process forked from the one that opened it."""
