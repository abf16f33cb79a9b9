"""The `drsearch` command line. Every user mistake ends as one line on stderr and exit code 2."""

from __future__ import annotations

if __name__ == "__main__":  # `python -m service.cli`: started as the console script is, so that a Ctrl-C
    from service.entry import main as _start  # while the modules below load is one line, not a traceback

    _start()

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from indexer.errors import DrsearchError
from service.api_models import MAX_K, MAX_OFFSET
from service.cli_authority import authority_app
from service.cli_builds import list_command, prune_command, use_command
from service.cli_crawl import crawl_command
from service.cli_encode import encode_command
from service.cli_io import (
    READER_GONE, Terminated, argument_text, echo_json, for_terminal, non_empty_path, one_line, output_failure,
    prepare_standard_streams, reader_gone, stop_writing_output, stopped_by_signals_with_a_word, warn_unread,
)
from service.cli_verify import verify_command
from service.settings import QuerySettings, ServiceSettings, env_var

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    name="drsearch", help="Paragraph-level hybrid search with authority-aware ranking.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)  # fmt: skip
index_app = typer.Typer(help="Build and inspect indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")
index_app.command("encode")(encode_command)
index_app.command("verify")(verify_command)
index_app.command("list")(list_command)
index_app.command("use")(use_command)
index_app.command("prune")(prune_command)
app.add_typer(authority_app, name="authority")
app.command("crawl")(crawl_command)


def _env_default(field: str) -> str:
    """`--help`'s default of a flag that falls back to its DRSEARCH_SERVE_* variable: `$VAR or <built-in>`."""
    info = ServiceSettings.model_fields[field]
    if info.is_required():
        return f"${env_var(field)}"
    default = str(info.default).lower() if isinstance(info.default, bool) else info.default
    return f"${env_var(field)} or {default}"


ModeOpt = Annotated[Optional[str], typer.Option("--mode", help="bm25 | dense | hybrid (default: hybrid when the index has a dense leg)")]
IndexOpt = Annotated[Path, typer.Option("--index", parser=non_empty_path, help="Index ROOT (uses its `current` build) or a build directory")]
# Flags that set a DRSEARCH_SERVE_* setting default to None (not given): flag > variable > built-in default.
QueryCapOpt = Annotated[Optional[int], typer.Option(min=0, help="Longest query accepted, in characters (0 = no cap)",
                                                    show_default=_env_default("max_query_chars"))]  # fmt: skip
MIN_SNIPPET_CHARS, MAX_SNIPPET_CHARS = 40, 2000  # the API's bounds (service.api_models.SearchRequest.snippet_chars)
MAX_K0 = 10_000  # ranker.options.SearchOptions.k0's bound
INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C (128 + SIGINT)


def _pipeline(index: Path, authority_weight: float | None = None, fusion: str | None = None):
    from ranker.pipeline import SearchPipeline

    return SearchPipeline.open(index, _search_settings(authority_weight=authority_weight, fusion=fusion))


def _search_settings(**flags: Any) -> Any:
    """The ranking's `SearchSettings` from the flags given over the DRSEARCH_* variables (DRSEARCH_MODE,
    DRSEARCH_AUTHORITY_WEIGHT, ...), as `_settings` makes them. Every command that ranks builds them
    here first, `serve` and `mcp` too, so that a bad variable is one line naming it."""
    from ranker.settings import SearchSettings

    return _settings(SearchSettings, **flags)


def _first_pydantic_error(exc: Exception, env_of: Callable[[tuple[str | int, ...]], str | None] | None = None) -> str:
    """One line for a settings or options error, naming the flag as typed, or with `env_of` the environment
    variable the value came from (with the value, since it is not on the command line)."""
    from service.errors import problem_message

    errors = getattr(exc, "errors", None)
    if callable(errors):
        err = errors()[0]
        env = env_of(err["loc"]) if env_of else None
        got = f", got {err['input']!r}" if env or err["type"] in ("literal_error", "enum") else ""
        where = env or _flag_of(err["loc"]) or ".".join(map(str, err["loc"]))  # a field no flag sets: from the environment
        return f"invalid {where}: {problem_message(err)}{got}"
    return str(exc)


def _settings(model: type[Any], **flags: Any) -> Any:
    """`model` (ServiceSettings, QuerySettings or SearchSettings) from the flags given (None: not given) over
    its variables (its `env_prefix`: DRSEARCH_SERVE_*, DRSEARCH_*) over the built-in defaults; a bad value
    is one line naming its flag or its variable."""
    from pydantic_settings import SettingsError

    prefix = model.model_config.get("env_prefix", "")

    def variable(field: str) -> str:
        return f"{prefix}{field}".upper()

    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return model(**given)
    except SettingsError as exc:  # a variable that is not JSON where JSON is needed (a list)
        field = re.search(r'field "(\w+)"', str(exc))
        raise DrsearchError(f"invalid {variable(field[1]) if field else prefix + '* variable'}: "
                            "not a valid JSON value (lists are JSON, e.g. [\"example.org\"])") from None  # fmt: skip
    except ValueError as exc:  # pydantic's ValidationError
        err = exc.errors()[0] if callable(getattr(exc, "errors", None)) else {}
        if err.get("type") == "missing" and err["loc"][0] in flags:
            field = str(err["loc"][0])
            raise DrsearchError(f"missing option '{_flag_of((field,))}' (or set {variable(field)})") from None

        def env_of(loc: tuple[str | int, ...]) -> str | None:
            field = loc[0] if loc else None
            return variable(str(field)) if field in model.model_fields and field not in given else None

        raise DrsearchError(_first_pydantic_error(exc, env_of)) from None


def _flag_of(loc: tuple[str | int, ...]) -> str | None:
    """The flag that set a settings field, as the user typed it: the running command's option whose
    parameter is named after the field, whole or its last parts (`bm25_k1` -> --k1, `dense.ann` ->
    --dense-index or --ann, `dense.languages` -> --dense-languages); None where no flag sets it."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    options = {p.name: p for p in ctx.command.params if p.param_type_name == "option"} if ctx else {}
    names = [part for part in loc if isinstance(part, str)]  # not a list item's index
    for i in range(len(names)):
        if option := options.get("_".join(names[i:])):
            given = [arg.split("=", 1)[0] for arg in sys.argv[1:] if arg.split("=", 1)[0] in option.opts]
            return given[-1] if given else option.opts[0]
    return None


@index_app.command("build")
def index_build(
    corpus: Annotated[list[Path], typer.Option("--corpus", parser=non_empty_path, help="BEIR dir, documents JSONL(.gz) file, or dir of shards; repeatable")],
    out: Annotated[Path, typer.Option("--out", parser=non_empty_path, help="Index ROOT: versioned builds + `current` pointer")],
    chunk_words: Annotated[int, typer.Option(help="Target passage size in words; 0 = one passage per document")] = 200,
    overlap_words: Annotated[int, typer.Option(help="Words of overlap between consecutive passages")] = 0,
    threads: Annotated[int, typer.Option(help="Lucene indexing threads")] = 2,
    bm25_k1: Annotated[float, typer.Option("--k1", help="BM25 k1")] = 0.9,
    bm25_b: Annotated[float, typer.Option("--b", help="BM25 b")] = 0.4,
    dense: Annotated[bool, typer.Option("--dense/--no-dense", help="Build the dense (FAISS) leg")] = True,
    model: Annotated[Optional[Path], typer.Option(parser=non_empty_path, help="sentence-transformers model directory (default: bundled all-MiniLM-L6-v2)")] = None,
    encoder: Annotated[str, typer.Option(help="auto (onnx on the CPU, st on a GPU) | st (torch) | onnx (ONNX Runtime fp32) | onnx-int8 | st-bf16 (torch bfloat16, for passages on AMX CPUs or GPUs); queries use the same encoder (st-bf16 builds: fp32)")] = "auto",
    dense_languages: Annotated[Optional[str], typer.Option(
        "--dense-languages", help="Languages the model covers, comma-separated ISO 639-1 or 639-3 codes, or * (default: the model card's; "
        "en for the bundled model). Hybrid runs BM25 alone for queries in other languages")] = None,
    ann: Annotated[str, typer.Option("--dense-index", "--ann", help="flat | hnsw | hnsw-sq8 | ivf-pq | auto (flat up to --exact-max passages, IVF-PQ from --ivf-min, HNSW between)")] = "auto",
    exact_max: Annotated[int, typer.Option(help="auto: exact inner-product search up to this many passages")] = 200_000,
    ivf_min: Annotated[int, typer.Option(help="auto: IVF-PQ from this many passages on")] = 2_000_000,
    ivf_nprobe: Annotated[Optional[int], typer.Option(help="IVF-PQ lists searched per query (default: a fifth of the lists, at least 32; recorded, used at search time)")] = None,
    pq_m: Annotated[Optional[int], typer.Option(help="IVF-PQ code bytes per vector, a divisor of the model's dimension (default: 48, or the divisor nearest 48 where 48 does not divide it)")] = None,
    hnsw_m: Annotated[int, typer.Option("--hnsw-m", help="HNSW graph degree M")] = 32,
    hnsw_ef_construction: Annotated[int, typer.Option(help="HNSW efConstruction")] = 80,
    hnsw_ef_search: Annotated[int, typer.Option(help="HNSW efSearch (recorded; used at search time)")] = 128,
    query_prefix: Annotated[str, typer.Option(help="Prefix for queries, e.g. 'query: ' for e5 models")] = "",
    passage_prefix: Annotated[str, typer.Option(help="Prefix for passages, e.g. 'passage: '")] = "",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip and count malformed lines instead of failing")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
    backend: Annotated[str, typer.Option(help="embedded (Lucene + FAISS files) | elasticsearch (a cluster)")] = "embedded",
    es_url: Annotated[Optional[str], typer.Option("--es-url", help="Elasticsearch URL (default: env DRSEARCH_ES_URL)")] = None,
    es_index: Annotated[Optional[str], typer.Option("--es-index", help="Elasticsearch alias; builds go to NAME-<version>")] = None,
) -> None:
    """Build a new index version from one or more corpora and switch `current` to it."""
    from indexer.build import build_index
    from indexer.settings import BuildSettings

    if not dense and dense_languages is not None:  # the languages of a dense leg that is not built
        from typer._click.exceptions import UsageError
        from typer._click.globals import get_current_context

        raise UsageError("--dense-languages cannot be used with --no-dense (no dense leg is built to record "
                         "its languages): drop one of them", ctx=get_current_context(silent=True))  # fmt: skip
    try:
        settings = BuildSettings(
            chunk_words=chunk_words, overlap_words=overlap_words, threads=threads, bm25_k1=bm25_k1, bm25_b=bm25_b,
            skip_bad=skip_bad, quiet=quiet, backend=backend,
            dense=dict(enabled=dense, model=str(model) if model else None, encoder=encoder, ann=ann, exact_max=exact_max,
                       ivf_min=ivf_min, ivf_nprobe=ivf_nprobe, pq_m=pq_m,
                       languages=[c for c in dense_languages.split(",") if c.strip()] if dense_languages else None,
                       hnsw_m=hnsw_m, hnsw_ef_construction=hnsw_ef_construction, hnsw_ef_search=hnsw_ef_search,
                       query_prefix=query_prefix, passage_prefix=passage_prefix),  # a dict: errors say dense.<field>
        )  # fmt: skip
    except ValueError as exc:
        raise DrsearchError(_first_pydantic_error(exc)) from None
    from ranker.authority import AuthorityList

    authority = AuthorityList.load()
    annotations = {"authority_list": {"directory": str(authority.directory), "sha256": authority.content_hash}}
    from service.cli_backends import writer_options

    options = writer_options(backend, authority, es_url=es_url, es_index=es_index)
    warn_unread(corpus)
    with stopped_by_signals_with_a_word():
        result = build_index(corpus, out, settings, annotations=annotations, writer_options=options)
    counts = result.manifest.counts
    typer.echo(
        f"built {result.build_dir} : {counts['documents']} documents, {counts['passages']} passages"
        f" (skipped {counts['skipped_empty']} empty, {counts['skipped_bad']} bad) in {result.manifest.build_seconds} s"
    )


@index_app.command("info")
def index_info(
    index: Annotated[Path, typer.Argument(parser=non_empty_path, help="Index ROOT or build directory")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON")] = False,
) -> None:
    """Print an index's manifest."""
    from backends.manifest import Manifest
    from indexer.columns import COLUMNS_DIR
    from indexer.layout import resolve_build

    build = resolve_build(index)
    manifest = Manifest.read(build)
    if as_json:
        typer.echo(json.dumps(manifest.as_json(), indent=2, sort_keys=True))
        return
    c = manifest.counts
    bad_lines = c.get("bad_lines") or []
    authority = (manifest.model_extra or {}).get("authority_list") or {}
    lines = [
        f"build       {build}",
        f"version     {manifest.version}  (format {manifest.format_version}, drsearch {manifest.drsearch_version})",
        f"built at    {manifest.built_at}  in {manifest.build_seconds} s",
        "timings     " + (", ".join(f"{stage.removesuffix('_s')} {t} s" for stage, t in manifest.timings.items()) or "none"),
        f"corpus      {', '.join(manifest.corpus.paths)}  sha256 {manifest.corpus.sha256[:16]}…",
        f"documents   {c['documents']}   passages {c['passages']}   skipped empty {c['skipped_empty']}  bad {c['skipped_bad']}",
        *(f"{'bad lines' if i == 0 else '':<12}{line}" for i, line in enumerate(bad_lines)),
        *([f"{'':<12}(the first {len(bad_lines)} of {c['skipped_bad']})"] if c["skipped_bad"] > len(bad_lines) > 0 else []),
        "languages   " + (", ".join(f"{lang} {n}" for lang, n in manifest.languages.items())
                          if manifest.languages else "not recorded (built before languages were kept)"),
        f"chunking    {manifest.chunking}",
        "text copies " + ("shown once in a result list (columns/text_hash.npy)"
                          if (build / COLUMNS_DIR / "text_hash.npy").exists()
                          else "not collapsed (built before columns/text_hash.npy; rebuild to collapse them)"),
        *(f"{leg:<12}{s.describe() if (s := manifest.section(leg)) else 'none'}" for leg in ("bm25", "dense")),
        f"libraries   {manifest.libraries}",
        "digests     " + (f"{len(manifest.files)} files recorded (drsearch index verify checks them)" if manifest.files is not None
                          else "not recorded (built before they were kept; rebuild to verify it)"),
        "authority   " + (f"sha256 {authority['sha256']}  {authority.get('directory', '')}".rstrip()
                          if authority.get("sha256") else "not recorded"),
    ]
    typer.echo("\n".join(lines))


def _search_options(**fields: object):
    """The request's one options object (ranker.options), checked here, once; bad values are one-line errors."""
    from indexer.errors import QueryError
    from ranker.options import SearchOptions

    try:
        return SearchOptions(**fields)
    except ValueError as exc:  # pydantic's ValidationError
        raise DrsearchError(_first_pydantic_error(exc)) from None
    except QueryError as exc:  # a value that names nothing known (a category, a country code): say which option
        where = exc.field and (_flag_of((exc.field,)) or exc.field)
        raise DrsearchError(f"invalid {where}: {exc.message}" if where else exc.message) from None


def _codes(values: list[str] | None) -> tuple[str, ...]:
    """Repeated and comma-separated codes (`--countries us,gb --countries de`) as one tuple."""
    return tuple(code for value in values or () for code in value.split(","))


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Query text (plain text; no query syntax)")],
    index: IndexOpt,
    k: Annotated[int, typer.Option("-k", "--k", help=f"Number of results (1-{MAX_K}, as the API's k)")] = 10,
    mode: ModeOpt = None,
    include_domains: Annotated[Optional[list[str]], typer.Option("--include-domain", help="Only these domains (and subdomains)")] = None,
    exclude_domains: Annotated[Optional[list[str]], typer.Option("--exclude-domain", help="Never these domains (and subdomains)")] = None,
    min_tier: Annotated[Optional[int], typer.Option("--min-tier", help="Only listed sources of tier <= N (1 = primary)")] = None,
    categories: Annotated[Optional[list[str]], typer.Option("--category", help="Only sources of this authority category")] = None,
    max_per_domain: Annotated[Optional[int], typer.Option("--max-per-domain", help="At most N hits per site")] = None,
    per_doc: Annotated[Optional[int], typer.Option("--per-doc", help="Passages per document (0 = no collapse; default 1)")] = None,
    dedupe_text: Annotated[bool, typer.Option("--dedupe-text/--no-dedupe-text", help="Show a passage text once (its best-ranked copy); --no-dedupe-text keeps every copy")] = True,
    published_after: Annotated[Optional[str], typer.Option("--published-after", help="YYYY[-MM[-DD]] inclusive")] = None,
    published_before: Annotated[Optional[str], typer.Option("--published-before", help="YYYY[-MM[-DD]] inclusive")] = None,
    languages: Annotated[Optional[list[str]], typer.Option("--language", "--languages", help="Only documents in these languages (ISO 639-1 or 639-3, e.g. zh, haw; comma-separated or repeated)")] = None,
    countries: Annotated[Optional[list[str]], typer.Option("--country", "--countries", help="Only sources of these countries (authority list codes, e.g. us,gb, int, eu; comma-separated or repeated)")] = None,
    time_range: Annotated[Optional[str], typer.Option("--time-range", help="day | week | month | year: published on or after --now minus 1 / 7 / 30 / 365 days (a lower bound only)")] = None,
    now: Annotated[Optional[str], typer.Option("--now", help="Reference time of --time-range (ISO 8601 with offset, e.g. 2026-11-30T12:00:00Z; default: the clock)")] = None,
    include_undated: Annotated[bool, typer.Option("--include-undated", help="With a date bound or --time-range, keep documents without a date")] = False,
    offset: Annotated[int, typer.Option("--offset", min=0, max=MAX_OFFSET, help="Skip this many ranks: page 2 of -k K is --offset K")] = 0,
    authority_weight: Annotated[Optional[float], typer.Option("--authority-weight", help="Authority prior strength; 0 = off")] = None,
    snippet_chars: Annotated[int, typer.Option(min=MIN_SNIPPET_CHARS, max=MAX_SNIPPET_CHARS, help="Snippet length in characters")] = 240,
    max_query_chars: QueryCapOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Search an index and print ranked passages."""
    from ranker.format import result_dicts
    from ranker.query import clean_query
    from ranker.snippets import snippets

    if not 1 <= k <= MAX_K:  # the API's bound (SearchRequest.k), checked before anything is opened
        raise DrsearchError(f"invalid {_flag_of(('k',))}: must be between 1 and {MAX_K}, got {k}")
    max_chars = _settings(QuerySettings, max_query_chars=max_query_chars).max_query_chars
    query = clean_query(argument_text(query), max_chars=max_chars)
    options = _search_options(
        k=k, mode=mode, include_domains=tuple(include_domains or ()), exclude_domains=tuple(exclude_domains or ()),
        min_tier=min_tier, categories=tuple(categories or ()), published_after=published_after,
        published_before=published_before, languages=_codes(languages), countries=_codes(countries), time_range=time_range,
        now=now, include_undated=include_undated, max_per_domain=max_per_domain, per_doc=per_doc,
        dedupe_text=dedupe_text,
    )  # fmt: skip
    pipeline = _pipeline(index, authority_weight=authority_weight)
    undated = [0]
    ranked = pipeline.batch_search([query], options.to_search(k=offset + k, page_size=k), None, undated)[0]  # the page is ranks offset+1..
    if offset and len(ranked) <= offset:
        raise DrsearchError(f"offset: offset {offset} is beyond the {len(ranked)} ranked results")
    results = ranked[offset:]
    resolved = pipeline.resolve_mode(mode)
    if as_json:
        payload = {
            "query": query, "index_version": pipeline.version, "mode": resolved,
            "mode_used": pipeline.mode_used(query, resolved), "undated_dropped": undated[0],
            "hits": result_dicts([(r, query) for r in results], snippet_chars=snippet_chars),
        }  # fmt: skip
        echo_json(payload, indent=2)
        return
    if pipeline.mode_used(query, resolved) != resolved:
        typer.echo(f"mode bm25: the dense model covers {','.join(pipeline.dense_languages)}, not this query's language")
    if not results:
        typer.echo("no results")
    for r, shown in zip(results, snippets([(r.passage.text, query) for r in results], snippet_chars)):
        h, p = r.hit, r.passage
        auth = f"  [{r.authority.name}, tier {r.authority.tier}]" if r.authority else ""
        src = f"  {p.url}" if p.url else ""
        typer.echo(for_terminal(f"{h.rank:>3}. {h.score:.4f}  {p.doc_id}  {p.title[:90]}{src}{auth}"))
        typer.echo(for_terminal(f"     {shown}"))


def _relevant_not_indexed(pipeline: Any, qrels: dict[str, dict[str, int]]) -> list[str]:
    """The documents judged relevant (grade > 0) that the index holds no passage of, sorted."""
    from indexer.schema import doc_id_of, passage_id_for

    relevant = {doc for judged in qrels.values() for doc, grade in judged.items() if grade > 0}
    found = {doc_id_of(p) for p in pipeline.store.passages_by_id(passage_id_for(doc, 0) for doc in relevant)}
    return sorted(relevant - found)


@app.command("eval")
def evaluate(
    index: IndexOpt,
    beir: Annotated[Path, typer.Option("--beir", parser=non_empty_path, help="BEIR-layout directory with queries.jsonl and qrels/")],
    split: Annotated[str, typer.Option(help="qrels split")] = "test",
    mode: Annotated[Optional[str], typer.Option("--mode", help="bm25 | dense | hybrid | all")] = None,
    ignore_identical_ids: Annotated[bool, typer.Option("--ignore-identical-ids", help="Drop a document whose id equals the query id")] = False,
    fusion: Annotated[Optional[str], typer.Option("--fusion", help="hybrid fusion: rrf | convex | rescore")] = None,
    authority_weight: Annotated[float, typer.Option("--authority-weight", help="Authority prior during eval")] = 0.0,
    k0: Annotated[Optional[int], typer.Option("--k0", min=1, max=MAX_K0, help="Passages per leg and evaluated per query "
                                              "(default 1000; --k0 100 evaluates the serving default)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object keyed by mode")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """nDCG@10, Recall@100 and MRR@10 at document level (MaxP)."""
    from ranker.eval import PASSAGE_DEPTH, load_qrels
    from ranker.eval import evaluate as run_eval
    from ranker.pipeline import MODES

    if mode is not None and mode not in (*MODES, "all"):
        from indexer.errors import QueryError

        raise QueryError(f"unknown mode '{mode}' (expected one of: {', '.join(MODES)}, all)", field="mode")
    pipeline = _pipeline(index, authority_weight=authority_weight, fusion=fusion)
    modes = ([m for m in MODES if m == "bm25" or pipeline.has_dense] if mode == "all" else [pipeline.resolve_mode(mode)])
    report = {}
    for m in modes:
        pipeline.resolve_mode(m)
        depth = k0 or PASSAGE_DEPTH
        # Eval ranks every passage as the legs find it: no per-document or copy collapse (MaxP counts documents).
        options = _search_options(k=depth, k0=depth, mode=m, per_doc=0, dedupe_text=False,
                                  authority_weight=authority_weight)  # fmt: skip
        rank = lambda qs, o=options: pipeline.rank(qs, o)  # noqa: E731
        report[m] = run_eval(rank, beir, split=split, ignore_identical_ids=ignore_identical_ids,
                             quiet=quiet or as_json, desc=f"eval {m}")  # fmt: skip
    qrels_path = beir / "qrels" / f"{split}.tsv"
    if left_out := next(iter(report.values()))["left_out"]:
        many = len(left_out) > 1
        typer.echo(f"drsearch: warning: {len(left_out)} judged quer{'ies' if many else 'y'} of {qrels_path} "
                   f"{'have' if many else 'has'} no line in {beir / 'queries.jsonl'} and {'are' if many else 'is'} left "
                   f"out (first: {left_out[0]!r})", err=True)  # fmt: skip
    if absent := _relevant_not_indexed(pipeline, load_qrels(beir, split)):
        many = len(absent) > 1
        typer.echo(f"drsearch: warning: {len(absent)} document{'s' if many else ''} judged relevant in {qrels_path} "
                   f"{'are' if many else 'is'} not in the index, so {'they count' if many else 'it counts'} as not found "
                   f"(first: {absent[0]!r})", err=True)  # fmt: skip
    if as_json:
        typer.echo(json.dumps({m: {k: v for k, v in r.items() if k not in ("queries", "left_out")} for m, r in report.items()}))
        return
    typer.echo(f"{'mode':<8} {'nDCG@10':>8} {'R@100':>8} {'MRR@10':>8} {'queries':>8}")
    for m, r in report.items():
        typer.echo(f"{m:<8} {r['ndcg@10']:>8.4f} {r['recall@100']:>8.4f} {r['mrr@10']:>8.4f} {r['queries']:>8}")
    if "hybrid" in report:
        from ranker.eval import load_qrels, load_queries

        queries = load_queries(beir)
        texts = [queries[q] for q in load_qrels(beir, split) if q in queries]
        alone = sum(pipeline.mode_used(q, "hybrid") == "bm25" for q in texts)
        if alone:
            typer.echo(f"hybrid ran BM25 alone for {alone} of {len(texts)} queries "
                       f"(the dense model covers {','.join(pipeline.dense_languages)})")


def _serve_opt(field: str, text: str, *names: str, **options: Any) -> Any:
    """A flag for a ServiceSettings field: None when not given, the effective default in --help."""
    return typer.Option(*names, help=text, show_default=_env_default(field), **options)


FetchAnyHostOpt = Annotated[Optional[bool], _serve_opt("fetch_any_host", "Fetch any public host, not only authority-list hosts",
                                                       "--fetch-any-host/--no-fetch-any-host")]  # fmt: skip


@app.command("serve")
def serve(
    index: Annotated[Optional[Path], _serve_opt("index", "Index ROOT (uses its `current` build) or a build directory", "--index",
                                                parser=non_empty_path)] = None,
    host: Annotated[Optional[str], _serve_opt("host", "Interface to bind")] = None,
    port: Annotated[Optional[int], _serve_opt("port", "TCP port")] = None,
    workers: Annotated[Optional[int], _serve_opt("workers", "Worker processes (each loads the index; each follows `current`)")] = None,
    threads: Annotated[Optional[int], _serve_opt("threads", "Threads per worker running blocking search work")] = None,
    cache_size: Annotated[Optional[int], _serve_opt("cache_size", "LRU response cache entries per worker (0 = off)")] = None,
    batching: Annotated[Optional[bool], _serve_opt("batching", "Micro-batch concurrent search calls", "--batching/--no-batching")] = None,
    batch_window_ms: Annotated[Optional[float], _serve_opt("batch_window_ms", "Micro-batching window in milliseconds")] = None,
    max_query_chars: QueryCapOpt = None,
    fetch_any_host: FetchAnyHostOpt = None,
) -> None:
    """Serve the HTTP search API (docs/API.md). Every flag falls back to its DRSEARCH_SERVE_* variable, then
    to the built-in default. Keys: env DRSEARCH_API_KEY, DRSEARCH_ADMIN_KEY."""
    from service.server import serve as run_server

    settings = _settings(ServiceSettings, index=index, host=host, port=port, workers=workers, threads=threads,
                         cache_size=cache_size, batching=batching, batch_window_ms=batch_window_ms,
                         max_query_chars=max_query_chars, fetch_any_host=fetch_any_host)  # fmt: skip
    _search_settings()  # the ranking's DRSEARCH_* variables, checked before any process starts
    run_server(settings)


def _agent_settings(index: Path, fetch_any_host: bool | None, max_query_chars: int | None):
    # DRSEARCH_SERVE_* env vars set what no flag gives (the other fetch limits too), as for `serve`
    _search_settings()  # and the ranking's DRSEARCH_* variables are checked as for `serve`
    return _settings(ServiceSettings, index=index, fetch_any_host=fetch_any_host, max_query_chars=max_query_chars)


@app.command("fetch")
def fetch_command(
    targets: Annotated[Optional[list[str]], typer.Argument(help="Indexed document ids or http(s) URLs (1-16 with --passage)")] = None,
    index: IndexOpt = ...,  # type: ignore[assignment]
    passages: Annotated[Optional[list[str]], typer.Option("--passage", help="A passage id: its document read on from it, in order (repeatable)")] = None,
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="Return the passages most relevant to this, best first")] = None,
    max_chars: Annotated[Optional[int], typer.Option(help="Cap on each document's text (whole passages)")] = None,
    fetch_any_host: FetchAnyHostOpt = None,
    max_query_chars: QueryCapOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The /v1/fetch response as JSON")] = False,
) -> None:
    """Open documents by id or URL (live fetch when not indexed), whole or focused on a query.

    Exits 1 when an item failed (its error is printed with the others), 2 on a bad request."""
    import asyncio

    from pydantic import ValidationError

    from service.agent_tools import render_fetch, standalone
    from service.errors import ApiError
    from service.fetch import FetchRequest
    from service.mcp_server import _validation_message

    targets, query = [argument_text(t) for t in targets or []], query and argument_text(query)
    items = [{"url" if "://" in t else "doc_id": t, "query": query, "max_chars": max_chars} for t in targets]
    items += [{"passage_id": argument_text(p), "query": query, "max_chars": max_chars} for p in passages or []]
    if not items:
        raise DrsearchError("give a document id, a URL or --passage PASSAGE_ID to open")
    try:
        body = FetchRequest.model_validate({"items": [{k: v for k, v in i.items() if v is not None} for i in items]})
    except ValidationError as exc:  # a bad option value names its flag; a bad target, its item
        from_flag = _flag_of(exc.errors()[0]["loc"]) is not None
        raise DrsearchError(_first_pydantic_error(exc) if from_flag else _validation_message(exc)) from None
    settings = _agent_settings(index, fetch_any_host, max_query_chars)

    async def go() -> dict:
        async with standalone(index, settings, request_id="cli") as tools:
            return await tools.fetch(body)

    try:
        payload = asyncio.run(go())
    except ApiError as exc:
        raise DrsearchError(f"{exc.field}: {exc.message}" if exc.field else exc.message) from None
    if as_json:
        echo_json(payload, indent=2)
    else:
        typer.echo(for_terminal(render_fetch(payload)))
    if not all(r["ok"] for r in payload["results"]):
        raise typer.Exit(1)  # the other items were printed; scripts still see that one failed


@app.command("mcp")
def mcp_command(
    index: IndexOpt,
    fetch_any_host: FetchAnyHostOpt = None,
    max_query_chars: QueryCapOpt = None,
) -> None:
    """Serve the agent tools (search, fetch) over MCP on stdin/stdout (for MCP clients that launch a command)."""
    import asyncio

    from service.mcp_server import serve_stdio

    asyncio.run(serve_stdio(index, _agent_settings(index, fetch_any_host, max_query_chars)))


def main() -> None:
    # Typer 0.29 vendors click as typer._click; its exception types are what parsing raises.
    from typer._click import exceptions as click

    prepare_standard_streams()
    try:
        rc = app(standalone_mode=False)  # usage errors come back to us instead of as a boxed multi-line panel
    except click.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        sys.exit(2)
    except click.UsageError as exc:  # unknown option, bad value, missing argument
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        typer.echo(f"drsearch: error: {' '.join(exc.format_message().split())}{where}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        typer.echo(f"drsearch: error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(2)
    except DrsearchError as exc:
        typer.echo(f"drsearch: error: {one_line(str(exc))}", err=True)
        sys.exit(2)
    except SystemExit as exc:
        if not reader_gone(exc):
            raise
        stop_writing_output()
        sys.exit(READER_GONE)  # quietly, as `git log | head` stops
    except (KeyboardInterrupt, typer.Abort):
        rc = INTERRUPTED
    except Terminated as exc:  # a build or an encode: the partial build folder is left for the next build to remove
        typer.echo(f"drsearch: terminated by {exc.signal.name}", err=True)
        sys.exit(128 + exc.signal)
    except OSError as exc:
        if (message := output_failure(exc)) is None:
            raise
        typer.echo(f"drsearch: error: {message}", err=True)
        stop_writing_output()  # or the output still buffered fails again at exit, with a traceback and 120
        sys.exit(1)
    if rc == INTERRUPTED:  # typer answers Ctrl-C in a command with this status and no word
        typer.echo("drsearch: interrupted", err=True)
    sys.exit(rc if isinstance(rc, int) else 0)

