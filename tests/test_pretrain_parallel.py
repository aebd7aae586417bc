"""Data-parallel pretraining: the summed gradient is the whole batch's, runs are reproducible, and the
worker count is part of the pretraining cache key."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest
import srsly

from experiments.training.config import build_config, load_experiment
from experiments.training.params import resolve
from experiments.training.parallel import loss_weighting, split_batch
from experiments.training.pretrain import pretrain, pretraining_inputs

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO / "lmao-imdb-1k"


class _Doc:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


@pytest.mark.parametrize("lengths", [[5, 1, 9, 3, 3, 7], [100, 1, 1], [4], [1, 1], [3, 50]])
@pytest.mark.parametrize("n_parts", [2, 3])
def test_split_batch_is_contiguous_balanced_and_starts_non_empty(lengths, n_parts):
    docs = [_Doc(n) for n in lengths]
    parts = split_batch(docs, n_parts)
    assert len(parts) == n_parts and [d for p in parts for d in p] == docs
    assert len(parts[0]) >= 1
    total = sum(lengths)
    # No part could move its first doc to the previous part and get closer to an equal share.
    for k in range(1, n_parts):
        before = sum(len(d) for p in parts[:k] for d in p)
        assert before >= total * k / n_parts or not parts[k]


def test_loss_weighting_per_objective():
    assert loss_weighting({"@architectures": "spacy.PretrainVectors.v1", "loss": "cosine"})(1, 4) == 0.25
    assert loss_weighting({"@architectures": "lmao.PretrainTrigramVectors.v1", "loss": "L2"})(1, 4) == 0.0625
    assert loss_weighting({"@architectures": "spacy.PretrainCharacters.v1"})(1, 4) == 1.0
    with pytest.raises(ValueError, match="1 worker"):
        loss_weighting({"@architectures": "my.Objective.v1"})


def _params(**overrides):
    experiment = load_experiment(IMDB)
    return resolve(experiment["params"], {"width": 32, "depth": 1, "embed_rows": 1000, "pretrain_max_epochs": 1,
                                          "pretrain_batch_size": 1500, "pretrain_hidden_size": 64, **overrides},
                   defaults_source=IMDB / "defaults.yml")


def _weights(path: Path):
    msg = srsly.msgpack_loads(path.read_bytes())
    return [numpy.asarray(a) for layer in msg["params"] for a in layer.values()]


def _run(corpus: Path, out: Path, workers: int, **overrides):
    params = _params(**overrides)
    config = build_config(IMDB, params, corpus_dir=corpus, vectors=corpus / "vectors", pretraining=True)
    info = pretrain(config, out, max_words=6000, silent=True, n_workers=workers)
    return info, _weights(out / "model0.bin")


@pytest.mark.slow
def test_two_workers_compute_the_whole_batch_gradient(imdb_corpus, tmp_path):
    """Without randomness (trigram objective, no dropout) 2 workers take the same optimizer steps as
    spaCy's one-process update, to float rounding; with dropout a fixed seed gives the same weights."""
    one, w1 = _run(imdb_corpus, tmp_path / "w1", 1, objective="trigram", pretrain_dropout=0.0)
    two, w2 = _run(imdb_corpus, tmp_path / "w2", 2, objective="trigram", pretrain_dropout=0.0)
    assert one["words"] == two["words"] >= 6000 and two["workers"] == 2
    assert len(w1) == len(w2) > 5
    # Float rounding: the sum of two half-batch gradients is not bit-identical to the whole batch's. Adam
    # divides each gradient element by its running RMS, so an element whose true gradient cancels to
    # about 0 steps by up to the learn rate (0.001) in the direction of its rounding noise: a handful of
    # weights may then differ by a few steps' worth (seen: 12 of 32000 by up to 1.4e-4, with some fastText
    # vectors of the fixture); every other weight agrees to rounding.
    close = [numpy.isclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(w1, w2)]
    assert sum(int((~c).sum()) for c in close) <= 1e-3 * sum(c.size for c in close)
    assert max(float(numpy.abs(a - b).max()) for a, b in zip(w1, w2)) <= 5 * 0.001
    loss1 = one["checkpoints"]["model0.bin"]["epoch_loss"]
    assert two["checkpoints"]["model0.bin"]["epoch_loss"] == pytest.approx(loss1, rel=1e-4)
    # Vectors objective (random masking) with dropout: reproducible for a fixed seed and worker count.
    _, a = _run(imdb_corpus, tmp_path / "a", 2)
    _, b = _run(imdb_corpus, tmp_path / "b", 2)
    assert all(numpy.array_equal(x, y) for x, y in zip(a, b))
    _, c = _run(imdb_corpus, tmp_path / "c", 1)
    assert not all(numpy.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.slow
def test_worker_count_is_in_the_pretraining_cache_key(imdb_corpus):
    def inputs(**overrides):
        params = _params(**overrides)
        config = build_config(IMDB, params, corpus_dir=imdb_corpus, vectors=imdb_corpus / "vectors", pretraining=True)
        return pretraining_inputs(config, params)

    one, two = inputs(), inputs(pretrain_workers=2)
    assert (one["arithmetic"]["workers"], two["arithmetic"]["workers"]) == (1, 2)
    assert {k: v for k, v in two.items() if k != "arithmetic"} == {k: v for k, v in one.items() if k != "arithmetic"}


def test_per_feature_dropout_masks_are_the_same_on_every_rank():
    """HashEmbed/StaticVectors drop whole columns with one mask per batch: all ranks must share it."""
    from thinc.api import NumpyOps

    from experiments.training.parallel import _BatchMasks

    a, b = _BatchMasks(NumpyOps(), seed=3), _BatchMasks(NumpyOps(), seed=3)
    a.start_step(7)
    b.start_step(7)
    mask = a.get_dropout_mask((96,), 0.2)
    assert numpy.array_equal(mask, b.get_dropout_mask((96,), 0.2))
    assert set(numpy.unique(mask).tolist()) == {0.0, 1.25} and mask.dtype == numpy.float32
    a.start_step(8)
    assert not numpy.array_equal(mask, a.get_dropout_mask((96,), 0.2))
    assert a.get_dropout_mask((4, 96), 0.2).shape == (4, 96)  # per-element masks: the rank's own RNG
    assert numpy.array_equal(a.get_dropout_mask((5,), 0.0), numpy.ones(5, dtype="f"))
