"""Commands end to end as a user runs them (the ``lmao`` app, in a subprocess where it trains), on tiny inputs:
``vectors import``, ``data ner``, ``polyaxonfile --check`` and ``trial --artifacts`` (bad input to each
is covered by tests/test_user_errors.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy
import pytest
import spacy

from experiments.data.docbins import docbin_files, read_docs

REPO = Path(__file__).resolve().parents[1]
VOCAB = spacy.blank("en").vocab


def lmao(*args, env=None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m lmao ARGS`` in its own process, as a user runs it."""
    environ = {**os.environ, "LMAO_TRACKING": "0", **(env or {})}
    environ.pop("POLYAXON_HOST", None)
    return subprocess.run([sys.executable, "-m", "lmao", *map(str, args)], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=timeout)


def lmao_here(*args) -> SimpleNamespace:
    """The same ``lmao`` app run in this process (typer's CliRunner), for commands that train nothing:
    each subprocess would spend seconds importing spaCy."""
    from typer.testing import CliRunner

    from lmao.cli import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    return SimpleNamespace(returncode=res.exit_code, stdout=res.stdout, stderr=res.stderr)


def test_vectors_import_command(tmp_path):
    """A fastText-style text file (header line) and a GloVe-style one (none) become spaCy vectors folders
    with the same rows, values and row order; a pipeline folder with vectors imports as well."""
    rows = {"the": [0.1, -0.2, 0.3], "film": [0.4, 0.5, -0.6], "was": [1.5, 0.0, 2.25], "great": [-1, 2, -3]}
    body = "".join(f"{w} {' '.join(str(x) for x in v)}\n" for w, v in rows.items())
    (tmp_path / "cc.vec").write_text(f"{len(rows)} 3\n{body}", encoding="utf-8")
    (tmp_path / "glove.txt").write_text(body, encoding="utf-8")
    for source, out in (("cc.vec", "fasttext"), ("glove.txt", "glove"), ("fasttext", "from-pipeline")):
        done = lmao_here("vectors", "import", tmp_path / source, tmp_path / out)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{tmp_path / out}: 4 vectors x 3 dims"
        nlp = spacy.load(tmp_path / out)
        assert nlp.vocab.vectors.shape == (4, 3)
        for word, vector in rows.items():
            numpy.testing.assert_allclose(nlp.vocab[word].vector, vector, rtol=1e-6)
        assert [nlp.vocab.strings[key] for key in nlp.vocab.vectors.keys()] == list(rows)
        info = json.loads((tmp_path / out / "vectors-info.json").read_text())
        assert (info["rows"], info["dims"]) == (4, 3)
    assert not list(tmp_path.glob(".*tmp*"))  # built under a temporary name, then renamed


IOB_TRAIN = """John\tB-person
lives\tO
in\tO
New\tB-location
York\tI-location

Acme\tB-corporation
hires\tO
Mary\tB-person
"""
IOB_DEV = "Paris\tB-location\nsleeps\tO\n"
IOB_TEST = "Bob\tB-person\nand\tO\nAlice\tB-person\nleft\tO\n"


def test_data_ner_command(tmp_path):
    """IOB train/dev/test and raw JSONL text: the gold docs, the labels, the pretraining shards and the
    manifest, exactly."""
    for name, text in (("train.conll", IOB_TRAIN), ("dev.conll", IOB_DEV), ("test.conll", IOB_TEST)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps({"text": f"review {i} says nothing"}) + "\n" for i in range(5)))
    out = tmp_path / "corpus"
    done = lmao_here("data", "ner", tmp_path / "train.conll", tmp_path / "dev.conll", out, "--test",
                tmp_path / "test.conll", "--raw", raw, "--max-pretrain-docs", 4)
    assert done.returncode == 0, done.stderr
    train = list(read_docs(out / "train.spacy", VOCAB))
    assert [[t.text for t in d] for d in train] == [["John", "lives", "in", "New", "York"], ["Acme", "hires", "Mary"]]
    assert [[(e.text, e.label_) for e in d.ents] for d in train] == [
        [("John", "person"), ("New York", "location")], [("Acme", "corporation"), ("Mary", "person")]]
    assert [[(e.text, e.label_) for e in d.ents] for d in read_docs(out / "dev.spacy", VOCAB)] == [
        [("Paris", "location")]]
    assert [[(e.text, e.label_) for e in d.ents] for d in read_docs(out / "test.spacy", VOCAB)] == [
        [("Bob", "person"), ("Alice", "person")]]
    pretrain = [d.text for f in docbin_files(out / "pretrain") for d in read_docs(f, VOCAB)]
    assert pretrain == [f"review {i} says nothing" for i in range(4)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["docs"] == {"train": 2, "dev": 1, "test": 1, "pretrain": 4}
    assert manifest["labels"] == ["corporation", "location", "person"]
    assert manifest["pretrain_words"] == 16


def test_polyaxonfile_check_command(tmp_path):
    """--check: exit 0 on the committed files, exit 1 with one line on a stale copy, and nothing written."""
    for experiment, search in (("lmao-imdb-1k", "random"), ("ontonotes-ner", "bayes")):
        done = lmao_here("polyaxonfile", REPO / experiment, "--search", search, "--check")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith(f"polyaxonfile.{search}.yml: up to date")
    stale = tmp_path / "polyaxonfile.yml"
    written = lmao_here("polyaxonfile", REPO / "lmao-imdb-1k", "--out", stale)
    assert written.returncode == 0 and written.stdout.strip() == f"wrote {stale}"
    assert lmao_here("polyaxonfile", REPO / "lmao-imdb-1k", "--out", stale, "--check").returncode == 0
    text = stale.read_text().replace("concurrency: 4", "concurrency: 3")
    assert text != stale.read_text()
    stale.write_text(text)
    done = lmao_here("polyaxonfile", REPO / "lmao-imdb-1k", "--out", stale, "--check")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"error: {stale}: out of date: run `lmao polyaxonfile {REPO / 'lmao-imdb-1k'} "
                           "--search random`\n")
    assert stale.read_text() == text  # --check never rewrites
    missing = lmao_here("polyaxonfile", REPO / "lmao-imdb-1k", "--out", tmp_path / "none.yml", "--check")
    assert missing.returncode == 1 and "out of date" in missing.stderr and not (tmp_path / "none.yml").exists()


@pytest.mark.slow  # trains a tiny model, starts the GCS emulator
def test_trial_artifacts_command(gcs_emulator, imdb_corpus, tmp_path):
    """`lmao trial --artifacts gs://...`: the finished trial is published under the prefix (results and
    model-best), and `lmao report --gcs` reads it back."""
    from experiments.storage.storage import download_tree, is_complete

    bucket = gcs_emulator.new_bucket()
    prefix = f"gs://{bucket.name}/runs/cli-study"
    env = {"STORAGE_EMULATOR_HOST": gcs_emulator.host, "LMAO_CACHE_DIR": str(tmp_path / "mirror")}
    done = lmao("trial", REPO / "lmao-imdb-1k", "--out", tmp_path / "trial-0007", "--artifacts", prefix,
                "--eval-processes", "1", "-P", f"corpus_dir={imdb_corpus}", "-P", "width=16", "-P", "depth=1",
                "-P", "embed_rows=500", "-P", "pretrain_epochs=0", "-P", "max_epochs=1", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    local = json.loads((tmp_path / "trial-0007" / "results.json").read_text())
    assert local["status"] == "completed" and local["artifacts_url"] == f"{prefix}/trial-0007"
    assert is_complete(local["artifacts_url"])
    download_tree(local["artifacts_url"], tmp_path / "back")
    assert json.loads((tmp_path / "back" / "results.json").read_text()) == local
    assert spacy.load(tmp_path / "back" / "model-best").pipe_names == ["tok2vec", "textcat"]
    report = lmao_here("report", "--gcs", prefix, "--out", tmp_path / "report", "--no-readmes", "--no-plots")
    assert report.returncode == 0, report.stderr
    assert "report: 1 trials (1 completed), 0 skipped, 1 table(s)" in report.stdout
