"""The faster set-up before epoch 1 changes nothing: same docs, same initialised pipeline, same scores.

Three shortcuts make a protocol-scale trial start sooner (benchmarks/bench_setup.py measures them):
docs are rebuilt from a DocBin with token IDs as lists (``docs_from_docbin``), the unannotated copies
fine-tuning predicts on come from the same arrays (``read_doc_pairs``), and ``init_pipeline`` lets
spaCy's ``init_nlp`` read the pre-tokenized examples instead of re-tokenizing the training corpus.
Each is compared here with what it replaces, and a whole trial with the replaced path gives the same
dev scores from the same seed.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.training.initialize import init_nlp

from experiments.training import finetune
from experiments.training.config import build_config, load_experiment
from experiments.data.docbins import docbin_files, docs_from_docbin, read_doc_pairs
from experiments.training.params import resolve
from experiments.training.trial import run_trial

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = {"textcat": REPO / "lmao-imdb-1k", "ner": REPO / "ontonotes-ner"}


def spacy_docs(path: Path, vocab) -> list:
    return [doc for file in docbin_files(path) for doc in DocBin().from_disk(file).get_docs(vocab)]


def same_doc(a: Doc, b: Doc) -> bool:
    return (a.to_bytes() == b.to_bytes() and a.has_unknown_spaces == b.has_unknown_spaces
            and a.cats == b.cats and a.user_data == b.user_data)


def token_loop_pairs(path: Path, nlp) -> list:
    """What fine-tuning built before: the unannotated copy from a loop over the gold doc's tokens."""
    examples = []
    for reference in spacy_docs(path, nlp.vocab):
        predicted = Doc(nlp.vocab, words=[t.text for t in reference],
                        spaces=[bool(t.whitespace_) for t in reference])
        predicted.from_array(["NORM"], reference.to_array(["NORM"]))
        examples.append(Example(predicted, reference))
    return examples


@pytest.fixture
def odd_docbin(tmp_path) -> Path:
    """Docs with what a DocBin can carry beyond tokens: unknown spaces, spans, user data, entities, tags."""
    nlp = spacy.blank("en")
    docs = [Doc(nlp.vocab, words=["New", "York", "is", "big"]),  # spaces unknown
            nlp("Can't stop, won't stop."), nlp("")]
    docs[0].set_ents([Span(docs[0], 0, 2, label="GPE")])
    docs[0].spans["sc"] = [Span(docs[0], 2, 4, label="X")]
    docs[1].user_data["source"] = "review 7"
    docs[1].cats = {"POSITIVE": 1.0, "NEGATIVE": 0.0}
    docs[1][0].tag_ = "MD"
    db = DocBin(store_user_data=True, docs=docs)
    db.to_disk(tmp_path / "odd.spacy")
    return tmp_path / "odd.spacy"


def test_docs_from_docbin_are_spacys_docs(imdb_corpus, wnut_corpus, odd_docbin):
    for path in (imdb_corpus / "dev.spacy", imdb_corpus / "pretrain", wnut_corpus / "train.spacy", odd_docbin):
        ours_vocab, spacy_vocab = spacy.blank("en").vocab, spacy.blank("en").vocab
        ours = [doc for file in docbin_files(path) for doc in docs_from_docbin(DocBin().from_disk(file), ours_vocab)]
        theirs = spacy_docs(path, spacy_vocab)
        assert len(ours) == len(theirs) > 0
        assert all(same_doc(a, b) for a, b in zip(ours, theirs)), path
        assert [d.spans.to_bytes() for d in ours] == [d.spans.to_bytes() for d in theirs]
    assert ours[0].has_unknown_spaces and ours[0].ents[0].label_ == "GPE"  # the odd DocBin's first doc


def test_unannotated_copies_match_the_token_loop(imdb_corpus, wnut_corpus, odd_docbin):
    for path in (imdb_corpus / "dev.spacy", wnut_corpus / "dev.spacy", odd_docbin):
        nlp = spacy.blank("en")
        before = token_loop_pairs(path, nlp)
        after = finetune.load_examples(path, nlp)
        assert len(before) == len(after) > 0
        for old, new in zip(before, after):
            assert same_doc(old.reference, new.reference)
            assert same_doc(old.predicted, new.predicted)
            assert not new.predicted.cats
            assert not len(new.predicted) or not new.predicted.has_annotation("ENT_IOB")  # (vacuous when empty)
    # norms come from the gold doc, not from the lexemes: "Can't" -> "ca" + "not"
    assert [t.norm_ for t in after[1].predicted][:2] == ["can", "not"]


def trial_config(task: str, corpus: Path, tiny: dict):
    experiment = EXPERIMENTS[task]
    params = resolve(load_experiment(experiment)["params"], {**tiny, "corpus_dir": str(corpus)},
                     defaults_source=experiment / "defaults.yml")
    return build_config(experiment, params, corpus_dir=corpus, vectors=corpus / "vectors")


@pytest.mark.parametrize("task", ["textcat", "ner"])
def test_init_pipeline_is_init_nlp(task, imdb_corpus, wnut_corpus, tiny_trial_params):
    config = trial_config(task, {"textcat": imdb_corpus, "ner": wnut_corpus}[task], tiny_trial_params)
    states = []
    pipelines = []
    for init in (init_nlp, finetune.init_pipeline):
        nlp = init(config)
        pipelines.append(nlp)
        states.append((random.random(), numpy.random.random()))  # the RNGs were left in the same state
    spacy_nlp, ours = pipelines
    assert ours.config.to_str() == spacy_nlp.config.to_str()  # the config saved with the model
    assert ours.get_pipe(task).labels == spacy_nlp.get_pipe(task).labels and ours.get_pipe(task).labels
    assert ours.to_bytes(exclude=["vocab"]) == spacy_nlp.to_bytes(exclude=["vocab"])  # weights, config, labels
    assert states[0] == states[1]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["textcat", "ner"])
def test_same_dev_scores_as_the_spacy_reader_path(task, imdb_corpus, wnut_corpus, tiny_trial_params, tmp_path,
                                                  monkeypatch):
    """A whole trial, once as it runs and once with spaCy's ``init_nlp`` on the config's own reader and
    the token-loop copies it replaced: the same seed gives the same losses and dev scores every epoch."""
    corpus = {"textcat": imdb_corpus, "ner": wnut_corpus}[task]
    params = {**tiny_trial_params, "corpus_dir": str(corpus), "pretrain_epochs": 0, "max_epochs": 3}
    fast = run_trial(EXPERIMENTS[task], tmp_path / "fast", params, eval_processes=1)
    monkeypatch.setattr(finetune, "init_pipeline", init_nlp)
    monkeypatch.setattr(finetune, "load_examples", lambda path, nlp, limit=0: token_loop_pairs(path, nlp))
    before = run_trial(EXPERIMENTS[task], tmp_path / "before", params, eval_processes=1)
    scores = [row["dev_score"] for row in fast["epochs"]]
    assert scores == [row["dev_score"] for row in before["epochs"]]
    assert [row["losses"] for row in fast["epochs"]] == [row["losses"] for row in before["epochs"]]
    assert len(set(scores)) > 1, "the scores must move between epochs for this test to mean anything"
    a, b = spacy.load(tmp_path / "fast" / "model-last"), spacy.load(tmp_path / "before" / "model-last")
    assert a.to_bytes(exclude=["vocab"]) == b.to_bytes(exclude=["vocab"])
