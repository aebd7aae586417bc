"""A trial's fine-tuning against spaCy's own loop (``spacy.training.loop.train``) on the trial's saved config.

One batch per epoch (the batch holds the whole training set) and ``eval_frequency = 1`` line the two up:
spaCy's step k is our epoch k + 1, and both evaluate after every update. Then both make the same number of
updates under ``max_steps``, pick the same evaluation as the best on a tie, and compute the same
``score_weights`` score, the one spaCy selects by.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict, List

import pytest
from thinc.api import Config

from experiments.training.trial import run_trial

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO / "lmao-imdb-1k"


def spacy_loop(config_path: Path, out: Path, monkeypatch, overrides: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Run spaCy's ``train`` on a saved config; return what its loop yielded at each step."""
    import spacy.training.loop as loop
    from spacy.training.initialize import init_nlp

    import experiments.training.pretrain  # noqa: F401  (the config names our pretraining reader)

    steps: List[Dict[str, Any]] = []
    original = loop.train_while_improving

    def recorded(*args, **kwargs):
        for batch, info, is_best in original(*args, **kwargs):
            steps.append({"step": info["step"], "epoch": info["epoch"], "score": info["score"],
                          "is_best": is_best, "updates": info["step"] + 1})
            yield batch, info, is_best

    monkeypatch.setattr(loop, "train_while_improving", recorded)
    config = Config().from_disk(config_path, overrides=overrides)
    nlp = init_nlp(config)
    out.mkdir(parents=True)  # as `spacy train` does
    loop.train(nlp, out, stdout=io.StringIO(), stderr=io.StringIO())
    return steps


def best_step(steps: List[Dict[str, Any]]) -> int:
    """The step whose weights spaCy leaves in model-best: the last evaluation flagged best."""
    return [s["step"] for s in steps if s["is_best"]][-1]


@pytest.fixture
def one_batch_params(imdb_corpus, tiny_trial_params) -> dict:
    # 300 training docs in one batch of 400: one update per epoch. blis: spaCy's CPU gemm, the same arithmetic.
    return {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 0, "batch_size": 400,
            "cpu_gemm": "blis", "max_epochs": 10, "patience": 0}


@pytest.mark.slow
def test_max_steps_and_score_weights_match_spacy_train(one_batch_params, tmp_path, monkeypatch):
    ours = run_trial(IMDB, tmp_path / "ours", {**one_batch_params, "learn_rate": 0.05},
                     config_overrides={"training.max_steps": 2}, eval_processes=1)
    theirs = spacy_loop(tmp_path / "ours" / "model-best" / "config.cfg", tmp_path / "spacy", monkeypatch,
                        {"training.eval_frequency": 1})
    # max_steps = 2: spaCy makes 3 updates (steps 0, 1, 2), and so do we (3 epochs of one update).
    assert [s["updates"] for s in theirs] == [1, 2, 3]
    assert [r["steps"] for r in ours["epochs"]] == [1, 2, 3]
    # score_weights: each evaluation's weighted score (what spaCy selects by) is the one we record.
    assert [r["spacy_score"] for r in ours["epochs"]] == pytest.approx([s["score"] for s in theirs], abs=1e-6)
    assert len({s["score"] for s in theirs}) > 1, "the updates should move the score"


@pytest.mark.slow
def test_a_tie_keeps_the_later_evaluation_and_patience_counts_from_the_earliest(one_batch_params, tmp_path,
                                                                                monkeypatch):
    # learn rate 0: the weights never change, so every evaluation ties with the first.
    ours = run_trial(IMDB, tmp_path / "ours", {**one_batch_params, "patience": 3},
                     config_overrides={"training.optimizer.learn_rate": 0.0}, eval_processes=1)
    theirs = spacy_loop(tmp_path / "ours" / "model-best" / "config.cfg", tmp_path / "spacy", monkeypatch,
                        {"training.eval_frequency": 1})
    assert len({s["score"] for s in theirs}) == 1 and len({r["dev_score"] for r in ours["epochs"]}) == 1
    # patience 3 from the earliest best (step 0): spaCy stops after step 3, we after epoch 4
    assert len(theirs) == len(ours["epochs"]) == 4
    # the later of tied evaluations is the best: spaCy's last step, our last epoch
    assert best_step(theirs) == 3 and ours["best_epoch"] == 4


@pytest.mark.slow
def test_a_crash_still_writes_model_last(one_batch_params, tmp_path, monkeypatch):
    """spaCy's train() saves model-last on its way out of a crash, then re-raises; so does finetune."""
    import experiments.training.finetune as finetune

    def crash(*args, **kwargs):
        raise RuntimeError("evaluation crashed")

    monkeypatch.setattr(finetune, "evaluate", crash)
    with pytest.raises(RuntimeError, match="evaluation crashed"):
        run_trial(IMDB, tmp_path / "ours", one_batch_params, eval_processes=1)
    assert (tmp_path / "ours" / "model-last" / "config.cfg").is_file()
    assert not (tmp_path / "ours" / "model-best").exists()
