"""Benchmark (not a test): merge 20 per-label Prodigy datasets x 6000 tasks, streaming vs naive.

    .venv/bin/python benchmarks/bench_merge_annotations.py [--labels 20] [--tasks 6000] [--naive-cap-gb 8]

Generates a synthetic corpus of realistic size in a temporary folder (texts of a few hundred characters,
Prodigy ``tokens`` included, one dataset per label, ~90% accept / 7% reject / 3% ignore, each dataset
covering ~97% of the texts in its own order), then runs, each in its own subprocess so that peak RSS is
that process's alone (``os.wait4`` rusage):

- streaming: ``merge_annotations`` (what ``lmao data merge-annotations`` runs);
- naive: load every dataset fully into memory (``json.loads`` of every line, kept), group by hash in a
  dict, then merge with the same per-text logic. Its address space is capped (``RLIMIT_AS``,
  ``--naive-cap-gb``) so it cannot take the shared machine down; if it hits the cap that is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import string
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def generate(folder: Path, labels: int, tasks: int, seed: int = 0) -> List[Path]:
    """Write ``labels`` datasets of ``tasks`` Prodigy tasks each over the same pool of texts."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(20000)]
    texts = []
    for i in range(tasks):
        words = [rng.choice(vocab).capitalize() if rng.random() < 0.15 else rng.choice(vocab)
                 for _ in range(rng.randint(45, 80))]
        for j in range(8, len(words), rng.randint(8, 15)):
            words[j] += rng.choice(",.;")
        text = " ".join(words)
        tokens, pos = [], 0
        for k, word in enumerate(text.split(" ")):
            core = word.rstrip(",.;")
            tokens.append({"text": core, "start": pos, "end": pos + len(core), "id": len(tokens), "ws": core == word})
            if core != word:
                tokens.append({"text": word[-1], "start": pos + len(core), "end": pos + len(word), "id": len(tokens), "ws": True})
            pos += len(word) + 1
        tokens[-1]["ws"] = False
        head = json.dumps({"text": text, "tokens": tokens, "meta": {"source": "synthetic", "doc": i}})[:-1]
        texts.append((head, tokens, 1_000_000 + i))
    paths = []
    for lab in range(labels):
        label = f"LABEL_{lab:02d}"
        path = folder / f"{label.lower()}.jsonl"
        order = [i for i in range(tasks) if rng.random() < 0.97]
        rng.shuffle(order)
        with path.open("w", encoding="utf-8") as fh:
            for i in order:
                head, tokens, input_hash = texts[i]
                spans = []
                for start in sorted(rng.sample(range(0, len(tokens) - 3, 4), rng.randint(0, 2))):
                    end = start + rng.randint(0, 2)
                    spans.append({"start": tokens[start]["start"], "end": tokens[end]["end"], "label": label,
                                  "token_start": start, "token_end": end})
                answer = rng.choices(["accept", "reject", "ignore"], weights=[90, 7, 3])[0]
                tail = {"spans": spans, "answer": answer, "_input_hash": input_hash,
                        "_task_hash": rng.getrandbits(31), "_view_id": "ner_manual",
                        "_session_id": f"ner-{label.lower()}-annotator", "_timestamp": 1700000000 + i}
                fh.write(head + ", " + json.dumps(tail)[1:] + "\n")
        paths.append(path)
    return paths


def run_streaming(paths: List[str], out: str) -> int:
    from experiments.data.merge_annotations import merge_annotations

    report = merge_annotations(paths, out, on_conflict="keep-longest", misaligned="skip")
    return report["docs_written"]


def run_naive(paths: List[str], out: str) -> int:
    """The approach that OOM-killed earlier runs: every dataset in memory, then merge."""
    import io

    import spacy
    from spacy.tokens import DocBin

    from experiments.data import merge_annotations as m
    from experiments.data.prodigy import make_doc, text_digest

    datasets = [[json.loads(line) for line in open(p, encoding="utf-8")] for p in paths]
    groups = defaultdict(list)
    for i, tasks in enumerate(datasets):
        for line, task in enumerate(tasks, start=1):
            groups[task["_input_hash"]].append((i, line, task))
    stats = m.MergeStats(paths=paths, options={"on_conflict": "keep-longest", "misaligned": "skip", "complete": False})
    stats.dataset_labels = [{s["label"] for t in tasks for s in t.get("spans", [])} for tasks in datasets]
    all_labels = set().union(*stats.dataset_labels)
    nlp, db, problems = spacy.blank("en"), DocBin(attrs=["ORTH", "SPACY", "ENT_IOB", "ENT_TYPE"]), io.StringIO()
    for group in groups.values():
        accepted = [m.TaskRecord(i, line, t["answer"], text_digest(t["text"]),
                                 [(s["start"], s["end"], s["label"]) for s in t.get("spans", [])])
                    for i, line, t in group if t["answer"] == "accept"]
        if not accepted:
            continue
        covered = set().union(*(stats.dataset_labels[r.dataset] for r in accepted))
        first = group[0][2]
        tokens = [(t["start"], t["end"], t["ws"]) for t in first["tokens"]]
        doc = make_doc(first["text"], tokens, nlp)
        ents = m.resolve_entities(doc, first["_input_hash"], accepted, stats, problems)
        doc.set_ents(ents, default="outside" if covered >= all_labels else "missing")
        db.add(doc)
    Path(out).mkdir(parents=True, exist_ok=True)
    db.to_disk(Path(out) / "000000.spacy")
    return len(db)


def measure(mode: str, paths: List[Path], out: Path, cap_bytes: int = 0) -> dict:
    """Run one approach in a child process; its own peak RSS comes from wait4's rusage."""
    cmd = [sys.executable, __file__, "--child", mode, str(out), *map(str, paths)]

    def limit() -> None:
        if cap_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, preexec_fn=limit, stdout=out_file, stderr=err_file, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        return {"mode": mode, "rc": proc.returncode, "seconds": seconds, "stdout": out_file.read().strip(),
                "stderr": err_file.read().strip()[-500:], "maxrss_kb": usage.ru_maxrss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=6000)
    parser.add_argument("--naive-cap-gb", type=float, default=8.0, help="address-space cap for the naive run")
    parser.add_argument("--no-naive", action="store_true", help="streaming only (to check scaling)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, out, *paths = args.child
        docs = (run_streaming if mode == "streaming" else run_naive)(paths, out)
        print(json.dumps({"docs": docs}))
        return
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        paths = generate(folder, args.labels, args.tasks)
        size = sum(p.stat().st_size for p in paths)
        print(f"corpus: {args.labels} datasets x ~{args.tasks} tasks, {size / 1e6:.0f} MB of JSONL "
              f"({size / len(paths) / 1e6:.1f} MB per dataset), generated in {time.perf_counter() - start:.0f} s",
              flush=True)
        rows = [measure("streaming", paths, folder / "out-streaming")]
        if not args.no_naive:
            rows.append(measure("naive", paths, folder / "out-naive", int(args.naive_cap_gb * 2**30)))
        same = len(rows) == 2 and all(r["rc"] == 0 for r in rows) and same_docs(folder / "out-streaming", folder / "out-naive")
    print(f"{'approach':<10} {'peak RSS':>10} {'wall time':>10}  docs")
    for row in rows:
        result = json.loads(row["stdout"].splitlines()[-1]) if row["rc"] == 0 else None
        rss = f"{row['maxrss_kb'] / 1024:.0f} MB"
        docs = result["docs"] if result else f"failed (rc {row['rc']}): {row['stderr'].splitlines()[-1:]}"
        print(f"{row['mode']:<10} {rss:>10} {row['seconds']:>9.1f}s  {docs}")
    if len(rows) == 2:
        print(f"identical output (tokens, entity tags, missing values): {'yes' if same else 'NO'}")


def same_docs(a: Path, b: Path) -> bool:
    """Both approaches must produce the same Docs in the same order."""
    import spacy
    from spacy.tokens import DocBin

    vocab = spacy.blank("en").vocab

    def tagged(folder: Path):
        for shard in sorted(folder.glob("*.spacy")):
            for doc in DocBin().from_disk(shard).get_docs(vocab):
                yield [(t.text, t.whitespace_, t.ent_iob_, t.ent_type_) for t in doc]

    try:
        return all(x == y for x, y in zip(tagged(a), tagged(b), strict=True))
    except ValueError:  # different numbers of docs
        return False


if __name__ == "__main__":
    main()
