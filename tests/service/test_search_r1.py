"""`POST /retrieve`: Search-R1's retrieval-server contract, against a real server on 127.0.0.1."""

from __future__ import annotations

import json

from tests.service.test_api_errors import assert_error


def _check_document(doc: dict) -> None:
    assert set(doc) == {"id", "contents"}
    title, _, text = doc["contents"].partition("\n")
    assert title.startswith('"') and title.endswith('"') and text  # Search-R1's wiki-18 layout


def test_retrieve_with_scores_has_search_r1_shape(agent_client):
    r = agent_client.post("/retrieve", json={"queries": ["how do tides rise and fall", "yeast dough"], "topk": 2,
                                             "return_scores": True})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"result"} and len(body["result"]) == 2
    for hits in body["result"]:
        assert len(hits) == 2
        for item in hits:
            assert set(item) == {"document", "score"} and isinstance(item["score"], float)
            _check_document(item["document"])
        assert hits[0]["score"] >= hits[1]["score"]
    assert body["result"][0][0]["document"]["id"] == "tides#0"
    assert body["result"][0][0]["document"]["contents"].startswith('"Ocean tides"\nThe gravitational pull')
    assert body["result"][1][0]["document"]["id"] == "bread#0"


def test_retrieve_without_scores_is_a_plain_document_list(agent_client):
    r = agent_client.post("/retrieve", json={"queries": ["volcanic eruption lava"]})
    assert r.status_code == 200, r.text
    hits = r.json()["result"][0]
    assert len(hits) == 3  # Search-R1's default topk
    for doc in hits:
        _check_document(doc)
    assert hits[0]["id"] == "volcano#0"


def test_retrieve_bad_input_names_the_field(agent_client):
    assert_error(agent_client.post("/retrieve", json={"queries": ["tides"], "topk": -1}), 422, "invalid_request", "topk")


def test_a_query_over_the_cap_is_searched_by_its_first_words(agent_client):
    """It was a 400 for the whole batch, and Search-R1's client, which reads `result` without a status
    check, crashed every rollout of the step; Search-R1's retrievers read a query up to their encoder's
    length."""
    from service.search_r1 import within

    long_query = "volcanic eruption lava flows " * 400 + "x" * 50  # 11,650 characters
    r = agent_client.post("/retrieve", json={"queries": ["how do tides rise and fall", long_query]})
    assert r.status_code == 200, r.text
    first_words = within(long_query, 10_000)
    assert len(first_words) > 9_900 and long_query.startswith(first_words) and long_query[len(first_words)] == " "  # at a word
    alone = agent_client.post("/retrieve", json={"queries": [first_words]}).json()["result"][0]
    assert r.json()["result"][1] == alone and alone[0]["id"] == "volcano#0"
    # words only past the cap: the part searched has none, so no documents (it was a 400 for the batch)
    r = agent_client.post("/retrieve", json={"queries": ["how do tides rise and fall", "-" * 10_001 + " tides"]})
    assert r.status_code == 200 and r.json()["result"][1] == [], r.text


def test_a_training_step_of_long_queries_is_under_the_body_cap(agent_client):
    """2,560 queries of ~420 characters (a step of train_grpo.sh's defaults) are over /v1/search's 1 MiB body cap."""
    # Rollouts' searches of symbols only (nothing to search, answered at once) fill the body as long questions would.
    queries = ["volcanic eruption lava"] + ["? " * 210] * 2559
    body = json.dumps({"queries": queries, "topk": 1}).encode()
    assert 1 << 20 < len(body) < 8 << 20
    r = agent_client.post("/retrieve", content=body, headers={"content-type": "application/json"}, timeout=600)
    assert r.status_code == 200 and len(r.json()["result"]) == 2560, r.text[:300]
    assert r.json()["result"][0][0]["id"] == "volcano#0" and r.json()["result"][1:] == [[]] * 2559
    over = json.dumps({"queries": ["lava " * 2000] * 840}).encode()  # 8.4 MB
    assert_error(agent_client.post("/retrieve", content=over, headers={"content-type": "application/json"}), 413, "payload_too_large")
    search = json.dumps({"queries": queries[:64]}).encode() + b" " * (1 << 20)
    assert_error(agent_client.post("/v1/search", content=search, headers={"content-type": "application/json"}), 413, "payload_too_large")


def test_retrieve_answers_what_search_r1_sends_from_a_training_step(agent_client):
    """Search-R1's trainer posts every step's searches: none when every rollout answered, an empty one
    for `<search></search>`, stopwords only. Each such query gets no documents, the rest theirs."""
    assert agent_client.post("/retrieve", json={"queries": []}).json() == {"result": []}
    alone = agent_client.post("/retrieve", json={"queries": ["volcanic eruption lava"], "topk": 0}).json()["result"][0]
    assert len(alone) == 3  # topk 0 is Search-R1's default, as its server reads it
    for odd in (["", "volcanic eruption lava"], ["  ", "volcanic eruption lava", "the of and"], ["?!", "volcanic eruption lava"]):
        r = agent_client.post("/retrieve", json={"queries": odd, "topk": 0})
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        assert len(result) == len(odd) and result[1] == alone
        assert all(docs == [] for i, docs in enumerate(result) if i != 1)
    only_stopwords = agent_client.post("/retrieve", json={"queries": ["the of and"], "return_scores": True})
    assert only_stopwords.json() == {"result": [[]]}


def test_retrieve_takes_a_whole_training_step_of_searches(agent_client):
    """Search-R1's GRPO step posts up to 512 prompts x 5 rollouts at once and its client reads `result`
    without a status check: more than /v1/search's 64 queries must answer, each as if asked alone,
    in order (slices of 64 here, one of them all empty searches)."""
    asks = ["volcanic eruption lava", "how do tides rise and fall", "yeast dough", ""]
    alone = {q: agent_client.post("/retrieve", json={"queries": [q]}).json()["result"][0] for q in asks}
    queries = [asks[i % 3] for i in range(100)] + [""] * 64 + [asks[i % 4] for i in range(36)]
    r = agent_client.post("/retrieve", json={"queries": queries})
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert len(result) == 200 and result == [alone[q] for q in queries]
    assert_error(agent_client.post("/retrieve", json={"queries": ["tides"] * 8193}), 422, "invalid_request", "queries")


def test_retrieve_reads_its_fields_as_search_r1s_own_model_does(agent_client):
    """Search-R1's pydantic model is lax: "2" and 2.0 are a topk of 2, "true" and 1 turn scores on."""
    for topk, scores in (("2", "true"), (2.0, 1)):
        r = agent_client.post("/retrieve", json={"queries": ["yeast dough"], "topk": topk, "return_scores": scores})
        assert r.status_code == 200, r.text
        hits = r.json()["result"][0]
        assert len(hits) == 2 and all(set(h) == {"document", "score"} for h in hits)
    assert_error(agent_client.post("/retrieve", json={"queries": ["tides"], "topk": 2.5}), 422, "invalid_request", "topk")


def test_a_title_keeps_to_the_first_line_of_contents():
    """Search-R1's client takes the text before the first newline as the title: a title with a line
    break (JSONL and PDF titles keep theirs) would cut it in two."""
    from service.search_r1 import contents

    assert contents("Penicillin\nDiscovery \r\n of 1928", "Fleming saw mould.") == '"Penicillin Discovery of 1928"\nFleming saw mould.'


def test_retrieve_queries_count_in_the_search_metrics(agent_client):
    """/retrieve is the RL rollouts' path: its queries went uncounted in drsearch_search_queries_total."""
    from tests.service.test_api import metric

    before = metric(agent_client, "drsearch_search_queries_total")
    r = agent_client.post("/retrieve", json={"queries": ["how do tides rise and fall", "yeast dough"], "topk": 1})
    assert r.status_code == 200, r.text
    assert metric(agent_client, "drsearch_search_queries_total") == before + 2


def test_a_query_is_cut_after_its_last_whole_word_within_the_cap():
    from service.search_r1 import within

    assert within("abc de", 5) == "abc" and within("ab cde xyz", 6) == "ab cde" and within("  ab cd  ", 5) == "ab cd"
    assert within("x" * 12, 5) == "xxxxx" and within("wing lift", None) == "wing lift"
