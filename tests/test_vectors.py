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
from experiments.common.errors import InputError
from experiments.training.vectors import import_vectors, prune_vectors, train_vectors

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


# ------------------------------------------------------------------------- smaller tables: rows and dims


@pytest.fixture
def table(tmp_path) -> Path:
    """A 40 x 12 vectors folder, words w0..w39 in that row order (as gensim writes the most frequent first)."""
    rng = numpy.random.default_rng(0)
    text = tmp_path / "table.vec"
    rows = [f"w{i} " + " ".join(f"{x:.5f}" for x in rng.normal(size=12)) for i in range(40)]
    text.write_text("40 12\n" + "\n".join(rows) + "\n", encoding="utf-8")
    import_vectors(text, tmp_path / "table")
    return tmp_path / "table"


def _unit(m):
    return m / numpy.linalg.norm(m, axis=-1, keepdims=True)


def test_prune_rows_keeps_the_first_rows_and_maps_dropped_words_to_their_nearest_kept_row(table, tmp_path):
    full = spacy.load(table).vocab
    original = {f"w{i}": full[f"w{i}"].vector.copy() for i in range(40)}
    info = prune_vectors(str(table), tmp_path / "p", rows=10)
    assert (info["rows"], info["dims"], info["keys"]) == (10, 12, 40)
    assert info["prune"]["remapped_words"] == 30
    vocab = spacy.load(tmp_path / "p").vocab
    assert vocab.vectors.shape == (10, 12)
    kept = numpy.stack([original[f"w{i}"] for i in range(10)])
    for i in range(10):  # the first rows stay as they were
        numpy.testing.assert_allclose(vocab[f"w{i}"].vector, original[f"w{i}"], rtol=1e-6)
    for i in range(10, 40):  # every dropped word keeps a vector: its nearest kept row by cosine
        nearest = int(numpy.argmax(_unit(kept) @ _unit(original[f"w{i}"])))
        numpy.testing.assert_allclose(vocab[f"w{i}"].vector, kept[nearest], rtol=1e-6)


def test_prune_dims_is_pca_of_the_kept_rows_and_deterministic(table, tmp_path):
    info = prune_vectors(str(table), tmp_path / "a", rows=20, dims=4)
    prune_vectors(str(table), tmp_path / "b", rows=20, dims=4)
    for name in ("vectors", "key2row"):  # the same input, the same bytes
        assert (tmp_path / "a" / "vocab" / name).read_bytes() == (tmp_path / "b" / "vocab" / name).read_bytes()
    rows_only = spacy.load(prune_vectors(str(table), tmp_path / "r", rows=20) and tmp_path / "r").vocab.vectors
    data = numpy.asarray(rows_only.data, dtype="float64")
    centred = data - data.mean(axis=0)
    singular = numpy.linalg.svd(centred, compute_uv=False)
    assert info["pca"]["explained_variance"] == pytest.approx((singular[:4] ** 2).sum() / (singular ** 2).sum(), abs=1e-4)
    projected = spacy.load(tmp_path / "a").vocab
    assert projected.vectors.shape == (20, 4) and len(projected.vectors.keys()) == 40
    # PCA keeps the geometry's main axes: the table's Gram matrix is the best rank-4 approximation of
    # the centred one, so its error is exactly the variance left out.
    reduced = numpy.asarray(projected.vectors.data, dtype="float64")
    assert numpy.allclose(reduced.mean(axis=0), 0, atol=1e-5)
    residual = numpy.linalg.norm(centred @ centred.T - reduced @ reduced.T)
    assert residual == pytest.approx(numpy.sqrt((singular[4:] ** 4).sum()), rel=1e-3)
    assert projected["w35"].vector.shape == (4,) and projected["w35"].has_vector  # remapped words too


def test_prune_bad_input_writes_nothing(table, tmp_path):
    out = tmp_path / "o"
    with pytest.raises(InputError, match="is not fewer than the table's 40 rows"):
        prune_vectors(str(table), out, rows=40)
    with pytest.raises(InputError, match="is not fewer than the table's 12 dimensions"):
        prune_vectors(str(table), out, dims=12)
    with pytest.raises(InputError, match="nothing to do"):
        prune_vectors(str(table), out)
    with pytest.raises(InputError, match=r"--dims: must be 0 \(keep all\) or more, got -2"):
        prune_vectors(str(table), out, rows=3, dims=-2)
    with pytest.raises(InputError, match="neither a folder nor an installed spaCy pipeline package"):
        prune_vectors(str(tmp_path / "missing"), out, rows=2)
    spacy.blank("en").to_disk(tmp_path / "novec")
    with pytest.raises(InputError, match="has no vectors"):
        prune_vectors(str(tmp_path / "novec"), out, rows=2)
    assert not out.exists()


def test_prune_cli(table, tmp_path):
    done = subprocess.run([sys.executable, "-m", "experiments", "vectors", "prune", str(table), str(tmp_path / "p"),
                           "--rows", "5", "--dims", "3"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "5 vectors x 3 dims, 40 words" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "experiments", "vectors", "prune", str(table), str(tmp_path / "q"),
                          "--rows", "50"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: --rows: 50 is not fewer than the table's 40 rows"
    assert not (tmp_path / "q").exists()


# ---------------------------------------------------------- an installed spaCy pipeline package as vectors


def install_pipeline_package(pipeline: Path, work: Path, name: str, version: str) -> Path:
    """`spacy package` a pipeline folder, then install it in development mode (setuptools' egg-info beside
    the package, as `setup.py develop` does; no download, no build isolation). Returns the folder to put
    on sys.path / PYTHONPATH; spaCy then finds the package as any pip-installed one (importlib.metadata)."""
    out = work / f"package-{version}"
    out.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-m", "spacy", "package", str(pipeline), str(out), "--name", name,
                           "--version", version, "--build", "none", "--force"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    source = out / f"en_{name}-{version}"
    done = subprocess.run([sys.executable, "setup.py", "-q", "egg_info"], cwd=source, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return source


@pytest.fixture
def package(table, tmp_path, monkeypatch):
    """``en_tiny_table`` 0.0.1, holding ``table``'s vectors, installed for this test."""
    import importlib

    path = install_pipeline_package(table, tmp_path / "pkg", "tiny_table", "0.0.1")
    monkeypatch.syspath_prepend(str(path))
    importlib.invalidate_caches()
    return path


def test_installed_pipeline_package_works_like_a_folder(package, table, tmp_path):
    from experiments.training.vectors import package_fingerprint, pipeline_package, resolve_vectors_source

    assert pipeline_package("en_tiny_table") == "en_tiny_table"
    assert pipeline_package("numpy") is None  # installed, but no spaCy pipeline
    assert resolve_vectors_source("en_tiny_table") == "en_tiny_table"
    assert resolve_vectors_source(str(table)) == table
    # `lmao vectors prune` reads it by name, as spaCy's load_model does
    info = prune_vectors("en_tiny_table", tmp_path / "p", rows=8)
    assert (info["rows"], info["keys"], info["source"]) == (8, 40, "en_tiny_table")
    # its cache-key fingerprint: name, version and a hash of its vocab (vectors, key map, strings)
    first = package_fingerprint("en_tiny_table")
    assert first.startswith("en_tiny_table==0.0.1 vocab-sha256:") and first == package_fingerprint("en_tiny_table")
    # the pretraining cache key hashes the filled config with that fingerprint for [initialize] vectors
    from experiments.training.config import build_config, load_experiment
    from experiments.training.params import resolve
    from experiments.training.pretrain import weights_config

    experiment = REPO / "lmao-imdb-1k"
    params = resolve(load_experiment(experiment)["params"], {"vectors": "en_tiny_table", "pretrain_epochs": 1})
    config = build_config(experiment, params, corpus_dir=tmp_path, vectors="en_tiny_table", pretraining=True)
    assert weights_config(config)["initialize"]["vectors"] == first
    vectors_file = package / "en_tiny_table" / "en_tiny_table-0.0.1" / "vocab" / "vectors"
    data = bytearray(vectors_file.read_bytes())
    data[-1] ^= 1  # other vectors under the same name and version: another fingerprint
    vectors_file.write_bytes(bytes(data))
    assert package_fingerprint("en_tiny_table") != first


@pytest.mark.slow
def test_trial_reads_static_vectors_and_lmao_targets_from_a_package(imdb_corpus, tiny_trial_params, tmp_path):
    """`-P vectors=PACKAGE`: spaCy's [initialize] vectors loads the package for the static-vectors input
    and for pretraining's vectors objective."""
    import json

    path = install_pipeline_package(imdb_corpus / "vectors", tmp_path / "pkg", "imdb_tiny", "1.0.0")
    env = {**__import__("os").environ, "PYTHONPATH": str(path)}
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "vectors": "en_imdb_tiny",
              "static_vectors_input": True, "objective": "vectors", "pretrain_epochs": 1, "max_epochs": 1}
    command = [sys.executable, "-m", "experiments", "trial", str(REPO / "lmao-imdb-1k"), "--out", str(tmp_path / "t"),
               "--cache", str(tmp_path / "cache"), "--eval-processes", "1", "--gpu", "-1"]
    for name, value in params.items():
        command += ["-P", f"{name}={value}"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "t" / "results.json").read_text())
    assert results["status"] == "completed" and results["params"]["vectors"] == "en_imdb_tiny"
    model = spacy.load(tmp_path / "t" / "model-best")
    assert model.vocab.vectors.shape == spacy.load(imdb_corpus / "vectors").vocab.vectors.shape
    assert results["pretraining"]["epochs"] == 1 and results["pretraining"]["cache_key"]
