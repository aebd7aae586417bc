"""Every recorded dev score is spaCy's own: ``nlp.evaluate`` on fresh Examples with that epoch's weights.

The oracle shares nothing with our evaluation path: spaCy's ``Corpus`` reader builds new Examples from
the dev DocBin for every call (``nlp.make_doc`` of the text, or the gold words where spaces are
unknown), and ``Language.evaluate`` predicts and scores them. Our evaluation predicts once per epoch on
dev docs loaded once per trial, in one process or in forked workers; a doc that kept the previous
epoch's entities, a stale tensor or a wrong scorer would show up here as a different number.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy.training import Corpus

from experiments.training import finetune
from experiments.training.trial import run_trial

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = {"textcat": REPO / "lmao-imdb-1k", "ner": REPO / "ontonotes-ner"}
pytestmark = pytest.mark.slow  # every test here trains a (tiny) model


def spacy_scores(nlp, dev: Path) -> dict:
    """spaCy's own evaluation of ``nlp`` on fresh Examples read from ``dev``."""
    return nlp.evaluate(list(Corpus(dev)(nlp)))


def oracle_value(task: str, scores: dict) -> float:
    # Exclusive classes: the micro-averaged F over labels equals accuracy (each doc has one gold and
    # one predicted label), so spaCy's cats_micro_f is an independent check of our accuracy.
    return scores["cats_micro_f"] if task == "textcat" else scores["ents_f"]


@pytest.fixture
def corpus(request, imdb_corpus, wnut_corpus):
    return {"textcat": imdb_corpus, "ner": wnut_corpus}[request.param]


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "forked"])
@pytest.mark.parametrize("task, corpus", [("textcat", "textcat"), ("ner", "ner")], indirect=["corpus"])
def test_every_epoch_scores_as_spacy_evaluate(task, corpus, processes, tiny_trial_params, tmp_path, monkeypatch):
    oracle = []
    ours = finetune.evaluate

    def evaluate_and_check(nlp, examples, task_, *, batch_size, processes):
        # Called inside the loop's use_params(averages): the oracle sees exactly this epoch's weights.
        evaluation = ours(nlp, examples, task_, batch_size=batch_size, processes=processes)
        oracle.append(spacy_scores(nlp, corpus / "dev.spacy"))
        return evaluation

    monkeypatch.setattr(finetune, "evaluate", evaluate_and_check)
    params = {**tiny_trial_params, "corpus_dir": str(corpus), "pretrain_epochs": 0, "max_epochs": 3}
    if task == "ner":
        params.update(batch_schedule="compounding", batch_start=4, batch_stop=32)
    out = tmp_path / "trial"
    results = run_trial(EXPERIMENTS[task], out, params, eval_processes=processes)

    recorded = [row["dev_score"] for row in results["epochs"]]
    assert len(recorded) == len(oracle) == 3
    assert recorded == pytest.approx([oracle_value(task, s) for s in oracle], abs=1e-12)
    assert len(set(recorded)) > 1, "the scores must move between epochs for this test to mean anything"
    for row, scores in zip(results["epochs"], oracle):
        if task == "textcat":
            assert row["dev_scores"]["accuracy"] == pytest.approx(scores["cats_micro_f"], abs=1e-12)
            assert row["dev_scores"]["cats_macro_auc"] == pytest.approx(scores["cats_macro_auc"], abs=1e-12)
        else:
            for key in ("ents_p", "ents_r"):
                assert row["dev_scores"][key] == pytest.approx(scores[key], abs=1e-12)
            assert row["dev_scores"]["ents_per_type"] == scores["ents_per_type"]

    # The saved pipelines, loaded as a user loads them, score what the results file says.
    best = spacy_scores(spacy.load(out / "model-best"), corpus / "dev.spacy")
    last = spacy_scores(spacy.load(out / "model-last"), corpus / "dev.spacy")
    assert results["best_dev_score"] == pytest.approx(oracle_value(task, best), abs=1e-12)
    assert recorded[-1] == pytest.approx(oracle_value(task, last), abs=1e-12)


def test_evaluation_leaves_the_dev_docs_unannotated(wnut_corpus, tiny_trial_params, tmp_path):
    """The dev docs are loaded once per trial: after an evaluation they must be as loaded."""
    params = {**tiny_trial_params, "corpus_dir": str(wnut_corpus), "pretrain_epochs": 0, "max_epochs": 2}
    run_trial(EXPERIMENTS["ner"], tmp_path / "t", params)
    nlp = spacy.load(tmp_path / "t" / "model-best")
    examples = finetune.load_examples(wnut_corpus / "dev.spacy", nlp)
    before = [eg.predicted.to_bytes() for eg in examples]
    for processes in (1, 2):
        first = finetune.evaluate(nlp, examples, "ner", batch_size=16, processes=processes)
        assert [eg.predicted.to_bytes() for eg in examples] == before
        assert not any(eg.predicted.has_annotation("ENT_IOB") for eg in examples)
        again = finetune.evaluate(nlp, examples, "ner", batch_size=16, processes=processes)
        assert again.score == first.score and again.scores["ents_per_type"] == first.scores["ents_per_type"]
