"""A trial's set-up before epoch 1 at the protocol's size, now beside the way it was done before.

Each side runs in a fresh process (a fresh vocab: creating the lexemes is part of the cost), the two
alternating, ``--repeats`` times each. Phases, with wall and CPU seconds:

- ``init``: the pipeline built and initialised from the trial's config (static vectors loaded, labels
  and layer shapes from the training corpus). Before: spaCy's ``init_nlp``, whose ``spacy.Corpus``
  re-tokenizes and aligns every training doc on each of ``initialize``'s 4 passes. Now:
  ``experiments.training.finetune.init_pipeline`` (the pre-tokenized examples, read once).
- ``train`` / ``dev``: the gold examples with their unannotated copies. Before: ``DocBin.get_docs`` and
  a copy built from a loop over each gold doc's tokens. Now: ``experiments.training.finetune.load_examples``.

Both sides build the same pipeline and examples (tests/test_setup_speed.py). The corpus is the one
``bench_imdb_trial.py`` builds (1000 train / 10000 dev reviews, 100-d vectors); pass ``--corpus`` to
reuse one, else it is built under ``--workdir``.

    .venv/bin/python benchmarks/bench_setup.py [--corpus DIR | --workdir DIR] [--repeats 2] [--width 96]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "lmao-imdb-1k"
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "imdb" / "imdb.jsonl.gz"
PHASES = ("init", "train", "dev")


def token_loop_examples(path: Path, nlp) -> list:
    """How the examples were built before: spaCy's get_docs, then a copy from the gold doc's tokens."""
    from spacy.tokens import Doc, DocBin
    from spacy.training import Example

    examples = []
    for reference in DocBin().from_disk(path).get_docs(nlp.vocab):
        predicted = Doc(nlp.vocab, words=[t.text for t in reference],
                        spaces=[bool(t.whitespace_) for t in reference])
        predicted.from_array(["NORM"], reference.to_array(["NORM"]))
        examples.append(Example(predicted, reference))
    return examples


def one_side(side: str, corpus: Path, width: int) -> dict:
    """In this (fresh) process: time each phase of one side's set-up."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    from spacy.training.initialize import init_nlp

    from experiments.training import finetune
    from experiments.training.config import build_config, load_experiment
    from experiments.training.params import resolve
    from experiments.training.trial import select_device

    params = resolve(load_experiment(EXPERIMENT)["params"],
                     {"corpus_dir": str(corpus), "pretrain_epochs": 0, "max_epochs": 1, "width": width},
                     defaults_source=EXPERIMENT / "defaults.yml")
    select_device("-1", params["cpu_gemm"])
    config = build_config(EXPERIMENT, params, corpus_dir=corpus, vectors=corpus / "vectors")
    times = {"imports+config": (time.perf_counter() - start_wall, time.process_time() - start_cpu)}
    init = init_nlp if side == "before" else finetune.init_pipeline
    load = token_loop_examples if side == "before" else finetune.load_examples
    clock = time.perf_counter(), time.process_time()

    def mark(name):
        nonlocal clock
        now = time.perf_counter(), time.process_time()
        times[name] = (now[0] - clock[0], now[1] - clock[1])
        clock = now

    nlp = init(config)
    mark("init")
    train = load(corpus / "train.spacy", nlp)
    mark("train")
    dev = load(corpus / "dev.spacy", nlp)
    mark("dev")
    return {"times": times, "docs": [len(train), len(dev)]}


def build_corpus(work: Path, source: str) -> Path:
    corpus = work / "corpus"
    lmao = [sys.executable, "-m", "experiments"]
    if not (corpus / "manifest.json").exists():
        subprocess.run([*lmao, "data", "imdb", source, corpus, "--n-train", "1000", "--n-dev", "10000",
                        "--n-test", "100", "--max-pretrain-docs", "5000"], check=True)
    if not (corpus / "vectors").exists():
        subprocess.run([*lmao, "vectors", "train", corpus / "pretrain", corpus / "vectors", "--dims", "100",
                        "--epochs", "5"], check=True)
    return corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=None, help="a prepared IMDB-1k corpus with vectors/")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--source", default=str(DEFAULT_SOURCE))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--json", default=None, help="write the numbers here too")
    parser.add_argument("--one", choices=["before", "now"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_side(args.one, Path(args.corpus), args.width)))
        return
    corpus = Path(args.corpus) if args.corpus else build_corpus(
        Path(args.workdir or tempfile.mkdtemp(prefix="bench-setup-")), args.source)
    load_start = "load average %.2f %.2f %.2f" % os.getloadavg()
    runs = {"before": [], "now": []}
    for _ in range(args.repeats):
        for side in ("before", "now"):
            out = subprocess.run([sys.executable, __file__, "--one", side, "--corpus", str(corpus),
                                  "--width", str(args.width)], check=True, capture_output=True, text=True)
            runs[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    load_end = "load average %.2f %.2f %.2f" % os.getloadavg()
    print(f"set-up before epoch 1, {runs['now'][0]['docs'][0]} train / {runs['now'][0]['docs'][1]} dev docs, "
          f"width {args.width}, median of {args.repeats} fresh processes per side (seconds, wall / CPU)")
    print(f"{'phase':16}{'before':>16}{'now':>16}{'ratio (wall)':>14}")
    summary = {}
    for phase in ("imports+config", *PHASES, "total"):
        row = {}
        for side, side_runs in runs.items():
            if phase == "total":
                walls = [sum(r["times"][p][0] for p in r["times"]) for r in side_runs]
                cpus = [sum(r["times"][p][1] for p in r["times"]) for r in side_runs]
            else:
                walls = [r["times"][phase][0] for r in side_runs]
                cpus = [r["times"][phase][1] for r in side_runs]
            row[side] = (statistics.median(walls), statistics.median(cpus))
        summary[phase] = row
        ratio = row["before"][0] / row["now"][0] if row["now"][0] else float("nan")
        print(f"{phase:16}{row['before'][0]:8.2f} /{row['before'][1]:6.2f}{row['now'][0]:8.2f} /{row['now'][1]:6.2f}"
              f"{ratio:13.2f}x")
    print(f"load: start {load_start}; end {load_end}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "runs": runs, "load_start": load_start,
                                               "load_end": load_end}, indent=1))


if __name__ == "__main__":
    main()
