"""`drsearch index encode`: fill an index root's embedding cache (here or on a Ray cluster) before `index build`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from indexer.errors import DrsearchError
from service.cli_io import non_empty_path, stopped_by_signals_with_a_word, warn_unread


def encode_command(
    corpus: Annotated[list[Path], typer.Option("--corpus", parser=non_empty_path, help="BEIR dir, documents JSONL(.gz) file, or dir of shards; repeatable")],
    out: Annotated[Path, typer.Option("--out", parser=non_empty_path, help="Index ROOT: vectors go to ROOT/embeddings, where `index build --out ROOT` looks")],
    ray: Annotated[Optional[str], typer.Option("--ray", help="Encode on a Ray cluster: ADDRESS (host:port), auto (the one `ray start` runs here) or local (start one on 127.0.0.1)")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Encoder actors (default: one per GPU, or per CPU slot where the cluster has no GPU)")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cuda | cpu (default: cuda when available); cuda where there is none is an error")] = None,
    model: Annotated[Optional[Path], typer.Option(parser=non_empty_path, help="sentence-transformers model directory (default: bundled all-MiniLM-L6-v2)")] = None,
    encoder: Annotated[str, typer.Option(help="auto (onnx on the CPU, st on a GPU) | st (torch) | onnx (ONNX Runtime fp32) | onnx-int8 | st-bf16, as `index build --encoder` (part of the cache key)")] = "auto",
    chunk_words: Annotated[int, typer.Option(help="Target passage size in words, as `index build` (0 = one passage per document)")] = 200,
    overlap_words: Annotated[int, typer.Option(help="Words of overlap between consecutive passages, as `index build`")] = 0,
    query_prefix: Annotated[str, typer.Option(help="As `index build` (part of the cache key)")] = "",
    passage_prefix: Annotated[str, typer.Option(help="As `index build`")] = "",
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model forward pass (torch; the ONNX encoders run each text alone)")] = 64,
    shard_size: Annotated[int, typer.Option(min=64, help="Passages per cache shard (and per Ray task)")] = 8192,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed lines instead of failing")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Encode a corpus's passages into the embedding cache a later `index build` reuses."""
    from indexer.encode import encode_corpus
    from indexer.settings import BuildSettings

    try:
        settings = BuildSettings(
            chunk_words=chunk_words, overlap_words=overlap_words, skip_bad=skip_bad, quiet=quiet,
            dense=dict(model=str(model) if model else None, encoder=encoder, query_prefix=query_prefix,
                       passage_prefix=passage_prefix, device=device, batch_size=batch_size, shard_size=shard_size),
        )  # fmt: skip
    except ValueError as exc:
        from service.cli import _first_pydantic_error

        raise DrsearchError(_first_pydantic_error(exc)) from None
    warn_unread(corpus)
    with stopped_by_signals_with_a_word():
        report = encode_corpus(corpus, out, settings, ray_address=ray, workers=workers)
    if as_json:
        typer.echo(json.dumps({**report.__dict__, "cache_dir": str(report.cache_dir)}))
        return
    typer.echo(
        f"encoded {report.encoded} of {report.passages} passages ({report.cached} already cached)"
        f" into {report.shards} shards under {report.cache_dir} on {report.workers} {report.device} worker(s)"
        f" in {report.seconds} s" + (f"; {report.retried} shard(s) redone after a worker died" if report.retried else "")
    )
