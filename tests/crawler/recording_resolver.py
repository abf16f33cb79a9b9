"""A DNS resolver for crawl tests (`--set DRSEARCH_RESOLVE=tests.crawler.recording_resolver.resolve`):
appends every lookup to the file named by $DRSEARCH_TEST_RESOLVE_LOG and answers without the network."""

from __future__ import annotations

import os

LOG_ENV = "DRSEARCH_TEST_RESOLVE_LOG"


def resolve(host: str) -> list[str]:
    with open(os.environ[LOG_ENV], "a", encoding="utf-8") as fh:
        fh.write(host + "\n")
    return ["10.1.2.3"] if host.startswith("private.") else ["127.0.0.1"]  # loopback: connection refused at once
