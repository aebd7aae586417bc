"""The ``lmao`` command line (also ``python -m experiments``), in spaCy's CLI style: typer commands,
``--section.key value`` config overrides, clear one-line errors for bad input.

Heavy imports happen inside the commands so ``lmao --help`` stays fast.
"""

from __future__ import annotations

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


@data_app.command("imdb")
def data_imdb(
    source: str = typer.Argument(
        "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        help="aclImdb_v1.tar.gz (path or URL), an extracted aclImdb/ folder, or a JSONL(.gz) of {text,label,split}"),
    out: Path = typer.Argument(Path("corpus/imdb-1k"), help="Output folder"),
    n_train: int = typer.Option(1000, "--n-train", help="Training reviews: the first N after the seeded shuffle"),
    n_dev: int = typer.Option(10000, "--n-dev", help="Development reviews: the last M after the seeded shuffle"),
    seed: int = typer.Option(0, "--seed", help="Shuffle seed"),
    unsup: bool = typer.Option(False, "--unsup/--no-unsup", help="Add the 50k unlabelled reviews to the pretraining text"),
    max_pretrain_docs: int = typer.Option(0, "--max-pretrain-docs", help="Cap the pretraining corpus (0 = all)"),
    n_test: int = typer.Option(0, "--n-test", help="Keep a seeded sample of N test reviews (0 = all 25k)"),
) -> None:
    """IMDB-1k splits as DocBins (train/dev/test) plus the tokenized pretraining text."""
    from .data.imdb import prepare_imdb

    manifest = run_reporting_input_errors(
        prepare_imdb, source, out, n_train=n_train, n_dev=n_dev, seed=seed, include_unsup=unsup,
        max_pretrain_docs=max_pretrain_docs, n_test=n_test)
    typer.echo(f"{out}: {manifest['docs']} docs, {manifest['pretrain_words']} pretraining words")


@data_app.command("ner")
def data_ner(
    train: Path = typer.Argument(..., help="Training data: .spacy (file/folder), *_gold_conll (file/folder), IOB/CoNLL, Prodigy .jsonl"),
    dev: Path = typer.Argument(..., help="Development data, same forms"),
    out: Path = typer.Argument(..., help="Output folder"),
    test: Optional[Path] = typer.Option(None, "--test", help="Test data (read only by `lmao trial --final`)"),
    raw: Optional[Path] = typer.Option(None, "--raw", help="Raw text for pretraining: .txt (a doc per line) or .jsonl(.gz) with text/body"),
    n_sents: int = typer.Option(1, "--n-sents", help="Sentences per doc"),
    max_train_docs: int = typer.Option(0, "--max-train-docs", help="Cap training docs (0 = all)"),
    max_dev_docs: int = typer.Option(0, "--max-dev-docs", help="Cap development docs (0 = all)"),
    max_pretrain_docs: int = typer.Option(0, "--max-pretrain-docs", help="Cap pretraining docs (0 = all)"),
) -> None:
    """An NER corpus as train/dev(/test) DocBins plus the tokenized pretraining text."""
    from .data.ner import prepare_ner

    manifest = run_reporting_input_errors(
        prepare_ner, train, dev, out, test=test, raw=raw, n_sents=n_sents, max_train_docs=max_train_docs,
        max_dev_docs=max_dev_docs, max_pretrain_docs=max_pretrain_docs)
    typer.echo(f"{out}: {manifest['docs']} docs, labels {manifest['labels']}")


@vectors_app.command("train")
def vectors_train(
    corpus: Path = typer.Argument(..., help="Tokenized corpus: a .spacy file or shard folder (e.g. CORPUS/pretrain)"),
    out: Path = typer.Argument(..., help="Output folder (a spaCy pipeline holding the vectors)"),
    algorithm: str = typer.Option("fasttext", "--algorithm", help="fasttext | word2vec"),
    dims: int = typer.Option(100, "--dims", help="Vector width"),
    min_count: int = typer.Option(5, "--min-count", help="Ignore rarer words"),
    epochs: int = typer.Option(5, "--epochs", help="Training epochs"),
    window: int = typer.Option(5, "--window", help="Context window"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train static vectors with gensim and save them with spaCy's vectors machinery."""
    from .vectors import train_vectors

    info = run_reporting_input_errors(train_vectors, corpus, out, algorithm=algorithm, dims=dims,
                                      min_count=min_count, epochs=epochs, window=window, seed=seed)
    typer.echo(f"{out}: {info['rows']} vectors x {info['dims']} dims")


@vectors_app.command("import")
def vectors_import(
    source: Path = typer.Argument(..., help="GloVe/fastText/word2vec text file (.txt/.vec, .gz ok) or a spaCy pipeline folder"),
    out: Path = typer.Argument(..., help="Output folder"),
) -> None:
    """Import existing vectors as a spaCy vectors folder."""
    from .vectors import import_vectors

    info = run_reporting_input_errors(import_vectors, source, out)
    typer.echo(f"{out}: {info['rows']} vectors x {info['dims']} dims")


@app.command("trial", context_settings=OVERRIDES)
def trial(
    ctx: typer.Context,
    experiment_dir: Path = typer.Argument(..., help="Experiment folder (config.cfg + defaults.yml)", exists=True,
                                          file_okay=False),
    out: Path = typer.Option(..., "--out", help="Trial folder: results.json and model-best/"),
    param: Optional[List[str]] = typer.Option(None, "-P", "--param", help="Override a param: name=value (repeatable)"),
    cache: Optional[str] = typer.Option(None, "--cache", help="Pretraining cache: folder or gs://bucket/prefix (default: OUT/../cache)"),
    artifacts: Optional[str] = typer.Option(None, "--artifacts", help="Also publish the trial folder to gs://bucket/prefix/<OUT name>"),
    final: bool = typer.Option(False, "--final", help="Also evaluate the best model on the TEST split (final comparison only)"),
    gpu: str = typer.Option("auto", "--gpu", help="auto (GPU if available), -1 (CPU) or a GPU id"),
    eval_processes: int = typer.Option(0, "--eval-processes", help="Processes for dev evaluation (0 = cores, max 4)"),
    meta: Optional[List[str]] = typer.Option(None, "--meta", help="Provenance to record in results.json: key=value (repeatable)"),
) -> None:
    """Run one pretrain-then-finetune trial. Extra `--section.key value` options override the spaCy config."""
    from spacy.cli._util import parse_config_overrides

    from .params import parse_assignments
    from .trial import run_trial

    try:
        overrides = parse_assignments(param)
        meta_values = parse_assignments(meta)
    except ValueError as err:
        fail(str(err))
    try:
        config_overrides = parse_config_overrides(ctx.args)
    except SystemExit:  # spaCy's parser prints its own message and exits
        fail(f"unexpected arguments {' '.join(ctx.args)!r}: config overrides are --section.key value")
    try:
        results = run_trial(experiment_dir, out, overrides, config_overrides=config_overrides, cache=cache,
                            artifacts=artifacts, final=final, gpu=gpu, eval_processes=eval_processes,
                            meta=meta_values)
    except (InputError, ValueError) as err:
        fail(str(err))
    line = f"{out}: best dev {results['metric']} {results['best_dev_score']:.4f} at epoch {results['best_epoch']}"
    if final:
        line += f"; TEST {results['metric']} {results['test_score']:.4f}"
    typer.echo(line)


@data_app.command("upload")
def data_upload(
    corpus_dir: Path = typer.Argument(..., help="Prepared corpus folder (from `lmao data imdb|ner`)"),
    url: str = typer.Argument(..., help="gs://bucket/prefix to publish it at (trials then take -P corpus_dir=URL)"),
) -> None:
    """Publish a prepared corpus to GCS as one entry with a manifest (size + sha256 of every file), so
    trials on the cluster can take `-P corpus_dir=gs://...` (downloaded once per node and verified)."""
    from .storage import AlreadyPublishedError, StorageError, is_gs_url, upload_tree

    if not is_gs_url(url):
        fail(f"{url!r}: expected gs://bucket/prefix")
    for name in ("train.spacy", "dev.spacy"):
        if not (corpus_dir / name).is_file():
            fail(f"{corpus_dir / name}: prepared corpus file missing (run `lmao data ...` first)")
    try:
        manifest = upload_tree(corpus_dir, url)
    except (AlreadyPublishedError, StorageError, ValueError) as err:
        fail(str(err))
    typer.echo(f"{url}: {len(manifest['files'])} files published")


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
    no_plots: bool = typer.Option(False, "--no-plots", help="Tables only (faster; plots from earlier runs are removed)"),
) -> None:
    """Comparison tables and plots from raw trial results, into analysis/results/ and the experiment READMEs."""
    from analysis.cli import run_report
    from analysis.report import REPO_ROOT

    if top_k < 1:
        fail(f"--top-k must be at least 1, got {top_k}")
    for url in gcs or []:
        if not url.startswith("gs://"):
            fail(f"--gcs expects gs://bucket/prefix, got {url!r}")
    from analysis.load import SourceError

    try:
        code = run_report(
            runs or [], study=study, storage=storage, gcs=gcs or [], polyaxon_projects=polyaxon_project or [],
            out=out or REPO_ROOT / "analysis" / "results", readme_root=None if no_readmes else REPO_ROOT,
            top_k=top_k, plots=not no_plots, echo=typer.echo,
        )
    except SourceError as err:
        fail(str(err))
    raise typer.Exit(code)


from . import cli_sweep  # noqa: E402,F401  registers `lmao sweep` and `lmao polyaxonfile`
