"""Document-level evaluation of passage retrieval (MaxP) on BEIR-layout collections."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from indexer.errors import CorpusError, QueryError
from indexer.readers import text_lines
from indexer.schema import doc_id_of
from ranker.hit import Hit

METRICS = ("ndcg@10", "recall@100", "mrr@10")
PASSAGE_DEPTH = 1000  # passages retrieved per query before MaxP; enough for 100 documents
MIN_GRADE, MAX_GRADE = -(2**31), 2**31 - 1


def _check_folder(beir_dir: Path) -> None:
    if not Path(beir_dir).is_dir():
        raise CorpusError("no such folder" if not Path(beir_dir).exists() else "not a folder (give the folder holding "
                          "queries.jsonl and qrels/)", where=str(beir_dir))  # fmt: skip


def load_qrels(beir_dir: Path, split: str = "test") -> dict[str, dict[str, int]]:
    _check_folder(beir_dir)
    path = Path(beir_dir) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise CorpusError(f"no qrels for split '{split}' (expected qrels/{split}.tsv)", where=str(beir_dir))
    qrels: dict[str, dict[str, int]] = {}
    judged_at: dict[tuple[str, str], int] = {}  # (query, document) -> its line: a second, other grade is a conflict
    for lineno, line in text_lines(path):
        line = line.rstrip()
        # A line is a row: BEIR's tab-separated `query-id corpus-id score` (a quote or a space in an id is
        # part of it), or TREC's `qid 0 docid rel`, tab- or space-separated. Space-separated, only TREC's
        # four fields: `q1 doc a 1` cannot be told from TREC's, and was read as document `a`.
        row = line.split("\t") if "\t" in line else line.split()
        if not row or (lineno == 1 and row[0] in ("query-id", "query_id", "qid")):
            continue
        if len(row) == 4:  # TREC qrels: qid 0 docid rel
            if not row[1].lstrip("Qq").isdigit():  # `q1 doc a 1`: BEIR with spaces, not TREC's iteration
                raise CorpusError(f"a TREC qrels line's second field is its iteration (0), got '{row[1]}' (BEIR qrels "
                                  "are tab-separated)", where=f"{path}:{lineno}")  # fmt: skip
            row = [row[0], row[2], row[3]]
        elif len(row) != 3 or "\t" not in line:
            raise CorpusError("a qrels row is `query-id<TAB>corpus-id<TAB>score` (BEIR) or `qid 0 docid rel` (TREC), "
                              f"got {len(row)} {'tab-separated columns' if chr(9) in line else 'space-separated fields'}",
                              where=f"{path}:{lineno}")  # fmt: skip
        try:
            grade = int(row[2])
        except ValueError:
            raise CorpusError(f"relevance '{row[2]}' is not an integer", where=f"{path}:{lineno}") from None
        if not MIN_GRADE <= grade <= MAX_GRADE:  # pytrec_eval keeps grades in C ints: larger ones overflowed or wrapped
            raise CorpusError(f"relevance {grade} is out of range ({MIN_GRADE} to {MAX_GRADE})", where=f"{path}:{lineno}")
        grades = qrels.setdefault(row[0], {})
        if grades.get(row[1], grade) != grade:
            raise CorpusError(f"query '{row[0]}', document '{row[1]}' judged {grade} here and {grades[row[1]]} at line "
                              f"{judged_at[row[0], row[1]]}", where=f"{path}:{lineno}")  # fmt: skip
        grades[row[1]] = grade
        judged_at.setdefault((row[0], row[1]), lineno)
    if not qrels:
        raise CorpusError("no judgements (every line is blank or the header)", where=str(path))
    return qrels


def queries_path(beir_dir: Path) -> Path:
    return Path(beir_dir) / "queries.jsonl"


def load_queries(beir_dir: Path) -> dict[str, str]:
    return {qid: text for qid, (_, text) in _read_queries(beir_dir).items()}


def _read_queries(beir_dir: Path) -> dict[str, tuple[int, str]]:
    """Query id -> (line number in queries.jsonl, text)."""
    _check_folder(beir_dir)
    path = queries_path(beir_dir)
    if not path.is_file():
        raise CorpusError("no queries.jsonl", where=str(beir_dir))
    out = {}
    for lineno, line in text_lines(path):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            raw_id, text = rec["_id"] if "_id" in rec else rec["id"], rec["text"]  # `id` as a documents line has it
            if type(raw_id) not in (str, int):  # a null id was read as the query "None"
                raise TypeError
            qid = str(raw_id)
        except (json.JSONDecodeError, KeyError, TypeError):
            raise CorpusError("malformed query line (needs _id (or id) and text; an id is a string or an integer)",
                              where=f"{path}:{lineno}") from None  # fmt: skip
        if not isinstance(text, str):
            raise CorpusError(f"query '{qid}': text must be a string, got {type(text).__name__}", where=f"{path}:{lineno}")
        if qid in out:  # the last would silently replace the first, and the scores be of other queries
            raise CorpusError(f"duplicate query id '{qid}' (first at line {out[qid][0]})", where=f"{path}:{lineno}")
        out[qid] = (lineno, text)
    return out


def max_passage(hits: list[Hit], *, exclude: str | None = None) -> dict[str, float]:
    """Document scores from passage hits: each document scores its best passage (MaxP).

    Scores are replaced by a strictly decreasing sequence so evaluation follows our
    rank order exactly (trec_eval would otherwise break score ties by doc id)."""
    docs: dict[str, float] = {}
    for hit in hits:
        doc = hit.doc_id or doc_id_of(hit.passage_id)
        if doc == exclude or doc in docs:
            continue
        docs[doc] = float(-len(docs))
    return docs


def evaluate_run(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    import pytrec_eval

    judged = {q: r for q, r in qrels.items() if q in run}
    full = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.100"})
    top10 = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10]) for q, docs in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"})
    per_query = full.evaluate({q: run[q] for q in judged})
    per_query_rr = rr.evaluate({q: top10[q] for q in judged})
    n = len(judged) or 1
    return {
        "ndcg@10": round(sum(v["ndcg_cut_10"] for v in per_query.values()) / n, 4),
        "recall@100": round(sum(v["recall_100"] for v in per_query.values()) / n, 4),
        "mrr@10": round(sum(v["recip_rank"] for v in per_query_rr.values()) / n, 4),
        "queries": len(judged),
    }


def evaluate(
    rank: Callable[[list[str]], list[list[Hit]]],
    beir_dir: Path,
    *,
    split: str = "test",
    ignore_identical_ids: bool = False,
    batch: int = 100,
    quiet: bool = False,
    desc: str = "eval",
) -> dict[str, float]:
    """Evaluate `rank` (queries -> passage hits, best first) on a BEIR collection's split: the metrics,
    `queries` (how many were judged and searched) and `left_out` (judged query ids without a line in
    queries.jsonl, in qrels order)."""
    qrels = load_qrels(beir_dir, split)
    queries = _read_queries(beir_dir)
    qids = [q for q in qrels if q in queries]
    if not qids:
        raise CorpusError(f"no query judged here has a line in queries.jsonl (e.g. '{next(iter(qrels))}')",
                          where=str(Path(beir_dir) / "qrels" / f"{split}.tsv"))  # fmt: skip
    run: dict[str, dict[str, float]] = {}
    with tqdm(total=len(qids), desc=desc, unit="q", disable=quiet, dynamic_ncols=True) as bar:
        for i in range(0, len(qids), batch):
            chunk = qids[i : i + batch]
            for qid, hits in zip(chunk, _rank_naming_query(rank, chunk, queries, beir_dir)):
                run[qid] = max_passage(hits, exclude=qid if ignore_identical_ids else None)
            bar.update(len(chunk))
    return {**evaluate_run(run, qrels), "left_out": [q for q in qrels if q not in queries]}


def _rank_naming_query(rank: Callable[[list[str]], list[list[Hit]]], qids: list[str],
                       queries: dict[str, tuple[int, str]], beir_dir: Path) -> list[list[Hit]]:  # fmt: skip
    """`rank` of these queries; a query it refuses (empty, no searchable terms) is a CorpusError
    naming its queries.jsonl line and id, as a bad corpus line is."""
    try:
        return rank([queries[q][1] for q in qids])
    except QueryError:
        for qid in qids:  # the batch's error names a position in it: find the query by ranking each alone
            lineno, text = queries[qid]
            try:
                rank([text])
            except QueryError as exc:
                raise CorpusError(f"query '{qid}': {exc.message}", where=f"{queries_path(beir_dir)}:{lineno}") from None
        raise
