"""Static vectors: gensim training on the tokenized corpus, GloVe/fastText text import, pipeline import."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy

from experiments.data.docbins import write_shards
from experiments.errors import InputError
from experiments.vectors import import_vectors, train_vectors

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def corpus(tmp_path):
    nlp = spacy.blank("en")
    texts = ["the film was good and the actor was great"] * 20 + ["the plot was bad and the ending was awful"] * 20
    write_shards((nlp(t) for t in texts), tmp_path / "pretrain", shard_docs=15)
    return tmp_path / "pretrain"


@pytest.mark.parametrize("algorithm", ["fasttext", "word2vec"])
def test_train_vectors(corpus, tmp_path, algorithm):
    info = train_vectors(corpus, tmp_path / algorithm, algorithm=algorithm, dims=8, min_count=2, epochs=2)
    assert info["dims"] == 8 and info["rows"] == 11 and info["corpus_words"] == 40 * 9
    nlp = spacy.load(tmp_path / algorithm)
    assert nlp.vocab.vectors.shape == (11, 8)
    assert nlp.vocab["film"].has_vector and not nlp.vocab["zebra"].has_vector


def test_import_glove_without_header_and_fasttext_gz(tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2 0.3\nfilm 0.4 0.5 0.6\n", encoding="utf-8")
    info = import_vectors(glove, tmp_path / "g")
    assert (info["rows"], info["dims"]) == (2, 3)
    numpy.testing.assert_allclose(spacy.load(tmp_path / "g").vocab["film"].vector, [0.4, 0.5, 0.6])
    vec = tmp_path / "cc.vec.gz"
    with gzip.open(vec, "wt", encoding="utf-8") as f:
        f.write("2 2\nhello 1 0\nworld 0 1\n")
    assert import_vectors(vec, tmp_path / "f")["rows"] == 2
    # A spaCy pipeline with vectors is accepted too.
    assert import_vectors(tmp_path / "f", tmp_path / "p")["dims"] == 2


def test_bad_vectors_input(tmp_path):
    with pytest.raises(InputError, match="not found"):
        import_vectors(tmp_path / "nope.txt", tmp_path / "o")
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError, match="not a spaCy pipeline"):
        import_vectors(tmp_path / "dir", tmp_path / "o")
    spacy.blank("en").to_disk(tmp_path / "novec")
    with pytest.raises(InputError, match="has no vectors"):
        import_vectors(tmp_path / "novec", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_vectors_cli(corpus, tmp_path):
    done = subprocess.run([sys.executable, "-m", "experiments", "vectors", "train", str(corpus), str(tmp_path / "v"),
                           "--dims", "4", "--min-count", "1", "--epochs", "1", "--algorithm", "word2vec"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "vectors x 4 dims" in done.stdout
