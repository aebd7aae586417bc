"""`make bench`: the performance ratios of benchmarks/README.md from one run, with the machine's load at start and end.

Runs, one after the other, each beside spaCy's CLI or the earlier way on the same work:
1. ``bench_data_imdb.py``: ``lmao data imdb`` at the protocol's defaults vs the split-by-split reference;
2. ``bench_pretrain.py``: pretraining words/s, ours with 1 and 2 workers vs ``spacy pretrain``;
3. ``bench_imdb_trial.py``: a trial (baseline, 1-epoch pretraining) vs ``spacy train``, with peak PSS;
then prints the summary. Absolute times depend on the load (a busy machine lends fewer cores): the
ratios are measured side by side, and the load lines say how busy the machine was.

    .venv/bin/python benchmarks/bench_all.py [--workdir DIR] [--skip data,pretrain,trial] [--pretrain-docs 2000]
        [--trial-settings baseline,pretrain-1]

The output starts and ends with the machine: CPU model, cores, numpy's BLAS as threadpoolctl reports it
(benchmarks/machine.py). The trial's ratio to `spacy train` follows numpy's gemm gain over thinc's BLIS
on that CPU, so compare ratios between machines only with these lines beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe as describe_machine, lines as machine_lines  # noqa: E402
TRIAL_GOAL = 3.0  # the protocol trial at least this many times faster than `spacy train`, on every machine


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--skip", default="", help="comma-separated: data, pretrain, trial")
    parser.add_argument("--pretrain-docs", type=int, default=2000, help="reviews in the pretraining comparison")
    parser.add_argument("--workers", default="1,2,1:numpy,2:numpy",
                        help="our pretraining runs: WORKERS[:GEMM], GEMM blis (thinc's default) or numpy")
    parser.add_argument("--trial-settings", default="baseline,pretrain-1",
                        help="bench_imdb_trial.py --settings (baseline alone skips the pretraining comparison)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-all-"))
    work.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    start = load()
    machine = machine_lines(describe_machine())
    print(f"workdir: {work}\nstart: {start}\n" + "\n".join(machine), flush=True)
    steps = {
        "data": [HERE / "bench_data_imdb.py", "--workdir", work / "data"],
        "pretrain": [HERE / "bench_pretrain.py", "--workdir", work / "pretrain", "--docs", args.pretrain_docs,
                     "--workers", args.workers],
        "trial": [HERE / "bench_imdb_trial.py", "--workdir", work / "trial", "--settings", args.trial_settings],
    }
    found = {}
    for name, cmd in steps.items():
        if name in skip:
            continue
        out = work / f"{name}.json"
        subprocess.run([sys.executable, *map(str, cmd), "--json", str(out)], check=True)
        found[name] = json.loads(out.read_text())
    end = load()

    print("\n==== summary (ratios measured side by side in this run) ====")
    if "data" in found:
        d = found["data"]["results"]
        new, old = d["lmao data imdb"], d["reference (before)"]
        print(f"data imdb (protocol defaults): {new['seconds']:.0f} s vs {old['seconds']:.0f} s before = "
              f"{old['seconds'] / new['seconds']:.2f}x faster (goal < 90 s); identical output: "
              f"{found['data']['identical']}")
    if "pretrain" in found:
        p = found["pretrain"]["results"]
        base = p["spacy pretrain"]
        for name, r in p.items():
            if name == "spacy pretrain":
                continue
            print(f"pretraining, {name}: {r['loop_wps']:.0f} words/s = {r['loop_wps'] / base['loop_wps']:.2f}x "
                  f"`spacy pretrain` ({base['loop_wps']:.0f}); words per CPU-second "
                  f"{r['words'] / r['cpu']:.0f} vs {base['words'] / base['cpu']:.0f}")
    if "trial" in found:
        t = found["trial"]
        for name, r in t["trials"].items():
            ratio = r["spacy_wall"] / r["lmao_wall"]
            goal = f" (goal >= {TRIAL_GOAL:g}x: {'met' if ratio >= TRIAL_GOAL else 'NOT met'})" if name == "baseline" else ""
            print(f"trial {name}: {r['lmao_wall']:.0f} s vs `spacy train` {r['spacy_wall']:.0f} s = "
                  f"{ratio:.2f}x{goal}; dev accuracy {100 * r['lmao_accuracy']:.2f} vs "
                  f"{100 * r['spacy_accuracy']:.2f}; outside epochs {r['lmao_wall'] - r['lmao_epochs_seconds']:.0f} s")
        for label, pss in t["peak_pss_bytes"].items():
            print(f"peak PSS, {label}: {pss / 2**30:.2f} GiB over {t['processes_at_peak'][label]} processes "
                  f"(RSS summed {t['peak_rss_sum_bytes'][label] / 2**30:.2f} GiB)")
    print(f"load: start {start}; end {end}")
    print("\n".join(machine))


if __name__ == "__main__":
    main()
