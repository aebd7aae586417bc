"""The resolved spaCy config is the single source of the training settings.

`-P` params and `--training.x` overrides both land in the config; the loop reads only that config, and
`spacy train` on a trial's saved config makes the same updates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from thinc.api import Config

from experiments.training.config import build_config
from experiments.data.docbins import read_docs
from experiments.training.params import resolve
from experiments.training.trial import run_trial

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO / "lmao-imdb-1k"


def config_for(params: dict, overrides: dict | None = None, corpus: Path = Path("corpus")) -> Config:
    return build_config(IMDB, resolve({}, params), corpus_dir=corpus, vectors=None, overrides=overrides)


def test_params_map_into_the_training_block():
    config = config_for({"batch_size": 48, "patience": 5, "max_epochs": 7, "dropout": 0.3})
    T = config["training"]
    assert T["batcher"] == {"@batchers": "spacy.batch_by_sequence.v1", "size": 48, "get_length": None}
    assert (T["patience"], T["max_epochs"], T["dropout"]) == (5, 7, 0.3)
    compounding = config_for({"batch_schedule": "compounding", "batch_start": 2, "batch_stop": 20,
                              "batch_compound": 1.01})["training"]["batcher"]["size"]
    assert compounding == {"@schedules": "compounding.v1", "start": 2.0, "stop": 20.0, "compound": 1.01, "t": 0.0}
    # spaCy's NER default (`spacy init config -p ner`): words per batch, 100 -> 1000 by 1.001
    words = config_for({"batch_schedule": "words", "batch_start": 100, "batch_stop": 1000})["training"]["batcher"]
    assert words == {"@batchers": "spacy.batch_by_words.v1", "tolerance": 0.2, "discard_oversize": False,
                     "get_length": None, "size": {"@schedules": "compounding.v1", "start": 100.0, "stop": 1000.0,
                                                  "compound": 1.001, "t": 0.0}}
    from spacy.util import registry

    batcher = registry.resolve({"b": words})["b"]  # the block spaCy builds: batches of about 100 words first
    assert [len(b) for b in batcher([[0] * 30] * 6)] == [3, 3]


def test_command_line_overrides_win_over_params_and_blocks():
    overrides = {"training.batcher.size": 64, "training.patience": 2, "training.optimizer.use_averages": True,
                 "pretraining.objective.loss": "L2"}
    config = config_for({"batch_size": 16, "patience": 5}, overrides)
    assert config["training"]["batcher"]["size"] == 64
    assert config["training"]["patience"] == 2
    assert config["training"]["optimizer"]["use_averages"] is True
    assert config["pretraining"]["objective"]["loss"] == "L2"
    # Variables survive the second pass, so the config still resolves like spaCy's own.
    assert config["corpora"]["train"]["path"] == "${paths.train}"


def test_embed_rows_follow_the_embedded_attributes():
    """`embed_rows` gives each attribute MultiHashEmbed embeds the same count, however many a config or
    an `--...embed.attrs` override names; an explicit `--...embed.rows` wins. spaCy's own resolve
    rejects a rows list whose length differs from attrs, so the model must build."""
    embed = "components.tok2vec.model.embed"
    assert config_for({"embed_rows": 700})["components"]["tok2vec"]["model"]["embed"]["rows"] == [700] * 4
    two = config_for({"embed_rows": 700}, {f"{embed}.attrs": ["NORM", "SHAPE"]})
    assert two["components"]["tok2vec"]["model"]["embed"]["rows"] == [700, 700]
    nlp = spacy.util.load_model_from_config(two, auto_fill=True, validate=True)
    nlp.get_pipe("tok2vec").model.initialize()
    hash_rows = sorted(node.get_dim("nV") for node in nlp.get_pipe("tok2vec").model.walk() if node.name.startswith("hashembed"))
    assert hash_rows == [700, 700]
    explicit = config_for({"embed_rows": 700}, {f"{embed}.attrs": ["NORM", "SHAPE"], f"{embed}.rows": [100, 200]})
    assert explicit["components"]["tok2vec"]["model"]["embed"]["rows"] == [100, 200]


@pytest.mark.slow
def test_overrides_take_effect_in_the_loop(imdb_corpus, tiny_trial_params, tmp_path):
    """Batch size, patience and averaging given as `--training.x` change what the trial does."""
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "max_epochs": 3, "learn_rate": 0.01}
    plain = run_trial(IMDB, tmp_path / "plain", params)
    changed = run_trial(IMDB, tmp_path / "changed", params, config_overrides={
        "training.batcher.size": 100, "training.optimizer.use_averages": True, "training.patience": 1})
    saved = Config().from_disk(tmp_path / "changed" / "model-best" / "config.cfg")
    assert saved["training"]["batcher"]["size"] == 100 and saved["training"]["optimizer"]["use_averages"]
    # 300 docs: 19 updates of 16 per epoch vs 3 of 100 -> far fewer words per second of update overhead,
    # and a different learning curve; averaged weights give other scores than the raw ones.
    assert [r["dev_score"] for r in plain["epochs"]] != [r["dev_score"] for r in changed["epochs"]]
    # patience 1: stops at the first epoch that does not improve on the best.
    scores = [r["dev_score"] for r in changed["epochs"]]
    best_so_far = [max(scores[: i + 1]) for i in range(len(scores))]
    stops_at = next((i for i in range(1, len(scores)) if scores[i] <= best_so_far[i - 1]), len(scores) - 1)
    assert len(scores) == stops_at + 1


@pytest.mark.slow
def test_spacy_train_on_the_saved_config_trains_the_same(imdb_corpus, tiny_trial_params, tmp_path):
    """`spacy train` on model-best/config.cfg: the same final weights as the trial's model-last."""
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "max_epochs": 2, "patience": 0,
              "batch_schedule": "compounding", "batch_start": 4, "batch_stop": 32, "batch_compound": 1.05,
              "cpu_gemm": "blis"}  # spaCy's CLI multiplies with thinc's default, BLIS
    run_trial(IMDB, tmp_path / "ours", params, config_overrides={
        "training.optimizer.use_averages": True,
        "training.optimizer.learn_rate": {"@schedules": "warmup_linear.v1", "warmup_steps": 10,
                                          "total_steps": 60, "initial_rate": 0.005}})
    cli = subprocess.run(
        [sys.executable, "-m", "spacy", "train", str(tmp_path / "ours" / "model-best" / "config.cfg"),
         "--output", str(tmp_path / "spacy")], capture_output=True, text=True, cwd=REPO)
    assert cli.returncode == 0, cli.stderr[-2000:]
    ours = spacy.load(tmp_path / "ours" / "model-last")
    theirs = spacy.load(tmp_path / "spacy" / "model-last")
    docs = list(read_docs(imdb_corpus / "dev.spacy", ours.vocab))[:100]
    ours_cats = [d.cats["POSITIVE"] for d in ours.pipe(d.text for d in docs)]
    theirs_cats = [d.cats["POSITIVE"] for d in theirs.pipe(d.text for d in docs)]
    assert numpy.allclose(ours_cats, theirs_cats, atol=1e-5), (ours_cats[:5], theirs_cats[:5])
    assert numpy.std(ours_cats) > 1e-3  # a trained model, not a constant


@pytest.mark.slow
def test_cpu_gemm_changes_only_float_rounding(imdb_corpus, tiny_trial_params, tmp_path):
    """numpy's BLAS instead of thinc's BLIS (the speed-up is measured in benchmarks/, not here): one model
    predicts the same to float rounding either way; each gemm is deterministic run to run; training with
    one or the other drifts apart only as far as that rounding, carried through the updates, takes it.
    Every run records which one it used."""
    from thinc.api import NumpyOps, get_current_ops

    from experiments.training.trial import use_cpu_ops

    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "max_epochs": 2, "patience": 0}
    for name, gemm in (("blis", "blis"), ("numpy", "numpy"), ("numpy-again", "numpy")):
        result = run_trial(IMDB, tmp_path / name, {**params, "cpu_gemm": gemm})
        ops = get_current_ops()
        assert isinstance(ops, NumpyOps) and ops.use_blis == (gemm == "blis")
        assert result["params"]["cpu_gemm"] == gemm
    texts = [d.text for d in read_docs(imdb_corpus / "dev.spacy", spacy.blank("en").vocab)][:100]

    def predict(model: str, gemm: str) -> list:
        use_cpu_ops(gemm)  # models take the current ops when they are built (loaded)
        return [d.cats["POSITIVE"] for d in spacy.load(tmp_path / model / "model-last").pipe(texts)]

    one_model = predict("blis", "blis"), predict("blis", "numpy")
    assert numpy.std(one_model[0]) > 1e-3  # a trained model, not a constant
    assert numpy.allclose(*one_model, rtol=0, atol=1e-6)
    assert predict("numpy", "numpy") == predict("numpy-again", "numpy")
    assert numpy.allclose(one_model[0], predict("numpy", "numpy"), rtol=0, atol=1e-2)
