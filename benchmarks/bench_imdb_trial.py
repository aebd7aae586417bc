"""IMDB-1k at the protocol's size: our trial pipeline beside spaCy's own CLI, measured in one run.

Not a test: it takes tens of minutes on 2 cores. It prints dev accuracy and words/second for
pretraining, training and evaluation, for (a) `lmao trial` (baseline and 1-epoch pretraining) and
(b) `spacy pretrain` / `spacy train` on the same config.cfg and the same data, then the ratios.

    .venv/bin/python benchmarks/bench_imdb_trial.py [--pretrain-docs 5000] [--epochs 3] [--workdir DIR]
        [--settings baseline,pretrain-1]

``--settings baseline`` leaves out the pretraining comparison (half the time). The output names the CPU
and numpy's BLAS (benchmarks/machine.py): the trial's ratio follows numpy's gemm gain on the machine.

The pretraining corpus is a subset (``--pretrain-docs`` reviews of the 50k labelled ones) so that one
epoch fits the machine; train/dev are the full protocol split (1000 / 10000).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/machine.py, benchmarks/pss.py
from machine import describe as describe_machine, lines as machine_lines  # noqa: E402
EXPERIMENT = REPO / "lmao-imdb-1k"
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "imdb" / "imdb.jsonl.gz"


def run(cmd, **kwargs) -> float:
    """Run a command, echoing it; return its wall time in seconds."""
    print("$", " ".join(str(c) for c in cmd), flush=True)
    start = time.perf_counter()
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)
    return time.perf_counter() - start


PEAKS = {}  # command label -> peak PSS summed over its processes (benchmarks/pss.py)


def run_pss(label, cmd) -> float:
    """``run``, sampling the command's process tree for its peak PSS (parent + forked eval workers)."""
    from pss import run_measured  # benchmarks/pss.py, beside this script

    print("$", " ".join(str(c) for c in cmd), flush=True)
    code, wall, peak = run_measured(cmd)
    if code:
        raise subprocess.CalledProcessError(code, cmd)
    PEAKS[label] = peak
    return wall


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def lmao(*args) -> list:
    return [sys.executable, "-m", "experiments", *args]


def spacy_cmd(*args) -> list:
    return [sys.executable, "-m", "spacy", *args]


def trial_config(corpus: Path, epochs: int):
    """The config `lmao trial` builds for the benchmark's params (pretraining sections included)."""
    from experiments.training.config import build_config, load_experiment
    from experiments.training.params import resolve

    experiment = load_experiment(EXPERIMENT)
    params = resolve(experiment["params"], {"corpus_dir": str(corpus), "max_epochs": epochs, "patience": 0,
                                            "pretrain_max_epochs": 1}, defaults_source=EXPERIMENT / "defaults.yml")
    return build_config(EXPERIMENT, params, corpus_dir=corpus, vectors=corpus / "vectors", pretraining=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(DEFAULT_SOURCE))
    parser.add_argument("--pretrain-docs", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None, help="write the numbers here too")
    parser.add_argument("--settings", default="baseline,pretrain-1",
                        help="comma-separated: baseline (no pretraining), pretrain-1 (1 epoch, with spacy pretrain)")
    args = parser.parse_args()
    settings = [s for s in ("baseline", "pretrain-1") if s in args.settings.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-imdb-"))
    corpus = work / "corpus"
    start_load = load()
    machine = describe_machine()
    print(f"workdir: {work}\nstart: {start_load}\n" + "\n".join(machine_lines(machine)), flush=True)

    import spacy

    from experiments.data.docbins import read_docs

    if not (corpus / "manifest.json").exists():
        run(lmao("data", "imdb", args.source, corpus, "--n-train", 1000, "--n-dev", 10000, "--n-test", 100,
                 "--max-pretrain-docs", args.pretrain_docs))
    if not (corpus / "vectors").exists():
        run(lmao("vectors", "train", corpus / "pretrain", corpus / "vectors", "--dims", 100, "--epochs", 5))
    vocab = spacy.blank("en").vocab
    train_words = sum(len(d) for d in read_docs(corpus / "train.spacy", vocab))
    dev_words = sum(len(d) for d in read_docs(corpus / "dev.spacy", vocab))
    pretrain_texts = [d.text for d in read_docs(corpus / "pretrain", vocab)]
    pretrain_words = sum(len(d) for d in read_docs(corpus / "pretrain", vocab))
    common = ["-P", f"corpus_dir={corpus}", "-P", f"max_epochs={args.epochs}", "-P", "patience=0",
              "-P", "pretrain_max_epochs=1"]

    # ---- ours -------------------------------------------------------------------------------------
    ours = {}
    for name, epochs in (("baseline", 0), ("pretrain-1", 1)):
        if name not in settings:
            continue
        out = work / "runs" / name
        wall = run_pss(f"lmao {name}", lmao("trial", EXPERIMENT, "--out", out, *common, "-P",
                                            f"pretrain_epochs={epochs}", "--cache", work / "cache"))
        ours[name] = json.loads((out / "results.json").read_text()) | {"wall": wall}

    # ---- spaCy's CLI on the same config and data ---------------------------------------------------
    raw = work / "pretrain-raw.jsonl"
    raw.write_text("".join(json.dumps({"text": t}) + "\n" for t in pretrain_texts), encoding="utf-8")
    # The config our trials train with (defaults.yml and the same -P params resolved into config.cfg: static
    # vectors as input, parameter averaging, ...), so both sides do the same work.
    config = trial_config(corpus, args.epochs)
    config["corpora"]["pretrain"] = {"@readers": "spacy.JsonlCorpus.v1", "path": str(raw), "min_length": 0,
                                     "max_length": 0, "limit": 0}
    config["pretraining"]["max_epochs"] = 1
    base_cfg, spacy_cfg = work / "spacy-base.cfg", work / "spacy-config.cfg"
    config.to_disk(base_cfg)
    # spaCy's pretrain wants a filled config, as its docs say: `spacy init fill-config --pretraining`.
    run(spacy_cmd("init", "fill-config", base_cfg, spacy_cfg, "--pretraining"))
    pre_out = work / "spacy-pretrain"
    pre_wall = None if "pretrain-1" not in settings else run(spacy_cmd("pretrain", spacy_cfg, pre_out, "--paths.vectors", corpus / "vectors",
                             "--paths.train", corpus / "train.spacy", "--paths.dev", corpus / "dev.spacy"))
    steps_per_epoch = math.ceil(1000 / config["training"]["batcher"]["size"])
    spacy_train = {}
    for name, init in (("baseline", None), ("pretrain-1", pre_out / "model0.bin")):
        if name not in settings:
            continue
        out = work / f"spacy-train-{name}"
        extra = ["--paths.init_tok2vec", init] if init else []
        wall = run_pss(f"spacy train {name}", spacy_cmd("train", spacy_cfg, "--output", out, "--paths.train", corpus / "train.spacy",
                             "--paths.dev", corpus / "dev.spacy", "--training.max_epochs", args.epochs + 1,
                             "--training.max_steps", args.epochs * steps_per_epoch + 1,
                             "--training.eval_frequency", steps_per_epoch, "--training.patience", 0, *extra))
        best = spacy.load(out / "model-best")
        from spacy.training import Corpus

        from experiments.training.finetune import evaluate, load_examples

        accuracy = evaluate(best, load_examples(corpus / "dev.spacy", best), "textcat", batch_size=128,
                            processes=2).score  # same score as nlp.evaluate (tests/test_trial.py)
        # spaCy's evaluation speed, as its train loop evaluates (Corpus re-tokenizes, nlp.evaluate), on a
        # 1000-review sample: meta.json does not record it.
        sample_start = time.perf_counter()
        sample = list(Corpus(str(corpus / "dev.spacy"), limit=1000)(best))
        best.evaluate(sample)
        eval_speed = sum(len(eg.reference) for eg in sample) / (time.perf_counter() - sample_start)
        # spaCy's CLI does not report training time apart from evaluation: only wall time compares.
        spacy_train[name] = {"wall": wall, "accuracy": accuracy, "eval_wps": eval_speed}

    # ---- report -----------------------------------------------------------------------------------
    pre = ours["pretrain-1"]["pretraining"] if "pretrain-1" in ours else {"words_per_second": None}
    spacy_pre_wps = pretrain_words / pre_wall if pre_wall else None
    print()
    print(f"data: train {train_words} words, dev {dev_words} words, pretraining {pretrain_words} words "
          f"({args.pretrain_docs} reviews), {args.epochs} fine-tuning epochs, dev evaluated once per epoch")
    print(f"{'':28}{'lmao':>12}{'spaCy CLI':>12}{'ratio':>8}")

    def line(label, a, b, fmt="{:12.0f}"):
        ratio = f"{a / b:8.2f}" if a and b else f"{'-':>8}"
        print(f"{label:28}" + fmt.format(a) + fmt.format(b) + ratio)

    if pre_wall:
        line("pretraining words/s", pre["words_per_second"], spacy_pre_wps)
    for name in settings:
        r, s = ours[name], spacy_train[name]
        train_wps = sum(e["train_words"] for e in r["epochs"]) / sum(e["train_seconds"] for e in r["epochs"])
        line(f"{name}: dev accuracy %", 100 * r["best_dev_score"], 100 * s["accuracy"], "{:12.2f}")
        print(f"{name + ': training words/s':28}{train_wps:12.0f}{'n/a':>12}{'-':>8}")
        line(f"{name}: eval words/s", r["inference_words_per_second"], s["eval_wps"])
        line(f"{name}: wall seconds", r["wall"], s["wall"], "{:12.1f}")
        epochs_seconds = sum(e["seconds"] for e in r["epochs"])
        print(f"{name + ': outside epochs, s':28}{r['wall'] - epochs_seconds:12.1f}{'':12}{'':8}  (set-up, saving; "
              f"epochs {epochs_seconds:.1f} s incl. scoring)")
    for label, peak in PEAKS.items():
        print(f"{label + ': memory':28}{peak.describe()}")
    end_load = load()
    print(f"load: start {start_load}; end {end_load}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "pretrain_wps": [pre["words_per_second"], spacy_pre_wps],
            "machine": machine,
            "trials": {name: {"lmao_wall": ours[name]["wall"], "spacy_wall": spacy_train[name]["wall"],
                              "lmao_epochs_seconds": sum(e["seconds"] for e in ours[name]["epochs"]),
                              "lmao_accuracy": ours[name]["best_dev_score"],
                              "spacy_accuracy": spacy_train[name]["accuracy"]} for name in ours},
            "peak_pss_bytes": {label: peak.pss_bytes for label, peak in PEAKS.items()},
            "peak_rss_sum_bytes": {label: peak.rss_bytes for label, peak in PEAKS.items()},
            "processes_at_peak": {label: peak.processes for label, peak in PEAKS.items()},
            "load_start": start_load, "load_end": end_load}, indent=1))
    print("\n(wall seconds: lmao's include its pretraining for pretrain-1; spaCy's train wall excludes the "
          "separate `spacy pretrain` run and includes its extra step-0 evaluation; spaCy's eval words/s is "
          "measured on a 1000-review sample as its train loop evaluates.)")


if __name__ == "__main__":
    main()
