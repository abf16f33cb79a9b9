"""The search payload's JSON (`service.app._encode`): orjson's bytes are `json.dumps`'s, and what orjson
refuses still encodes."""

from __future__ import annotations

import json

import numpy as np

from service.app import _encode


def dumps(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def test_payload_bytes_are_those_of_json_dumps():
    hit = {"rank": 1, "passage_id": "d1#0", "title": "Straße — 经济 \U0001f600", "url": None, "authority": None,
           "snippet": "…a \"quoted\" \\ line\nbreak\t…", "scores": {"fused": 0.7312345678901234, "bm25": 12.5, "dense": -0.0,
           "tiny": 1e-300, "big": 1.5e300}, "ranks": {"bm25": 3, "dense": None}}  # fmt: skip
    payload = {"results": [{"query": "q", "hits": [hit] * 3, "exhausted": True, "undated_dropped": 0}]}
    assert _encode(payload) == dumps(payload)


def test_what_orjson_refuses_goes_through_json():
    lone = {"results": [{"hits": [{"snippet": "a \udc80 b"}]}]}  # a lone surrogate from a stored text
    assert json.loads(_encode(lone))["results"][0]["hits"][0]["snippet"] == "a \udc80 b"
    numpy_score = {"results": [{"hits": [{"scores": {"fused": np.float64(0.25)}}]}]}
    assert _encode(numpy_score) == dumps(numpy_score)
