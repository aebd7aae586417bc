"""`make bench-gpu`: GPU against CPU on the same machine, measured in one run, on whatever GPU is there.

Every number comes from ``lmao trial`` runs in fresh processes (their ``results.json``), one after the
other on this machine:

1. the protocol trial (IMDB-1k baseline: 1000 train / 10000 dev reviews, width 96, depth 4, static vectors,
   dev evaluated every epoch, ``--epochs`` epochs) on the GPU with an empty CuPy kernel cache (what a fresh
   pod pays), again with the cache the first run filled (what experiments/storage/kernel_cache.py gives a pod),
   and on the CPU;
2. pretraining words/s, GPU and CPU, for ``--pretrain-docs`` reviews at each ``--pretrain-batch`` size
   (words per batch; 3000 is the default);
3. NER: a WNUT-17 baseline trial (full train/dev, 3 epochs) on the GPU and on the CPU, when the WNUT-17
   files are in the shared data (the NER polyaxonfiles keep NER on the CPU pool because of this ratio).

It prints wall time, time outside the epochs (set-up, saving), per-epoch training and evaluation seconds
(evaluation includes scoring) and the CPU/GPU ratios. Without a GPU it says why and exits with status 2,
measuring nothing.

    .venv/bin/python benchmarks/bench_gpu.py [--workdir DIR] [--epochs 3] [--pretrain-docs 5000]
        [--pretrain-batch 3000,30000] [--skip pretrain,ner] [--json FILE]
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from machine import describe as describe_machine, lines as machine_lines  # noqa: E402

SHARED = Path(os.environ.get("LMAO_SHARED_DATA", REPO.parent / "shared" / "data"))
LMAO = [sys.executable, "-m", "experiments"]


def run(cmd, env=None) -> float:
    print("$", " ".join(str(c) for c in cmd), flush=True)
    start = time.perf_counter()
    subprocess.run([str(c) for c in cmd], check=True, env=env)
    return time.perf_counter() - start


def trial(experiment: str, out: Path, device: str, params: dict, cache: Path, kernel_cache: Path) -> dict:
    """One ``lmao trial`` in a fresh process; its results.json plus the process's wall time."""
    env = {**os.environ, "CUPY_CACHE_DIR": str(kernel_cache)}
    args = [arg for name, value in params.items() for arg in ("-P", f"{name}={value}")]
    wall = run([*LMAO, "trial", REPO / experiment, "--out", out, "--gpu", device, "--cache", cache, *args], env=env)
    results = json.loads((out / "results.json").read_text())
    epochs = results["epochs"]
    return {
        "wall": wall,
        "device": results.get("device"),
        "outside_epochs": wall - sum(e["seconds"] for e in epochs),
        "train_seconds": statistics.median(e["train_seconds"] for e in epochs),
        "eval_seconds": statistics.median(e["eval_seconds"] for e in epochs),
        "best_dev_score": results["best_dev_score"],
        "pretrain_wps": (results.get("pretraining") or {}).get("words_per_second"),
        "kernels_cached": len(list(kernel_cache.glob("*"))) if kernel_cache.exists() else 0,
    }


def imdb_corpus(work: Path, pretrain_docs: int) -> Path:
    corpus = work / "imdb"
    if not (corpus / "manifest.json").exists():
        run([*LMAO, "data", "imdb", SHARED / "imdb" / "imdb.jsonl.gz", corpus, "--n-train", 1000, "--n-dev", 10000,
             "--n-test", 100, "--max-pretrain-docs", pretrain_docs])
    if not (corpus / "vectors").exists():
        run([*LMAO, "vectors", "train", corpus / "pretrain", corpus / "vectors", "--dims", 100, "--epochs", 5])
    return corpus


def wnut_corpus(work: Path) -> Path:
    wnut, corpus = SHARED / "ner" / "wnut17", work / "wnut17"
    if not (corpus / "manifest.json").exists():
        run([*LMAO, "data", "ner", wnut / "wnut17train.conll", wnut / "emerging.dev.conll", corpus])
    return corpus


def row(label: str, gpu: dict, cpu: dict) -> None:
    def ratio(key):
        return f"{cpu[key] / gpu[key]:6.2f}x" if gpu.get(key) and cpu.get(key) else "     -"

    print(f"{label:34}{'GPU':>10}{'CPU':>10}{'CPU/GPU':>9}")
    for key, name in (("wall", "wall s"), ("outside_epochs", "outside epochs s"),
                      ("train_seconds", "training s / epoch"), ("eval_seconds", "evaluation s / epoch")):
        print(f"  {name:32}{gpu[key]:10.1f}{cpu[key]:10.1f}{ratio(key):>9}")
    print(f"  {'best dev score':32}{gpu['best_dev_score']:10.4f}{cpu['best_dev_score']:10.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pretrain-docs", type=int, default=5000)
    parser.add_argument("--pretrain-batch", default="3000,30000", help="pretraining words per batch, comma-separated")
    parser.add_argument("--skip", default="", help="comma-separated: pretrain, ner")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    machine = describe_machine()
    print("\n".join(machine_lines(machine)), flush=True)
    if not machine["gpu"]["present"]:
        print(f"bench-gpu: no GPU on this machine ({machine['gpu']['reason']}); nothing measured. Run it where "
              "CuPy sees a GPU (spacy[cuda12x] installed, a CUDA driver, a visible device).", file=sys.stderr)
        sys.exit(2)
    skip = set(filter(None, args.skip.split(",")))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    start_load = "load average %.2f %.2f %.2f" % os.getloadavg()
    print(f"workdir: {work}\nstart: {start_load}", flush=True)
    corpus = imdb_corpus(work, args.pretrain_docs)
    protocol = {"corpus_dir": corpus, "pretrain_epochs": 0, "max_epochs": args.epochs, "patience": 0}
    found: dict = {"machine": machine}

    kernels = work / "kernel-cache"
    found["trial_gpu_cold"] = trial("lmao-imdb-1k", work / "runs" / "gpu-cold", "0", protocol, work / "cache-a", kernels)
    found["trial_gpu_warm"] = trial("lmao-imdb-1k", work / "runs" / "gpu-warm", "0", protocol, work / "cache-b", kernels)
    found["trial_cpu"] = trial("lmao-imdb-1k", work / "runs" / "cpu", "-1", protocol, work / "cache-c", work / "unused")

    if "pretrain" not in skip:
        for batch in [int(b) for b in args.pretrain_batch.split(",")]:
            pre = {**protocol, "pretrain_epochs": 1, "pretrain_max_epochs": 1, "max_epochs": 1,
                   "pretrain_batch_size": batch}
            for device in ("0", "-1"):
                name = f"pretrain_{batch}_{'gpu' if device == '0' else 'cpu'}"
                found[name] = trial("lmao-imdb-1k", work / "runs" / name, device, pre, work / f"cache-{name}", kernels)

    if "ner" not in skip and (SHARED / "ner" / "wnut17" / "wnut17train.conll").exists():
        ner = {"corpus_dir": wnut_corpus(work), "pretrain_epochs": 0, "max_epochs": 3, "patience": 0}
        found["ner_gpu"] = trial("ontonotes-ner", work / "runs" / "ner-gpu", "0", ner, work / "cache-ng", kernels)
        found["ner_cpu"] = trial("ontonotes-ner", work / "runs" / "ner-cpu", "-1", ner, work / "cache-nc", work / "unused")

    end_load = "load average %.2f %.2f %.2f" % os.getloadavg()
    print("\n==== bench-gpu: GPU vs CPU on this machine, measured in this run ====")
    print("\n".join(machine_lines(machine)))
    row(f"IMDB-1k protocol trial, {args.epochs} epochs", found["trial_gpu_warm"], found["trial_cpu"])
    cold, warm = found["trial_gpu_cold"], found["trial_gpu_warm"]
    print(f"  empty CuPy kernel cache (a fresh pod): {cold['wall']:.1f} s, {cold['outside_epochs']:.1f} s outside "
          f"epochs; warm cache: {warm['wall']:.1f} s, {warm['outside_epochs']:.1f} s ({cold['kernels_cached']} kernels)")
    for key in sorted(k for k in found if k.startswith("pretrain_") and k.endswith("_gpu")):
        gpu, cpu = found[key], found[key[:-4] + "_cpu"]
        batch = key.split("_")[1]
        print(f"pretraining, {batch} words per batch: GPU {gpu['pretrain_wps']:.0f} words/s, CPU {cpu['pretrain_wps']:.0f}"
              f" = {gpu['pretrain_wps'] / cpu['pretrain_wps']:.2f}x")
    if "ner_gpu" in found:
        row("WNUT-17 NER trial, 3 epochs", found["ner_gpu"], found["ner_cpu"])
    print(f"load: start {start_load}; end {end_load}")
    if args.json:
        Path(args.json).write_text(json.dumps(found, indent=1, default=str))


if __name__ == "__main__":
    main()
