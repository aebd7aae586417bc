"""Our pretraining loop (experiments/training/pretrain.py) against ``spacy pretrain`` on the same text, config and seed,
and its word-based checkpoints and stop (``pretrain_save_every_words``, ``pretrain_max_words``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from experiments.training.trial import run_trial

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO / "lmao-imdb-1k"
pytestmark = pytest.mark.slow  # pretrains (tiny) models


def test_loop_reproduces_spacy_pretrain(imdb_corpus, tiny_trial_params, tmp_path):
    """One process with thinc's BLIS gemm (what ``spacy pretrain`` uses) takes spaCy's update steps
    exactly: the same words and the same epoch losses in both log.jsonl files, and the same weights in
    every epoch's checkpoint. spaCy's CLI reads the raw text (JsonlCorpus, tokenizing it again) where we
    read the prepared shards, so this also checks the shards hold the same docs in the same order."""
    from thinc.api import get_current_ops, set_current_ops

    from experiments.training.config import build_config, load_experiment
    from experiments.data.docbins import read_docs
    from experiments.training.params import resolve
    from experiments.training.pretrain import pretrain
    from experiments.training.trial import use_cpu_ops

    overrides = {**tiny_trial_params, "objective": "vectors", "pretrain_max_epochs": 2, "seed": 3,
                 "cpu_gemm": "blis"}
    params = resolve(load_experiment(IMDB)["params"], overrides, defaults_source=IMDB / "defaults.yml")
    config = build_config(IMDB, params, corpus_dir=imdb_corpus, vectors=imdb_corpus / "vectors", pretraining=True)

    ours = tmp_path / "ours"
    saved = get_current_ops()
    use_cpu_ops("blis")
    try:
        info = pretrain(config, ours, silent=True)
    finally:
        set_current_ops(saved)

    texts = [doc.text for doc in read_docs(imdb_corpus / "pretrain", spacy.blank("en").vocab) if len(doc)]
    raw = tmp_path / "pretrain.jsonl"
    raw.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    config["corpora"]["pretrain"] = {"@readers": "spacy.JsonlCorpus.v1", "path": str(raw), "min_length": 0,
                                     "max_length": 0, "limit": 0}
    base, filled = tmp_path / "base.cfg", tmp_path / "spacy-pretrain.cfg"
    config.to_disk(base)
    subprocess.run([sys.executable, "-m", "spacy", "init", "fill-config", str(base), str(filled), "--pretraining"],
                   check=True, capture_output=True)
    theirs = tmp_path / "spacy"
    done = subprocess.run([sys.executable, "-m", "spacy", "pretrain", str(filled), str(theirs)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    spacy_log = [json.loads(line) for line in (theirs / "log.jsonl").read_text().splitlines()]
    our_log = [json.loads(line) for line in (ours / "log.jsonl").read_text().splitlines()]
    epochs = [row for row in spacy_log if row["epoch"] < 2]  # the last row is model-last.bin's
    assert [row["checkpoint"] for row in our_log] == ["model0.bin", "model1.bin"]
    assert [row["words"] for row in our_log] == [row["nr_word"] for row in epochs]
    assert our_log[1]["words"] == info["words"] > 2 * 50_000
    assert [row["epoch_loss"] for row in our_log] == pytest.approx([row["epoch_loss"] for row in epochs],
                                                                   rel=1e-6, abs=0)
    assert our_log[1]["epoch_loss"] < our_log[0]["epoch_loss"]  # the loss falls: the model learns
    for name in ("model0.bin", "model1.bin"):
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


def test_checkpoints_every_n_words_and_stop_after_max_words(imdb_corpus, tiny_trial_params, tmp_path):
    """``-P pretrain_save_every_words=N`` adds a checkpoint at the first batch end past every N words;
    ``-P pretrain_max_words=M`` stops at the first batch end past M words, mid-epoch, saving where it
    stopped; both are part of the pretraining cache key."""
    every, most = 20_000, 150_000
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "objective": "vectors", "pretrain_epochs": 1,
              "pretrain_max_epochs": 3, "max_epochs": 1, "pretrain_save_every_words": every,
              "pretrain_max_words": most}
    cache = tmp_path / "cache"
    results = run_trial(IMDB, tmp_path / "t", params, cache=str(cache))
    run = Path(results["pretraining"]["checkpoint"]).parent
    info = json.loads((run / "pretraining.json").read_text())
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    batch = 2 * params["pretrain_batch_size"]  # batch_by_words: about that many words (tolerance 0.2)

    total = info["words"]
    assert most <= total < most + batch
    by_words = [row for row in log if row["checkpoint"].startswith("model-w")]
    assert [row["checkpoint"] for row in by_words] == [f"model-w{row['words']}.bin" for row in by_words]
    assert len(by_words) == total // every
    for k, row in enumerate(by_words, 1):
        assert k * every <= row["words"] < k * every + batch, row
        assert (run / row["checkpoint"]).stat().st_size > 10_000
    # One full epoch is fewer words than the limit, so the run stops inside the second of 3 epochs.
    epochs = [row for row in log if not row["checkpoint"].startswith("model-w")]
    assert [row["checkpoint"] for row in epochs] == ["model0.bin", "model1.bin"]
    assert epochs[0]["words"] < most and epochs[1]["words"] == total
    assert results["pretraining"]["words_seen"] == epochs[0]["words"]  # pretrain_epochs=1: model0.bin
    checkpoints = {row["checkpoint"]: (run / row["checkpoint"]).read_bytes() for row in log}
    assert len(set(checkpoints.values())) == len(checkpoints)  # every checkpoint holds other weights
    # Without the two settings it is another run (another cache entry).
    plain = run_trial(IMDB, tmp_path / "plain", {**params, "pretrain_save_every_words": 0,
                                                 "pretrain_max_words": 0, "pretrain_max_epochs": 1},
                      cache=str(cache))
    assert plain["pretraining"]["cached"] is False
    assert plain["pretraining"]["cache_key"] != results["pretraining"]["cache_key"]
