"""End-to-end trials on tiny slices: textcat and NER, with and without pretraining."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.language import Language

from experiments.data.docbins import read_docs
from experiments.common.errors import InputError
from experiments.training.finetune import evaluate, load_examples
from experiments.training.results import RESULTS_FILE, load_results
from experiments.training.trial import run_trial

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO / "lmao-imdb-1k"
NER = REPO / "ontonotes-ner"
pytestmark = pytest.mark.slow  # every test here trains a (tiny) model


def majority_share(corpus: Path) -> float:
    labels = Counter(max(d.cats, key=d.cats.get) for d in read_docs(corpus / "dev.spacy", spacy.blank("en").vocab))
    return max(labels.values()) / sum(labels.values())


def check_common_fields(results: dict, *, task: str, metric: str) -> None:
    assert results["status"] == "completed" and results["error"] is None
    assert results["task"] == task and results["metric"] == metric
    assert results["schema_version"] == 1
    assert len(results["epochs"]) == results["params"]["max_epochs"]
    assert [row["epoch"] for row in results["epochs"]] == list(range(1, results["params"]["max_epochs"] + 1))
    best = max(results["epochs"], key=lambda r: (r["dev_score"], r["epoch"]))  # a tie: the later epoch
    assert results["best_dev_score"] == best["dev_score"] and results["best_epoch"] == best["epoch"]
    for row in results["epochs"]:
        assert row["train_loss"] > 0 and row["seconds"] > 0 and 0 <= row["dev_score"] <= 1
        assert row["train_words"] > 0 and row["train_words_per_second"] > 0
    assert results["model_size_bytes"] > 100_000
    assert results["inference_words_per_second"] > 0
    assert set(results["versions"]) >= {"python", "spacy", "thinc", "experiments"}
    assert results["versions"]["spacy"].startswith("3.8.")
    assert results["final_evaluation"] is False and results["test_score"] is None
    assert results["started_at"] and results["finished_at"] and results["wall_seconds"] > 0


def test_textcat_baseline_learns(imdb_corpus, tiny_trial_params, tmp_path):
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 0, "max_epochs": 6}
    results = run_trial(IMDB, tmp_path / "trial", params)
    on_disk = load_results(tmp_path / "trial")
    assert on_disk == json.loads(json.dumps(results, default=str))
    check_common_fields(results, task="textcat", metric="accuracy")
    assert results["pretraining"]["objective"] is None and results["pretraining"]["epochs"] == 0
    assert results["params"]["width"] == 32 and results["params"]["seed"] == 0
    assert results["data"]["train_docs"] == 300 and results["data"]["dev_docs"] == 200
    # Above chance: better than always answering the dev set's majority label.
    assert results["best_dev_score"] > majority_share(imdb_corpus) + 0.05
    nlp = spacy.load(tmp_path / "trial" / "model-best")
    assert nlp.pipe_names == ["tok2vec", "textcat"]
    assert set(nlp("a wonderful, moving film").cats) == {"POSITIVE", "NEGATIVE"}


def test_textcat_with_pretraining_and_cache(imdb_corpus, tiny_trial_params, tmp_path):
    cache = tmp_path / "cache"
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "objective": "vectors",
              "pretrain_epochs": 1, "pretrain_max_epochs": 2, "max_epochs": 2}
    first = run_trial(IMDB, tmp_path / "a", params, cache=str(cache))
    pre = first["pretraining"]
    assert pre["objective"] == "vectors" and pre["epochs"] == 1 and pre["cached"] is False
    assert pre["words_seen"] > 50_000 and pre["seconds"] > 0 and pre["words_per_second"] > 0
    assert Path(pre["checkpoint"]).name == "model0.bin" and Path(pre["checkpoint"]).exists()
    check_common_fields(first, task="textcat", metric="accuracy")
    # Same architecture, two pretraining epochs: the same cached run serves it, from its second checkpoint.
    second = run_trial(IMDB, tmp_path / "b", {**params, "pretrain_epochs": 2, "learn_rate": 0.003},
                       cache=str(cache))
    assert second["pretraining"]["cached"] is True and second["pretraining"]["seconds"] == 0.0
    assert second["pretraining"]["cache_key"] == pre["cache_key"]
    assert Path(second["pretraining"]["checkpoint"]).name == "model1.bin"
    assert second["pretraining"]["words_seen"] == 2 * pre["words_seen"]
    # A different architecture is a different entry.
    third = run_trial(IMDB, tmp_path / "c", {**params, "width": 24, "max_epochs": 1}, cache=str(cache))
    assert third["pretraining"]["cached"] is False and third["pretraining"]["cache_key"] != pre["cache_key"]
    # Pretrained weights differ from a from-scratch init: fine-tuning started somewhere else.
    baseline = run_trial(IMDB, tmp_path / "d", {**params, "pretrain_epochs": 0})
    assert baseline["epochs"][0]["train_loss"] != first["epochs"][0]["train_loss"]
    # The weights the pipeline started from are the checkpoint's: with learn rate 0 (Adam and its weight
    # decay both scale by it) fine-tuning leaves the tok2vec as initialised, and it equals model0.bin to
    # float rounding (model-best holds the optimizer's running averages of the weights: 1e-7 apart).
    frozen = run_trial(IMDB, tmp_path / "e", {**params, "learn_rate": 0.0, "max_epochs": 1}, cache=str(cache))
    assert frozen["pretraining"]["cached"] is True
    assert Path(frozen["pretraining"]["checkpoint"]) == Path(pre["checkpoint"])
    tok2vec = spacy.load(tmp_path / "e" / "model-best").get_pipe("tok2vec").model
    loaded = tok2vec_params(tok2vec)
    assert len(loaded) >= 4 and sum(a.size for a in loaded.values()) > 10_000
    epoch_2 = Path(second["pretraining"]["checkpoint"])
    distance = {}
    for checkpoint in (Path(pre["checkpoint"]), epoch_2):
        saved = tok2vec_params(tok2vec.from_bytes(checkpoint.read_bytes()))
        assert saved.keys() == loaded.keys()
        distance[checkpoint.name] = max(float(numpy.abs(saved[k] - loaded[k]).max()) for k in saved)
    scratch = tok2vec_params(spacy.load(tmp_path / "d" / "model-best").get_pipe("tok2vec").model)
    distance["from scratch"] = max(float(numpy.abs(scratch[k] - loaded[k]).max()) for k in scratch)
    assert distance["model0.bin"] < 1e-5 and distance["model1.bin"] > 1e-3 and distance["from scratch"] > 1e-2, \
        distance


def tok2vec_params(model) -> dict:
    """Every parameter array of a thinc model, by (layer position, layer name, param name), copied."""
    return {(i, node.name, name): numpy.array(node.get_param(name), copy=True)
            for i, node in enumerate(model.walk()) for name in node.param_names if node.has_param(name)}


def test_ner_baseline_and_trigram_pretraining(wnut_corpus, tiny_trial_params, tmp_path):
    base = {**tiny_trial_params, "corpus_dir": str(wnut_corpus), "max_epochs": 3, "batch_schedule": "compounding",
            "batch_start": 4, "batch_stop": 32}
    baseline = run_trial(NER, tmp_path / "base", {**base, "pretrain_epochs": 0})
    check_common_fields(baseline, task="ner", metric="ents_f")
    assert baseline["best_dev_score"] > 0.02  # chance entity F is ~0
    assert "ents_per_type" in baseline["epochs"][-1]["dev_scores"]
    pretrained = run_trial(NER, tmp_path / "tri", {**base, "objective": "trigram", "pretrain_epochs": 1},
                           cache=str(tmp_path / "cache"))
    check_common_fields(pretrained, task="ner", metric="ents_f")
    assert pretrained["pretraining"]["objective"] == "trigram" and pretrained["pretraining"]["words_seen"] > 0
    assert pretrained["best_dev_score"] > 0.02
    nlp = spacy.load(tmp_path / "tri" / "model-best")
    assert set(nlp.get_pipe("ner").labels) == {"corporation", "creative-work", "group", "location", "person", "product"}


def test_test_split_only_with_final(imdb_corpus, tiny_trial_params, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(imdb_corpus, corpus)
    (corpus / "test.spacy").rename(corpus / "held-out.spacy")  # a trial without --final must not need it
    params = {**tiny_trial_params, "corpus_dir": str(corpus), "pretrain_epochs": 0, "max_epochs": 1}
    results = run_trial(IMDB, tmp_path / "dev-only", params)
    assert results["final_evaluation"] is False and results["test_score"] is None
    with pytest.raises(InputError, match="test.spacy"):
        run_trial(IMDB, tmp_path / "final-missing", params, final=True)
    assert not (tmp_path / "final-missing").exists()  # checked before anything is written or trained
    (corpus / "held-out.spacy").rename(corpus / "test.spacy")
    final = run_trial(IMDB, tmp_path / "final", params, final=True)
    assert final["final_evaluation"] is True and 0 <= final["test_score"] <= 1
    assert final["test_scores"]["accuracy"] == final["test_score"]


def test_parallel_evaluation_matches_spacy(imdb_corpus, tiny_trial_params, tmp_path):
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 0, "max_epochs": 2}
    run_trial(IMDB, tmp_path / "t", params)
    nlp = spacy.load(tmp_path / "t" / "model-best")
    forked = evaluate(nlp, load_examples(imdb_corpus / "dev.spacy", nlp), "textcat", batch_size=16, processes=2)
    inline = evaluate(nlp, load_examples(imdb_corpus / "dev.spacy", nlp), "textcat", batch_size=128, processes=1)
    reference = nlp.evaluate(load_examples(imdb_corpus / "dev.spacy", nlp))
    assert forked.score == inline.score
    assert forked.scores["cats_score"] == pytest.approx(reference["cats_score"])
    # Other batch sizes (16 here, 128 in nlp.evaluate) round the floats differently, which can swap near-tied
    # docs in the ranking AUC counts; the exact per-epoch equality is tests/test_scores_oracle.py's.
    assert forked.scores["cats_macro_auc"] == pytest.approx(reference["cats_macro_auc"], abs=1e-3)


def test_cli_trial_overrides_and_errors(imdb_corpus, tmp_path):
    cmd = [sys.executable, "-m", "experiments", "trial", str(IMDB), "--out", str(tmp_path / "cli"),
           "-P", f"corpus_dir={imdb_corpus}", "-P", "width=16", "-P", "depth=1", "-P", "pretrain_epochs=0",
           "-P", "max_epochs=1", "--training.dropout", "0.3", "--nlp.batch_size", "64",
           "--meta", "study=s1", "--meta", "trial_number=3"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "best dev accuracy" in done.stdout
    results = json.loads((tmp_path / "cli" / RESULTS_FILE).read_text())
    assert results["config_overrides"] == {"training.dropout": pytest.approx(0.3), "nlp.batch_size": 64}
    assert results["params"]["width"] == 16
    assert results["meta"] == {"study": "s1", "trial_number": "3"}
    assert results["corpus"]["dir"] == str(imdb_corpus)
    assert results["corpus"]["manifest"]["kind"] == "imdb" and results["corpus"]["manifest"]["n_train"] == 300
    bad = subprocess.run(cmd[:7] + ["-P", "widht=16"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode != 0 and "unknown param 'widht'" in bad.stderr and "Traceback" not in bad.stderr
    bad_type = subprocess.run(cmd[:7] + ["-P", "depth=deep"], capture_output=True, text=True, cwd=REPO)
    assert bad_type.returncode != 0 and "param 'depth': expected int" in bad_type.stderr
    missing = subprocess.run(cmd[:7] + ["-P", f"corpus_dir={tmp_path}/nowhere"], capture_output=True, text=True,
                             cwd=REPO)
    assert missing.returncode != 0 and "nowhere/train.spacy" in missing.stderr
    stray = subprocess.run(cmd[:7] + ["width=16"], capture_output=True, text=True, cwd=REPO)
    assert stray.returncode != 0 and "config overrides are --section.key value" in stray.stderr


def test_static_vectors_as_input_and_characters_objective(imdb_corpus, tiny_trial_params, tmp_path):
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "max_epochs": 1}
    without = run_trial(IMDB, tmp_path / "plain", {**params, "pretrain_epochs": 0, "static_vectors_input": False})
    with_vectors = run_trial(IMDB, tmp_path / "vec", {**params, "objective": "characters", "pretrain_epochs": 1,
                                                      "static_vectors_input": True}, cache=str(tmp_path / "cache"))
    assert with_vectors["pretraining"]["objective"] == "characters"
    assert with_vectors["pretraining"]["loss"] is None
    nlp = spacy.load(tmp_path / "vec" / "model-best")
    assert nlp.vocab.vectors.shape[1] == 16  # the corpus fixture's vectors ship inside the model
    assert spacy.load(tmp_path / "plain" / "model-best").vocab.vectors.shape[1] == 0
    assert with_vectors["model_size_bytes"] > without["model_size_bytes"]
    # The record names the table's content, not only its path: the pretraining cache key's hash, and how it
    # was made; a trial that reads no vectors records none.
    from experiments.storage.fileio import path_fingerprint

    table = imdb_corpus / "vectors"
    recorded = load_results(tmp_path / "vec")["vectors"]
    assert recorded == {"source": str(table), "fingerprint": "sha256:" + path_fingerprint(table),
                        "info": json.loads((table / "vectors-info.json").read_text())}
    assert recorded["info"]["dims"] == 16 and recorded["info"]["algorithm"] == "fasttext"
    assert without["vectors"] is None


def test_pretrain_seed_shares_one_pretraining_run_across_seeds(imdb_corpus, tiny_trial_params, tmp_path):
    cache = tmp_path / "cache"
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "objective": "vectors",
              "pretrain_epochs": 1, "pretrain_seed": 0, "max_epochs": 1}
    first = run_trial(IMDB, tmp_path / "s0", {**params, "seed": 0}, cache=str(cache))
    second = run_trial(IMDB, tmp_path / "s1", {**params, "seed": 1}, cache=str(cache))
    assert (first["pretraining"]["cached"], second["pretraining"]["cached"]) == (False, True)
    assert first["pretraining"]["cache_key"] == second["pretraining"]["cache_key"]
    assert first["pretraining"]["seed"] == second["pretraining"]["seed"] == 0
    assert (first["seed"], second["seed"]) == (0, 1)
    # Without it, each seed pretrains on its own (the default).
    third = run_trial(IMDB, tmp_path / "s2", {**params, "seed": 1, "pretrain_seed": -1}, cache=str(cache))
    assert third["pretraining"]["cached"] is False and third["pretraining"]["seed"] == 1


@Language.component("lmao_test_keep_docs")
def keep_docs(doc):
    """Last in the test pipeline: keeps every doc the pipeline annotated, in whichever process ran it."""
    PIPED_DOCS.append(doc)
    return doc


PIPED_DOCS: list = []


@pytest.mark.parametrize("processes", [1, 2])
def test_evaluation_keeps_no_tok2vec_output(processes, tmp_path, monkeypatch):
    """Evaluation needs only cats/entities: the tok2vec output per token (1 GB over the protocol's dev
    reviews) is dropped as each doc is predicted, wherever the pipeline ran. The pipeline's last component
    keeps the docs it saw; with forked workers they live in the workers, so each worker reports on its
    own docs (how many, their tensors' sizes) after its chunk, through a file (the PSS drop is measured
    with ``python benchmarks/pss.py``, benchmarks/README.md "Memory")."""
    import os

    from spacy.training import Example

    from experiments.training import finetune

    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec")  # a shared tok2vec, as in the experiments: it writes doc.tensor
    listener = {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "*"}
    nlp.add_pipe("textcat", config={"model": {
        "@architectures": "spacy.TextCatReduce.v1", "tok2vec": listener, "exclusive_classes": True,
        "use_reduce_first": False, "use_reduce_last": False, "use_reduce_max": False, "use_reduce_mean": True}})
    nlp.add_pipe("lmao_test_keep_docs")
    texts = ["a good film", "a bad film", "good good", "bad bad bad"] * 8
    examples = [Example.from_dict(nlp.make_doc(t), {"cats": {"POS": float("good" in t), "NEG": float("bad" in t)}})
                for t in texts]
    nlp.initialize(lambda: examples)
    report = tmp_path / "workers.jsonl"
    chunk = finetune._predict_chunk

    def reporting_chunk(bounds):
        """Runs in the worker: the worker's own chunk, then what its pipeline left on the docs."""
        before = len(PIPED_DOCS)
        predictions = chunk(bounds)
        docs = PIPED_DOCS[before:]
        with report.open("a") as f:
            f.write(json.dumps({"pid": os.getpid(), "docs": len(docs), "cats": sum(bool(d.cats) for d in docs),
                                "tensor_floats": sum(d.tensor.size for d in docs)}) + "\n")
        return predictions

    # pool.map pickles the function by name: the wrapper must be found as experiments.training.finetune._predict_chunk
    reporting_chunk.__module__, reporting_chunk.__qualname__ = chunk.__module__, chunk.__qualname__
    monkeypatch.setattr(finetune, "_predict_chunk", reporting_chunk)
    PIPED_DOCS.clear()
    try:
        result = finetune.evaluate(nlp, examples, "textcat", batch_size=4, processes=processes)
        in_parent = list(PIPED_DOCS)
        assert nlp("a good film").tensor.shape == (3, 96)  # the pipeline does write it
    finally:
        PIPED_DOCS.clear()
    assert 0.0 <= result.score <= 1.0
    if processes == 1:
        assert not report.exists()
        assert len(in_parent) == len(examples) and all(doc.cats for doc in in_parent)
        assert [doc.tensor.size for doc in in_parent] == [0] * len(examples)
    else:  # the parent never ran the pipeline: the workers did, on all the docs, and kept no tensor
        assert in_parent == []
        chunks = [json.loads(line) for line in report.read_text().splitlines()]
        assert len(chunks) == processes and os.getpid() not in {c["pid"] for c in chunks}
        assert sum(c["docs"] for c in chunks) == sum(c["cats"] for c in chunks) == len(examples)
        assert [c["tensor_floats"] for c in chunks] == [0] * processes
