"""The ``lmao`` command line (also ``python -m experiments``), in spaCy's CLI style: typer commands,
``--section.key value`` config overrides, clear one-line errors for bad input.

Heavy imports happen inside the commands so ``lmao --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import InputError

app = typer.Typer(
    name="lmao",
    help="LMAO pretrain-then-finetune experiments with spaCy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Prepare corpora as tokenized spaCy DocBins.", no_args_is_help=True)
vectors_app = typer.Typer(help="Static word vectors for the LMAO objective.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(vectors_app, name="vectors")

OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


def fail(message: str, code: int = 1) -> None:
    """Print one clear error line and exit (no traceback for bad input)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def run_reporting_input_errors(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except InputError as err:
        fail(str(err))


@data_app.command("merge-annotations")
def data_merge_annotations(
    inputs: List[Path] = typer.Argument(..., help="Prodigy NER datasets (.jsonl or .jsonl.gz), e.g. one per label"),
    out: Path = typer.Option(..., "--out", help="Output folder: DocBin shards, merge-report.json, merge-problems.jsonl"),
    on_conflict: str = typer.Option("fail", "--on-conflict", help="Overlapping spans: fail | keep-longest"),
    misaligned: str = typer.Option("fail", "--misaligned", help="Spans off token boundaries: fail | skip | expand"),
    complete: bool = typer.Option(False, "--complete", help="Tokens outside spans are O even when labels lack coverage"),
    shard_docs: int = typer.Option(1000, "--shard-docs", help="Docs per .spacy shard"),
    lang: str = typer.Option("en", "--lang", help="spaCy language for tokenizing tasks without 'tokens'"),
) -> None:
    """Merge per-label Prodigy datasets by _input_hash into one gold Doc per text (bounded memory)."""
    from .data.merge_annotations import MISALIGNED, ON_CONFLICT, format_summary, merge_annotations

    if on_conflict not in ON_CONFLICT:
        fail(f"--on-conflict must be one of {', '.join(ON_CONFLICT)}, got {on_conflict!r}")
    if misaligned not in MISALIGNED:
        fail(f"--misaligned must be one of {', '.join(MISALIGNED)}, got {misaligned!r}")
    if shard_docs < 1:
        fail(f"--shard-docs must be at least 1, got {shard_docs}")
    report = run_reporting_input_errors(
        merge_annotations, inputs, out, on_conflict=on_conflict, misaligned=misaligned,
        complete=complete, shard_docs=shard_docs, lang=lang,
    )
    typer.echo(format_summary(report, out))


@app.command("report")
def report(
    runs: Optional[List[str]] = typer.Argument(None, help="Runs folders or result files (default: runs/ when no source is given)"),
    study: Optional[str] = typer.Option(None, "--study", help="Optuna study name (default: every study in --storage)"),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (sqlite:///..., postgresql://...)"),
    gcs: Optional[List[str]] = typer.Option(None, "--gcs", help="gs://bucket/prefix holding */results.json (repeatable)"),
    polyaxon_project: Optional[List[str]] = typer.Option(None, "--polyaxon-project", help="Polyaxon owner/project (repeatable)"),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: analysis/results)"),
    top_k: int = typer.Option(5, "--top-k", help="Trials in the mean/CI sample when the best config has no seed repeats"),
    no_readmes: bool = typer.Option(False, "--no-readmes", help="Do not update the experiment folders' READMEs"),
) -> None:
    """Comparison tables and plots from raw trial results, into analysis/results/ and the experiment READMEs."""
    from analysis.cli import run_report
    from analysis.report import REPO_ROOT

    if top_k < 1:
        fail(f"--top-k must be at least 1, got {top_k}")
    for url in gcs or []:
        if not url.startswith("gs://"):
            fail(f"--gcs expects gs://bucket/prefix, got {url!r}")
    code = run_report(
        runs or [], study=study, storage=storage, gcs=gcs or [], polyaxon_projects=polyaxon_project or [],
        out=out or REPO_ROOT / "analysis" / "results", readme_root=None if no_readmes else REPO_ROOT,
        top_k=top_k, echo=typer.echo,
    )
    raise typer.Exit(code)
