"""`python -m analysis.stock_check`: spaCy's own `spacy train` on the config `spacy init config -p textcat`
writes, scored like the trials; the frontier's stock-bow anchor is checked against it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from analysis.stock_check import (at_step_overrides, check_at_trial_epochs, check_seed, run_setting_trial,
                                  stock_config, train_evaluations, train_steps)
from experiments.common.errors import InputError


def test_train_steps_reads_spacys_console_table():
    log = "E    #       LOSS TEXTCAT  CATS_SCORE  SCORE \n---  ------  ----  ----\n  0       0  0.25  33.3  0.33\n" \
          "  2     400  12.0  80.1  0.80\n"
    assert train_steps(log) == {"epochs": 2, "steps": 400}
    assert train_steps("no table") == {}
    assert train_evaluations(log) == [{"epoch": 0, "step": 0, "score": 0.33}, {"epoch": 2, "step": 400, "score": 0.80}]


@pytest.mark.slow
def test_stock_check_trains_spacys_config_and_scores_as_spacy_does(imdb_corpus, tmp_path):
    found = check_seed(imdb_corpus, tmp_path / "seed-0", 0,
                       overrides=["--training.max_steps", "300", "--training.eval_frequency", "100"])
    written = json.loads((tmp_path / "seed-0" / "results.json").read_text())
    assert written == found
    assert found["config_sha256"] == hashlib.sha256(stock_config("efficiency").encode()).hexdigest()
    assert "spacy.TextCatBOW.v3" in found["config"] and found["steps"] == 300
    assert [e["step"] for e in found["evaluations"]] == [0, 100, 200, 300]  # every eval_frequency steps
    # spaCy's model-best is its best evaluation: its SCORE column (2 decimals) is the best cats_score
    assert max(e["score"] for e in found["evaluations"]) == pytest.approx(found["spacy_best_cats_score"], abs=0.006)
    # our scorer on model-best gives spaCy's own best cats_score: the same metric, recomputed on fresh docs
    assert found["dev_cats_score"] == pytest.approx(found["spacy_best_cats_score"], abs=1e-6)
    assert 0.4 <= found["dev_accuracy"] <= 1.0
    assert 2e6 < found["model_size_bytes"] < 5e6  # 262,144 rows x 2 labels of float32, and the vocab


@pytest.mark.slow
def test_a_stock_bow_trial_makes_spacy_trains_updates(imdb_corpus, tmp_path):
    """The frontier's stock-bow setting is the stock efficiency config trained by a trial: stopped where
    each of the trial's epochs ended, `spacy train` on the stock config scores exactly what the trial
    scored there. So the two anchors differ only in where the best model is picked from."""
    trial_file = run_setting_trial(Path("lmao-imdb-1k/frontier.yml"), "stock-bow", 0, imdb_corpus,
                                   tmp_path / "trial", epochs=2)
    trial = json.loads(trial_file.read_text())
    assert trial["status"] == "completed" and [e["steps"] > 0 for e in trial["epochs"]] == [True, True]
    assert trial["meta"]["setting"] == "stock-bow" and trial["params"]["textcat_arch"] == "bow"
    rows = check_at_trial_epochs(imdb_corpus, tmp_path / "spacy", trial_file)
    assert [r["updates"] for r in rows] == [e["steps"] for e in trial["epochs"]]
    assert [r["spacy_train_dev_accuracy"] for r in rows] == [e["dev_score"] for e in trial["epochs"]]
    assert at_step_overrides(9)[-2:] == ["--training.patience", "0"]


def test_align_with_names_a_missing_setting(imdb_corpus, tmp_path):
    with pytest.raises(InputError, match="no setting 'stock-nope'"):
        run_setting_trial(Path("lmao-imdb-1k/frontier.yml"), "stock-nope", 0, imdb_corpus, tmp_path, epochs=2)
