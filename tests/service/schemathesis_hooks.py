"""Schemathesis hooks for the fuzz test (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import schemathesis

FUZZ_DEADLINE_MS = 60_000


@schemathesis.hook
def map_body(context, body):
    # A deadline shorter than a search takes answers 504 deadline_exceeded by design (docs/API.md),
    # which the "no server error" check would count; tests/service/test_api_budget.py covers it.
    if isinstance(body, dict) and "timeout_ms" in body:
        body = {**body, "timeout_ms": FUZZ_DEADLINE_MS}
    return body
