"""`lmao data imdb` at the protocol's defaults beside the straightforward way, in one run.

Not a test (minutes on 2 cores). Times ``prepare_imdb`` (each distinct review tokenized once, on every
core) and ``tests/imdb_oracle.py`` ``reference_prepare_imdb`` (each split tokenized on its own, the pretraining text again, one
core: what ``lmao data imdb`` did before it tokenized each review once), each in its own process with its peak PSS, checks
that every ``.spacy`` file is byte-identical, and prints the ratio with the machine's load.

    .venv/bin/python benchmarks/bench_data_imdb.py [--source imdb.jsonl.gz] [--workdir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "imdb" / "imdb.jsonl.gz"

from pss import run_measured  # noqa: E402  (benchmarks/pss.py, beside this script)


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(DEFAULT_SOURCE))
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None, help="write the numbers here too")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-data-"))
    start_load = load()
    print(f"workdir: {work}\nstart: {start_load}", flush=True)
    runs = {
        "lmao data imdb": [sys.executable, "-m", "experiments", "data", "imdb", args.source, str(work / "new")],
        "reference (before)": [sys.executable, "-c",
                               "import sys; from tests.imdb_oracle import reference_prepare_imdb as r; "
                               "r(sys.argv[1], sys.argv[2])", args.source, str(work / "old")],
    }
    results = {}
    for name, cmd in runs.items():
        shutil.rmtree(work / ("new" if name.startswith("lmao") else "old"), ignore_errors=True)
        print("$", " ".join(cmd), flush=True)
        code, wall, peak = run_measured(cmd, cwd=REPO)
        if code:
            raise SystemExit(f"{name} failed with exit {code}")
        results[name] = {"seconds": wall, "peak_pss_bytes": peak.pss_bytes, "processes": peak.processes}
    files = sorted(p.relative_to(work / "old") for p in (work / "old").rglob("*.spacy"))
    same = files == sorted(p.relative_to(work / "new") for p in (work / "new").rglob("*.spacy")) and all(
        (work / "old" / f).read_bytes() == (work / "new" / f).read_bytes() for f in files)
    end_load = load()
    new, old = results["lmao data imdb"], results["reference (before)"]
    print("\n`lmao data imdb` at the protocol's defaults (1000 train / 10000 dev / 25000 test, 50k pretraining docs)")
    for name, r in results.items():
        print(f"  {name:20}{r['seconds']:8.1f} s   peak PSS {r['peak_pss_bytes'] / 2**30:.2f} GiB "
              f"({r['processes']} processes)")
    print(f"  speed-up {old['seconds'] / new['seconds']:.2f}x; {len(files)} .spacy files "
          f"{'byte-identical' if same else 'DIFFER'}")
    print(f"  load: start {start_load}; end {end_load}")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "identical": same, "files": len(files),
                                               "load_start": start_load, "load_end": end_load}, indent=1))
    if not same:
        raise SystemExit("outputs differ")


if __name__ == "__main__":
    main()
