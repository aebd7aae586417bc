"""The textcat_arch param builds spaCy's own stock text classifiers (those `spacy init config -p textcat`
writes) inside a trial, so the stock configs sit in the frontier with results, size and speed like every
other model."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy.cli.init_config import init_config
from spacy.util import load_model_from_config

from experiments.training.config import build_config
from experiments.common.errors import InputError
from experiments.training.params import resolve
from experiments.training.trial import run_trial

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO / "lmao-imdb-1k"
NER = REPO / "ontonotes-ner"


def config_for(experiment: Path, params: dict):
    return build_config(experiment, resolve({}, params), corpus_dir=Path("corpus"), vectors=None)


def stock_textcat_model(optimize: str) -> dict:
    """The ``[components.textcat.model]`` block spaCy's quickstart writes for a CPU textcat pipeline."""
    config = init_config(lang="en", pipeline=["textcat"], optimize=optimize, gpu=False)
    return config["components"]["textcat"]["model"]


def test_bow_is_spacys_stock_efficiency_model_alone():
    config = config_for(IMDB, {"textcat_arch": "bow"})
    assert config["components"]["textcat"]["model"] == stock_textcat_model("efficiency")
    assert config["nlp"]["pipeline"] == ["textcat"] and "tok2vec" not in config["components"]
    nlp = load_model_from_config(config, auto_fill=True)
    assert nlp.pipe_names == ["textcat"]
    bigrams = config_for(IMDB, {"textcat_arch": "bow", "bow_ngram_size": 2, "bow_rows": 65536})
    assert (bigrams["components"]["textcat"]["model"]["ngram_size"],
            bigrams["components"]["textcat"]["model"]["length"]) == (2, 65536)


def test_ensemble_is_spacys_stock_accuracy_model_over_our_tok2vec():
    stock = stock_textcat_model("accuracy")
    model = config_for(IMDB, {"textcat_arch": "ensemble", "width": 64})["components"]["textcat"]["model"]
    assert model["@architectures"] == stock["@architectures"] == "spacy.TextCatEnsemble.v2"
    assert model["linear_model"] == stock["linear_model"]
    assert model["tok2vec"]["@architectures"] == "spacy.Tok2VecListener.v1"
    config = config_for(IMDB, {"textcat_arch": "ensemble", "width": 64})
    nlp = load_model_from_config(config, auto_fill=True)
    assert nlp.pipe_names == ["tok2vec", "textcat"]
    name = nlp.get_pipe("textcat").model.name  # (bow | listener >> attention pooling) >> softmax
    assert "sparse_linear" in name and "tok2vec-listener>>list2ragged>>para-attn" in name


def test_reduce_keeps_the_experiments_own_block():
    assert config_for(IMDB, {})["components"]["textcat"]["model"]["@architectures"] == "spacy.TextCatReduce.v1"


def test_bow_refuses_what_needs_a_tok2vec():
    with pytest.raises(InputError, match="textcat_arch=bow has no tok2vec"):
        config_for(IMDB, {"textcat_arch": "bow", "static_vectors_input": True})
    with pytest.raises(InputError, match="textcat_arch=bow has no tok2vec"):
        config_for(IMDB, {"textcat_arch": "bow", "pretrain_epochs": 1})
    with pytest.raises(InputError, match="needs a \\[components.textcat.model\\] block"):
        config_for(NER, {"textcat_arch": "ensemble"})


@pytest.mark.slow
def test_bow_and_ensemble_trials_train_and_save_their_models(imdb_corpus, tiny_trial_params, tmp_path):
    """A bow trial saves a pipeline of textcat alone, smaller than the tok2vec models; an ensemble trial
    starts from pretrained tok2vec weights like the reduce head does."""
    base = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "max_epochs": 2, "patience": 0,
            "static_vectors_input": False}
    bow = run_trial(IMDB, tmp_path / "bow", {**base, "textcat_arch": "bow", "bow_rows": 4096,
                                             "pretrain_epochs": 0})
    assert bow["status"] == "completed" and len(bow["epochs"]) == 2
    assert spacy.load(tmp_path / "bow" / "model-best").pipe_names == ["textcat"]
    ensemble = run_trial(IMDB, tmp_path / "ensemble", {**base, "textcat_arch": "ensemble", "bow_rows": 4096,
                                                         "pretrain_epochs": 1, "pretrain_max_epochs": 1},
                         cache=str(tmp_path / "cache"))
    assert ensemble["status"] == "completed" and ensemble["pretraining"]["epochs"] == 1
    nlp = spacy.load(tmp_path / "ensemble" / "model-best")
    assert nlp.pipe_names == ["tok2vec", "textcat"]
    assert nlp.get_pipe("textcat").model.get_ref("tok2vec") is not None  # the listener, fed by the tok2vec
    assert bow["model_size_bytes"] < ensemble["model_size_bytes"]
    assert 0.4 <= bow["best_dev_score"] <= 1.0 and 0.4 <= ensemble["best_dev_score"] <= 1.0
