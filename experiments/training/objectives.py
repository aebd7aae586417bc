"""LMAO pretraining objectives registered in spaCy's registry (``[pretraining.objective]``).

spaCy ships ``spacy.PretrainVectors.v1`` (predict each token's static vector) and
``spacy.PretrainCharacters.v1``. The original experiments also tried a *trigram* objective: predict the
concatenated vectors of the word and its two neighbours, which asks the encoder to carry context
explicitly. It is registered here as ``lmao.PretrainTrigramVectors.v1`` and works with
``spacy pretrain`` too (the package registers it through the ``spacy_architectures`` entry point).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, List

import numpy
from spacy.attrs import ID
from spacy.errors import Errors
from spacy.tokens import Doc
from spacy.util import registry
from spacy.vectors import Mode as VectorsMode
from thinc.api import CosineDistance, L2Distance, LayerNorm, Linear, Maxout, Model, chain, list2array
from thinc.types import Floats2d

OOV_RANK = numpy.iinfo(numpy.uint64).max
WINDOW = 3  # previous word, the word, next word


@registry.architectures("lmao.PretrainTrigramVectors.v1")
def create_pretrain_trigram_vectors(maxout_pieces: int, hidden_size: int, loss: str) -> Callable:
    """Objective factory: ``(vocab, tok2vec) -> model`` whose output has ``3 * vector_width`` columns."""
    if loss == "cosine":
        distance = CosineDistance(normalize=True, ignore_zeros=True)
    elif loss == "L2":
        distance = L2Distance(normalize=True)
    else:
        raise ValueError(Errors.E906.format(found=loss, supported="'cosine', 'L2'"))

    def create_trigram_objective(vocab, tok2vec: Model) -> Model:
        if vocab.vectors.shape[1] == 0:
            raise ValueError(Errors.E875)
        model = build_trigram_model(tok2vec, vocab.vectors.shape[1], maxout_pieces, hidden_size)
        model.attrs["loss"] = partial(get_trigram_loss, distance=distance)
        return model

    return create_trigram_objective


def build_trigram_model(tok2vec: Model, vector_width: int, maxout_pieces: int, hidden_size: int) -> Model:
    """tok2vec -> maxout -> layer norm -> linear, predicting [v(w-1); v(w); v(w+1)] for every token."""
    output_layer = chain(
        list2array(),
        Maxout(nO=hidden_size, nP=maxout_pieces, normalize=False),
        LayerNorm(hidden_size),
        Linear(nO=WINDOW * vector_width),
    )
    model = chain(tok2vec, output_layer)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    return model


def trigram_targets(docs: List[Doc]) -> Floats2d:
    """Rows ``[v(w-1); v(w); v(w+1)]`` per token; zeros past the doc edges and for words without a vector."""
    vocab = docs[0].vocab
    if vocab.vectors.mode != VectorsMode.default:
        raise ValueError("the trigram objective needs a default-mode vectors table (not floret)")
    table = vocab.vectors.data
    width = table.shape[1]
    blocks = []
    for doc in docs:
        ids = doc.to_array(ID).ravel()
        vectors = numpy.zeros((len(doc) + 2, width), dtype="f")  # one zero row of padding at each end
        known = ids != OOV_RANK
        vectors[1:-1][known] = numpy.asarray(table[ids[known]] if known.any() else vectors[1:-1][known])
        blocks.append(numpy.hstack([vectors[:-2], vectors[1:-1], vectors[2:]]))
    return numpy.vstack(blocks) if blocks else numpy.zeros((0, WINDOW * width), dtype="f")


def get_trigram_loss(ops, docs: List[Doc], prediction: Floats2d, distance) -> tuple:
    """spaCy's objective contract: ``(loss, d_prediction)``."""
    target = ops.asarray(trigram_targets(docs))
    d_target, loss = distance(prediction, target)
    return loss, d_target
