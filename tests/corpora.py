"""Pytest plugin: tiny prepared corpora from ../shared/data, built once per test session.

Fixtures (session scope, read-only for tests; copy before modifying):
- ``shared_data``: the shared data folder (``$LMAO_SHARED_DATA`` or ``../shared/data`` beside the repo).
- ``imdb_corpus``: IMDB-1k protocol split on a slice (300 train / 200 dev / 100 test, 400 pretraining
  docs) with 16-dim fastText vectors in ``vectors/``: a valid ``corpus_dir`` for ``lmao-imdb-1k``.
- ``wnut_corpus``: WNUT-17 (600 train / 200 dev docs, full test) for ``ontonotes-ner``.
- ``tiny_trial_params``: params that keep a trial to seconds (tiny widths, few epochs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.services import unavailable

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(os.environ.get("LMAO_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "imdb" / "imdb.jsonl.gz").exists():
        unavailable(f"shared data not found at {path} (set LMAO_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def imdb_corpus(shared_data: Path, tmp_path_factory) -> Path:
    from experiments.data.imdb import prepare_imdb
    from experiments.training.vectors import train_vectors

    out = tmp_path_factory.mktemp("imdb") / "imdb-small"
    prepare_imdb(shared_data / "imdb" / "imdb.jsonl.gz", out, n_train=300, n_dev=200, n_test=100,
                 max_pretrain_docs=400, seed=0)
    train_vectors(out / "pretrain", out / "vectors", dims=16, min_count=2, epochs=2, seed=0)
    return out


@pytest.fixture(scope="session")
def wnut_corpus(shared_data: Path, tmp_path_factory) -> Path:
    from experiments.data.ner import prepare_ner
    from experiments.training.vectors import train_vectors

    wnut = shared_data / "ner" / "wnut17"
    out = tmp_path_factory.mktemp("wnut") / "wnut-small"
    prepare_ner(wnut / "wnut17train.conll", wnut / "emerging.dev.conll", out,
                test=wnut / "emerging.test.annotated", max_train_docs=600, max_dev_docs=200)
    train_vectors(out / "pretrain", out / "vectors", dims=16, min_count=1, epochs=2, seed=0)
    return out


TINY_TRIAL_PARAMS = {"width": 32, "depth": 1, "embed_rows": 1000, "pretrain_max_epochs": 1,
                     "pretrain_batch_size": 2000, "pretrain_hidden_size": 64, "max_epochs": 4, "patience": 0,
                     "learn_rate": 0.002, "batch_size": 16}


@pytest.fixture
def tiny_trial_params() -> dict:
    return dict(TINY_TRIAL_PARAMS)
