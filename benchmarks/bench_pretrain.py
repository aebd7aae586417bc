"""Pretraining speed: `spacy pretrain` beside our loop with 1 and N data-parallel workers, in one run.

Not a test. Same config (the trial's pretraining config at the protocol's defaults), same text (``--docs``
reviews of the 50k labelled ones), same objective and seed. Prints, per run: words/s of the training
loop and of the whole command, CPU seconds (all processes), words per CPU-second, and the cumulative
loss every ``--every`` words, so the curves can be compared; then the ratios, with the machine's load
at start and end (a loaded machine lends fewer cores: read the CPU columns too).

    .venv/bin/python benchmarks/bench_pretrain.py [--docs 2000] [--workers 1,2] [--epochs 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "lmao-imdb-1k"
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "imdb" / "imdb.jsonl.gz"


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: List[str], **kwargs) -> Tuple[float, float, subprocess.CompletedProcess]:
    """Run a command (echoed); return (wall seconds, CPU seconds of it and its children, result)."""
    print("$", " ".join(str(c) for c in cmd), flush=True)
    cpu0, start = children_cpu(), time.perf_counter()
    done = subprocess.run([str(c) for c in cmd], check=True, **kwargs)
    return time.perf_counter() - start, children_cpu() - cpu0, done


def pretraining_config(corpus: Path, epochs: int, overrides: Dict[str, object]):
    from experiments.training.config import build_config, load_experiment
    from experiments.training.params import resolve

    experiment = load_experiment(EXPERIMENT)
    params = resolve(experiment["params"], {"pretrain_max_epochs": epochs, **overrides},
                     defaults_source=EXPERIMENT / "defaults.yml")
    return build_config(EXPERIMENT, params, corpus_dir=corpus, vectors=corpus / "vectors", pretraining=True)


def child_ours(corpus: Path, out: Path, workers: int, epochs: int, every: int, objective: str,
               gemm: str = "blis", seed: int = 0) -> None:
    from experiments.training.pretrain import pretrain
    from experiments.training.trial import use_cpu_ops

    use_cpu_ops(gemm)  # as `lmao trial -P cpu_gemm=...` does before it builds any model
    config = pretraining_config(corpus, epochs, {"objective": objective, "seed": seed})
    pretrain(config, out, save_every_words=every, silent=True, n_workers=workers)


def prepare(source: str, work: Path, docs: int) -> Path:
    corpus = work / "corpus"
    lmao = [sys.executable, "-m", "experiments"]
    if not (corpus / "manifest.json").exists():
        timed(lmao + ["data", "imdb", source, str(corpus), "--n-train", "100", "--n-dev", "100", "--n-test", "100",
                      "--max-pretrain-docs", str(docs)])
    if not (corpus / "vectors").exists():
        timed(lmao + ["vectors", "train", str(corpus / "pretrain"), str(corpus / "vectors"), "--dims", "100",
                      "--epochs", "2"])
    return corpus


def ours_curve(out: Path) -> List[Tuple[int, float]]:
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [(r["words"], r["epoch_loss"]) for r in rows if r["epoch"] == 0]


def spacy_rows(stdout: str) -> List[Tuple[int, int, float, int]]:
    """spaCy pretrain's progress table: (epoch, words, total loss, words/s) every 10k words."""
    rows = []
    for line in stdout.splitlines():
        match = re.match(r"^\s*(\d+)\s+(\d+)\s+([\d.e+-]+)\s+([\d.e+-]+)\s+(\d+)\s*$", line)
        if match:
            rows.append((int(match[1]), int(match[2]), float(match[3]), int(match[5])))
    return rows


def at(curve: List[Tuple[int, float]], words: int) -> Optional[float]:
    """Linear interpolation of a cumulative-loss curve at ``words``."""
    for (w0, l0), (w1, l1) in zip([(0, 0.0)] + curve, curve):
        if w0 <= words <= w1 and w1 > w0:
            return l0 + (l1 - l0) * (words - w0) / (w1 - w0)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(DEFAULT_SOURCE))
    parser.add_argument("--docs", type=int, default=2000, help="pretraining reviews")
    parser.add_argument("--workers", default="1,2",
                        help="our runs: worker counts, each optionally WORKERS:GEMM[:SEED] (GEMM blis, thinc's "
                             "default, or numpy; SEED other than 0 shows the loss curve's seed-to-seed spread; "
                             "e.g. 1,2,1:numpy,2:numpy,1:numpy:1)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--objective", default="vectors")
    parser.add_argument("--every", type=int, default=100_000, help="loss-curve point every N words")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None, help="write the numbers here too")
    parser.add_argument("--child-ours", nargs=5, metavar=("CORPUS", "OUT", "WORKERS", "GEMM", "SEED"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_ours:
        corpus, out, workers, gemm, seed = args.child_ours
        child_ours(Path(corpus), Path(out), int(workers), args.epochs, args.every, args.objective, gemm, int(seed))
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-pretrain-"))
    start = load()
    print(f"workdir: {work}\nstart: {start}", flush=True)
    corpus = prepare(args.source, work, args.docs)
    from spacy.tokens import DocBin  # noqa: F401  (spaCy import cost outside the timings)

    from experiments.data.docbins import read_docs
    import spacy

    vocab = spacy.blank("en").vocab
    texts = [doc.text for doc in read_docs(corpus / "pretrain", vocab)]
    raw = work / "pretrain-raw.jsonl"
    raw.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    config = pretraining_config(corpus, args.epochs, {"objective": args.objective})
    config["corpora"]["pretrain"] = {"@readers": "spacy.JsonlCorpus.v1", "path": str(raw), "min_length": 0,
                                     "max_length": 0, "limit": 0}
    base_cfg, spacy_cfg = work / "spacy-base.cfg", work / "spacy-pretrain.cfg"
    config.to_disk(base_cfg)
    subprocess.run([sys.executable, "-m", "spacy", "init", "fill-config", str(base_cfg), str(spacy_cfg),
                    "--pretraining"], check=True, capture_output=True)

    results = {}
    # spaCy's CLI: its own reader (re-tokenizes the raw text), update step and progress table.
    out = work / "spacy-out"
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, done = timed([sys.executable, "-m", "spacy", "pretrain", str(spacy_cfg), str(out)],
                            capture_output=True, text=True)
    rows = spacy_rows(done.stdout)
    words = rows[-1][1] if rows else 0
    loop_seconds = sum(10_000 / r[3] for r in rows if r[3]) if rows else None  # rows come every ~10k words
    results["spacy pretrain"] = {"words": words, "wall": wall, "cpu": cpu,
                                 "loop_wps": words / loop_seconds if loop_seconds else None,
                                 "curve": [(r[1], r[2]) for r in rows if r[0] == 0]}
    for spec in args.workers.split(","):
        workers_text, gemm, seed_text = (spec.split(":") + ["", ""])[:3]
        workers, gemm, seed = int(workers_text), gemm or "blis", int(seed_text or 0)
        out = work / f"ours-w{workers}-{gemm}" if not seed else work / f"ours-w{workers}-{gemm}-seed{seed}"
        shutil.rmtree(out, ignore_errors=True)  # a rerun in the same --workdir must not append to the old log
        wall, cpu, _ = timed([sys.executable, __file__, "--child-ours", str(corpus), str(out), str(workers), gemm,
                              str(seed), "--epochs", str(args.epochs), "--every", str(args.every),
                              "--objective", args.objective])
        info = json.loads((out / "pretraining.json").read_text())
        label = (f"lmao {workers} worker{'s' if workers > 1 else ''}" + (", numpy gemm" if gemm == "numpy" else "")
                 + (f", seed {seed}" if seed else ""))
        results[label] = {
            "words": info["words"], "wall": wall, "cpu": cpu, "loop_wps": info["words_per_second"],
            "curve": ours_curve(out)}
    end = load()

    print(f"\npretraining: {args.objective} objective, {len(texts)} reviews, {args.epochs} epoch(s), "
          f"protocol defaults (width 96, depth 4, batch 3000 words)")
    base = results["spacy pretrain"]
    print(f"{'':30}{'loop w/s':>10}{'cmd w/s':>10}{'CPU s':>8}{'w/CPU-s':>9}{'loop ratio':>11}{'cmd ratio':>10}")
    for name, r in results.items():
        cmd_wps = r["words"] / r["wall"]
        print(f"{name:30}{r['loop_wps'] or 0:10.0f}{cmd_wps:10.0f}{r['cpu']:8.1f}{r['words'] / r['cpu']:9.0f}"
              f"{(r['loop_wps'] or 0) / (base['loop_wps'] or 1):11.2f}{cmd_wps / (base['words'] / base['wall']):10.2f}")
    print("\ncumulative epoch-1 loss at N words (the curves should agree within noise):")
    marks = [w for w, _ in results[next(iter(k for k in results if k != 'spacy pretrain'))]["curve"]][:-1]
    print(f"{'words':>10}" + "".join(f"{name:>30}" for name in results))
    for w in marks:
        cells = [at(r["curve"], w) for r in results.values()]
        print(f"{w:10d}" + "".join(f"{c:30.2f}" if c is not None else f"{'-':>30}" for c in cells))
    print(f"\nload: start {start}; end {end}")
    summary = {"results": results, "docs": len(texts), "objective": args.objective, "load_start": start,
               "load_end": end}
    (work / "bench-pretrain.json").write_text(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
