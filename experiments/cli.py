"""The experiments' commands of the ``lmao`` command line (``python -m experiments`` runs just these), in
spaCy's CLI style: typer commands, ``--section.key value`` config overrides, clear one-line errors for bad
input. The full ``lmao`` app (these plus ``campaign``, ``report`` and ``frontier``, which need
``analysis``) is assembled in :mod:`lmao.cli`; nothing here imports ``analysis``.

Bad input anywhere raises :class:`~experiments.common.errors.InputError`; ``experiments.common.cli_base`` prints it as
one ``error: FILE:LINE: problem`` line (other exceptions keep their traceback). Heavy imports happen
inside the commands so ``lmao --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import cli_sweep
from .common.cli_base import OVERRIDES, existing_folder, new_app
from .common.errors import InputError
from .training.params import params_help

app = new_app(name="lmao", help="LMAO pretrain-then-finetune experiments with spaCy.", no_args_is_help=True)
data_app = new_app(help="Prepare corpora as tokenized spaCy DocBins.", no_args_is_help=True)
vectors_app = new_app(help="Static word vectors for the LMAO objective.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(vectors_app, name="vectors")


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
    n_process: int = typer.Option(0, "--n-process", help="Tokenizer processes (0 = every core); the output is the same"),
) -> None:
    """IMDB-1k splits as DocBins (train/dev/test) plus the tokenized pretraining text."""
    from .data.imdb import prepare_imdb

    manifest = prepare_imdb(
        source, out, n_train=n_train, n_dev=n_dev, seed=seed, include_unsup=unsup,
        max_pretrain_docs=max_pretrain_docs, n_test=n_test, n_process=n_process)
    typer.echo(f"{out}: {manifest['docs']} docs, {manifest['pretrain_words']} pretraining words")


@data_app.command("ner")
def data_ner(
    train: Path = typer.Argument(..., help="Training data: .spacy (file/folder), *_gold_conll (file/folder), IOB/CoNLL, Prodigy .jsonl"),
    dev: Path = typer.Argument(..., help="Development data, same forms"),
    out: Path = typer.Argument(..., help="Output folder"),
    test: Optional[Path] = typer.Option(None, "--test", help="Test data (read only by `lmao trial --final`)"),
    raw: Optional[Path] = typer.Option(None, "--raw", help="Raw text for pretraining: .txt (a doc per line) or .jsonl(.gz) with text/body (default: the training docs' text)"),
    n_sents: int = typer.Option(1, "--n-sents", help="Sentences per doc"),
    max_train_docs: int = typer.Option(0, "--max-train-docs", help="Cap training docs (0 = all)"),
    max_dev_docs: int = typer.Option(0, "--max-dev-docs", help="Cap development docs (0 = all)"),
    max_pretrain_docs: int = typer.Option(0, "--max-pretrain-docs", help="Cap pretraining docs (0 = all)"),
) -> None:
    """An NER corpus as train/dev(/test) DocBins plus the tokenized pretraining text."""
    from .data.ner import prepare_ner

    manifest = prepare_ner(
        train, dev, out, test=test, raw=raw, n_sents=n_sents, max_train_docs=max_train_docs,
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
    from .training.vectors import train_vectors

    info = train_vectors(corpus, out, algorithm=algorithm, dims=dims, min_count=min_count, epochs=epochs,
                         window=window, seed=seed)
    typer.echo(f"{out}: {info['rows']} vectors x {info['dims']} dims")


@vectors_app.command("import")
def vectors_import(
    source: Path = typer.Argument(..., help="GloVe/fastText/word2vec text file (.txt/.vec, .gz ok) or a spaCy pipeline folder"),
    out: Path = typer.Argument(..., help="Output folder"),
) -> None:
    """Import existing vectors as a spaCy vectors folder."""
    from .training.vectors import import_vectors

    info = import_vectors(source, out)
    typer.echo(f"{out}: {info['rows']} vectors x {info['dims']} dims")


@vectors_app.command("prune")
def vectors_prune(
    source: str = typer.Argument(..., help="Vectors folder, spaCy pipeline folder or installed pipeline package (en_core_web_lg)"),
    out: Path = typer.Argument(..., help="Output folder (a spaCy pipeline holding the smaller table)"),
    rows: int = typer.Option(0, "--rows", help="Keep N rows (spaCy's prune: dropped words map to their nearest kept row; 0 = all)"),
    dims: int = typer.Option(0, "--dims", help="Project onto the top D principal axes (PCA; 0 = all dimensions)"),
) -> None:
    """A smaller vectors table: fewer rows as `spacy init vectors --prune N` makes it, and/or fewer dimensions."""
    from .training.vectors import prune_vectors

    info = prune_vectors(source, out, rows=rows, dims=dims)
    typer.echo(f"{out}: {info['rows']} vectors x {info['dims']} dims, {info['keys']} words")


@app.command("trial", context_settings=OVERRIDES, epilog=params_help())
def trial(
    ctx: typer.Context,
    experiment_dir: Path = typer.Argument(..., help="Experiment folder (config.cfg + defaults.yml)"),
    out: Path = typer.Option(..., "--out", help="Trial folder: results.json and model-best/"),
    param: Optional[List[str]] = typer.Option(None, "-P", "--param", help="Override a param: name=value (repeatable; the params are listed below)"),
    cache: Optional[str] = typer.Option(None, "--cache", help="Pretraining cache: folder or gs://bucket/prefix (default: OUT/../cache)"),
    artifacts: Optional[str] = typer.Option(None, "--artifacts", help="Also publish the trial folder to gs://bucket/prefix/<OUT name>"),
    final: bool = typer.Option(False, "--final", help="Also evaluate the best model on the TEST split (final comparison only)"),
    gpu: str = typer.Option("auto", "--gpu", help="auto (GPU if available), -1 (CPU) or a GPU id"),
    eval_processes: int = typer.Option(0, "--eval-processes", help="Processes for dev evaluation (0 = cores, max 4)"),
    meta: Optional[List[str]] = typer.Option(None, "--meta", help="Provenance to record in results.json: key=value (repeatable)"),
) -> None:
    """Run one pretrain-then-finetune trial. Extra `--section.key value` options override the spaCy config."""
    from spacy.cli._util import parse_config_overrides

    from .polyaxon import make_tracker
    from .training.params import parse_assignments
    from .training.trial import run_trial

    existing_folder(experiment_dir, "an experiment folder")
    overrides = parse_assignments(param)
    meta_values = parse_assignments(meta, "--meta")
    try:
        config_overrides = parse_config_overrides(ctx.args)
    except SystemExit:  # spaCy's parser prints its own message and exits
        raise InputError(" ".join(ctx.args), "unexpected arguments: config overrides are --section.key value") from None
    results = run_trial(experiment_dir, out, overrides, config_overrides=config_overrides, cache=cache,
                        artifacts=artifacts, final=final, gpu=gpu, eval_processes=eval_processes,
                        meta=meta_values, tracker_factory=make_tracker)  # a Polyaxon run when an API is configured
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
    from .data.docbins import require_prepared_corpus
    from .storage.storage import AlreadyPublishedError, StorageError, is_gs_url, upload_tree

    if not is_gs_url(url):
        raise InputError(url, "expected gs://bucket/prefix")
    require_prepared_corpus(corpus_dir)
    try:
        manifest = upload_tree(corpus_dir, url)
    except (AlreadyPublishedError, StorageError) as err:
        raise InputError(url, str(err)) from None
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
        raise InputError("--on-conflict", f"must be one of {', '.join(ON_CONFLICT)}, got {on_conflict!r}")
    if misaligned not in MISALIGNED:
        raise InputError("--misaligned", f"must be one of {', '.join(MISALIGNED)}, got {misaligned!r}")
    if shard_docs < 1:
        raise InputError("--shard-docs", f"must be at least 1, got {shard_docs}")
    summary = merge_annotations(
        inputs, out, on_conflict=on_conflict, misaligned=misaligned,
        complete=complete, shard_docs=shard_docs, lang=lang,
    )
    typer.echo(format_summary(summary, out))


cli_sweep.register(app)  # `lmao sweep` and `lmao polyaxonfile`
