"""The GPU path, where there is a GPU: CuPy importable and a CUDA device visible. Elsewhere every test
here is skipped, and the skip says which of the two is missing (``pytest -rs`` shows it).

What runs on a GPU: a trial trains and evaluates on it and its saved model scores the same on the CPU;
the faster set-up builds the same pipeline as spaCy's ``init_nlp`` on the GPU; and a trial with a
``gs://`` cache leaves CuPy's compiled kernels in the bucket, where the next pod finds them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def gpu_missing() -> str:
    """Why there is no usable GPU here, or '' when there is one."""
    try:
        import cupy
    except Exception as err:  # not installed, or its CUDA libraries missing
        return f"CuPy not importable ({type(err).__name__}: {err})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # no driver or no device
        return f"no CUDA device ({type(err).__name__}: {err})"
    return "" if count > 0 else "no CUDA device visible"


MISSING = gpu_missing()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(MISSING), reason=f"no GPU: {MISSING}")]


def test_trial_on_the_gpu_scores_as_its_model_on_the_cpu(imdb_corpus, tiny_trial_params, tmp_path):
    from experiments.training.finetune import evaluate, load_examples

    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 0, "max_epochs": 3}
    out = tmp_path / "trial"
    proc = subprocess.run([sys.executable, "-m", "experiments", "trial", str(REPO / "lmao-imdb-1k"), "--out", str(out),
                           "--gpu", "0", *[a for k, v in params.items() for a in ("-P", f"{k}={v}")]],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["device"] == "gpu:0" and results["status"] == "completed"
    assert all(row["eval_seconds"] > 0 and row["train_seconds"] > 0 for row in results["epochs"])
    import spacy

    spacy.require_cpu()
    nlp = spacy.load(out / "model-best")
    examples = load_examples(imdb_corpus / "dev.spacy", nlp)
    on_cpu = evaluate(nlp, examples, "textcat", batch_size=64, processes=1).score
    # GPU and CPU arithmetic round differently; a review whose two labels score within rounding may flip
    assert on_cpu == pytest.approx(results["best_dev_score"], abs=2 / len(examples))


def test_init_pipeline_is_init_nlp_on_the_gpu(imdb_corpus, tiny_trial_params):
    import spacy
    from spacy.training.initialize import init_nlp

    from experiments.training import finetune
    from experiments.training.config import build_config, load_experiment
    from experiments.training.params import resolve

    experiment = REPO / "lmao-imdb-1k"
    params = resolve(load_experiment(experiment)["params"], {**tiny_trial_params, "corpus_dir": str(imdb_corpus)},
                     defaults_source=experiment / "defaults.yml")
    config = build_config(experiment, params, corpus_dir=imdb_corpus, vectors=imdb_corpus / "vectors")
    spacy.require_gpu(0)
    try:
        theirs, ours = init_nlp(config, use_gpu=0), finetune.init_pipeline(config, use_gpu=0)
        assert ours.config.to_str() == theirs.config.to_str()
        assert ours.to_bytes(exclude=["vocab"]) == theirs.to_bytes(exclude=["vocab"])
    finally:
        spacy.require_cpu()


def test_kernels_reach_the_bucket_and_the_next_pod(gcs_emulator, imdb_corpus, tiny_trial_params, tmp_path):
    bucket = gcs_emulator.new_bucket()
    cache = f"gs://{bucket.name}/cache"
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 0, "max_epochs": 1}
    counts = []
    for pod in ("first", "second"):  # each "pod": its own process and an empty CuPy cache folder
        kernels = tmp_path / f"kernels-{pod}"
        env = {**os.environ, "CUPY_CACHE_DIR": str(kernels), "STORAGE_EMULATOR_HOST": gcs_emulator.host}
        proc = subprocess.run([sys.executable, "-m", "experiments", "trial", str(REPO / "lmao-imdb-1k"), "--out",
                               str(tmp_path / pod), "--gpu", "0", "--cache", cache,
                               *[a for k, v in params.items() for a in ("-P", f"{k}={v}")]],
                              capture_output=True, text=True, cwd=REPO, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        counts.append(len([p for p in kernels.iterdir() if not p.name.startswith("tmp")]))
    stored = [b.name for b in bucket.list_blobs(prefix="cache/cupy-kernels/")]
    assert stored and counts[0] == len(stored)
    assert counts[1] >= counts[0]  # the second pod started from the first one's kernels
