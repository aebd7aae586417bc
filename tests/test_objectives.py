"""The trigram objective: registry, target construction, output shapes, gradients, and that it learns."""

from __future__ import annotations

import numpy
import pytest
import spacy
from spacy.util import registry
from thinc.api import Adam, fix_random_seed

from experiments.training.objectives import get_trigram_loss, trigram_targets

WORDS = ["the", "film", "was", "good", "bad", "plot", "actor"]
DIMS = 4


@pytest.fixture
def nlp():
    nlp = spacy.blank("en")
    rng = numpy.random.default_rng(0)
    for word in WORDS:
        nlp.vocab.set_vector(word, rng.normal(size=DIMS).astype("f"))
    return nlp


def tiny_tok2vec(width: int = 8):
    return registry.resolve({"m": {
        "@architectures": "spacy.HashEmbedCNN.v2", "width": width, "depth": 1, "embed_size": 100,
        "window_size": 1, "maxout_pieces": 2, "subword_features": True, "pretrained_vectors": None}})["m"]


def make_objective(nlp, loss="cosine", hidden=16):
    factory = registry.resolve({"o": {"@architectures": "lmao.PretrainTrigramVectors.v1", "maxout_pieces": 2,
                                      "hidden_size": hidden, "loss": loss}})["o"]
    model = factory(nlp.vocab, tiny_tok2vec())
    model.initialize(X=[nlp.make_doc("the film")])
    return model


def test_targets_are_neighbour_vectors_with_zero_padding(nlp):
    doc = nlp.make_doc("the film zzz good")
    target = trigram_targets([doc, nlp.make_doc("bad")])
    assert target.shape == (5, 3 * DIMS)
    v = {w: nlp.vocab.get_vector(w) for w in WORDS}
    zero = numpy.zeros(DIMS, dtype="f")
    expected_film = numpy.concatenate([v["the"], v["film"], zero])  # "zzz" has no vector -> zeros
    numpy.testing.assert_array_equal(target[1], expected_film)
    numpy.testing.assert_array_equal(target[0], numpy.concatenate([zero, v["the"], v["film"]]))
    numpy.testing.assert_array_equal(target[3], numpy.concatenate([zero, v["good"], zero]))
    # Doc boundaries are not crossed: "bad" is alone in its doc.
    numpy.testing.assert_array_equal(target[4], numpy.concatenate([zero, v["bad"], zero]))


@pytest.mark.parametrize("loss", ["cosine", "L2"])
def test_output_shape_loss_and_gradient(nlp, loss):
    model = make_objective(nlp, loss)
    docs = [nlp.make_doc("the film was good"), nlp.make_doc("bad plot")]
    prediction, backprop = model.begin_update(docs)
    assert prediction.shape == (6, 3 * DIMS)
    loss_value, d_prediction = model.attrs["loss"](model.ops, docs, prediction)
    assert numpy.isfinite(float(loss_value)) and float(loss_value) > 0
    assert d_prediction.shape == prediction.shape and numpy.abs(d_prediction).sum() > 0
    backprop(d_prediction)
    tok2vec = model.get_ref("tok2vec")
    grads = [node.get_grad(name) for node in tok2vec.walk() for name in node.param_names if node.has_grad(name)]
    assert grads and any(numpy.abs(g).sum() > 0 for g in grads)  # the gradient reaches the tok2vec weights


def test_gradient_matches_finite_differences(nlp):
    """The gradient w.r.t. the prediction, checked numerically. thinc's L2Distance reports the loss as
    ||d||^2 but returns the gradient of ||d||^2 / 2 (its convention), hence the factor 2."""
    from thinc.api import L2Distance, NumpyOps

    ops = NumpyOps()
    docs = [nlp.make_doc("the film was good")]
    rng = numpy.random.default_rng(1)
    prediction = rng.normal(size=(4, 3 * DIMS)).astype("f")
    distance = L2Distance(normalize=False)
    _, grad = get_trigram_loss(ops, docs, prediction, distance)
    eps = 1e-3
    for i, j in [(0, 0), (1, 5), (3, 11)]:
        plus, minus = prediction.copy(), prediction.copy()
        plus[i, j] += eps
        minus[i, j] -= eps
        numeric = (float(get_trigram_loss(ops, docs, plus, distance)[0])
                   - float(get_trigram_loss(ops, docs, minus, distance)[0])) / (2 * eps)
        assert 2 * grad[i, j] == pytest.approx(numeric, rel=1e-2, abs=1e-3)


def test_updates_reduce_the_loss(nlp):
    fix_random_seed(0)
    model = make_objective(nlp, "cosine", hidden=32)
    docs = [nlp.make_doc("the film was good"), nlp.make_doc("the actor was bad"), nlp.make_doc("bad plot")]
    optimizer = Adam(0.01)
    losses = []
    for _ in range(30):
        prediction, backprop = model.begin_update(docs)
        loss, d_prediction = model.attrs["loss"](model.ops, docs, prediction)
        backprop(d_prediction)
        model.finish_update(optimizer)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_needs_vectors_and_known_loss(nlp):
    with pytest.raises(ValueError, match="'cosine', 'L2'"):
        registry.resolve({"o": {"@architectures": "lmao.PretrainTrigramVectors.v1", "maxout_pieces": 2,
                                "hidden_size": 8, "loss": "hinge"}})
    factory = registry.resolve({"o": {"@architectures": "lmao.PretrainTrigramVectors.v1", "maxout_pieces": 2,
                                      "hidden_size": 8, "loss": "L2"}})["o"]
    with pytest.raises(ValueError, match="E875"):
        factory(spacy.blank("en").vocab, tiny_tok2vec())
