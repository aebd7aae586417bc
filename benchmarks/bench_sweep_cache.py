"""What the pretraining cache buys a sweep: the same 8-trial sweep with the shared cache and without it.

Not a test (about 10 minutes on 2 cores). The 8 trials are fixed (enqueued, so both runs do exactly the
same work): 2 architectures (width 64 and 96) x pretraining epochs 1 and 2 x 2 learn rates. With the
cache, each architecture pretrains once and its epoch checkpoints serve every trial; without it
(``lmao sweep --cache none``) every trial pretrains for itself. Prints both wall times and the ratio.

    .venv/bin/python benchmarks/bench_sweep_cache.py [--corpus corpus/imdb-small] [--workdir DIR]

The corpus is any prepared IMDB corpus folder (``make data-imdb-small`` makes the default one).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]
FIXED = {"depth": 2, "embed_rows": 2000, "pretrain_max_epochs": 2, "pretrain_max_words": 150000,
         "max_epochs": 2, "patience": 0, "objective": "vectors"}
SWEEP_YML = """metric: accuracy
n_trials: 8
pruner: none
fixed: {fixed}
params:
  width: {{choice: [64, 96]}}
  pretrain_epochs: {{int: [1, 2]}}
  learn_rate: {{loguniform: [1.0e-4, 1.0e-2]}}
"""


def trials() -> list:
    grid = itertools.product((64, 96), (1, 2), (0.001, 0.003))
    return [{"width": w, "pretrain_epochs": p, "learn_rate": lr} for w, p, lr in grid]


def run_sweep(experiment: Path, runs: Path, study: str, cache: str) -> float:
    storage = f"sqlite:///{runs / 'optuna.sqlite3'}"
    runs.mkdir(parents=True, exist_ok=True)
    created = optuna.create_study(study_name=study, storage=storage, direction="maximize")
    for params in trials():
        created.enqueue_trial(params)
    cmd = [sys.executable, "-m", "experiments", "sweep", str(experiment), "--search", "random", "--study", study,
           "--runs", str(runs), "--cache", cache, "--", "--gpu", "-1", "--eval-processes", "1"]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    env = {**os.environ, "LMAO_TRACKING": "0"}
    env.pop("POLYAXON_HOST", None)
    subprocess.run(cmd, check=True, cwd=REPO, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(REPO / "corpus" / "imdb-small"))
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    corpus = Path(args.corpus).resolve()
    if not (corpus / "train.spacy").exists():
        sys.exit(f"{corpus}: no prepared corpus (run `make data-imdb-small` or pass --corpus)")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-sweep-cache-"))
    experiment = work / "lmao-imdb-1k"
    experiment.mkdir(parents=True, exist_ok=True)
    for name in ("config.cfg", "defaults.yml"):
        shutil.copy(REPO / "lmao-imdb-1k" / name, experiment / name)
    fixed = json.dumps({**FIXED, "corpus_dir": str(corpus)})
    (experiment / "sweep.yml").write_text(SWEEP_YML.format(fixed=fixed))

    cached_runs, uncached_runs = work / "runs-cache", work / "runs-nocache"
    cached = run_sweep(experiment, cached_runs, "with-cache", str(cached_runs / "cache"))
    uncached = run_sweep(experiment, uncached_runs, "no-cache", "none")
    hits = sum(json.loads(p.read_text())["pretraining"]["cached"]
               for p in (cached_runs / "with-cache").glob("trial-*/results.json"))
    print(f"\n8 trials, 2 architectures, corpus {corpus} (one run each, {work}):")
    print(f"  with the shared pretraining cache: {cached:7.1f} s  ({hits}/8 trials reused a pretraining run)")
    print(f"  cache disabled (--cache none):     {uncached:7.1f} s")
    print(f"  ratio no-cache / cache:            {uncached / cached:7.2f}x")


if __name__ == "__main__":
    main()
