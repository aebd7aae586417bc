"""Merge per-label Prodigy NER datasets into one gold Doc per text, in bounded memory.

Annotation teams often annotate one label per dataset over the same texts. Loading 20 such exports into
memory to merge them is what OOM-killed earlier runs, so this module streams every input once into an
on-disk SQLite store keyed by ``_input_hash`` (one row per task with its spans; the text and tokens once
per hash), then reads the groups back in first-seen order and writes DocBin shards. Memory holds one
input line, one text group and one output shard at a time; time is linear in the input (plus index
look-ups).

Rules (each counted in ``merge-report.json``; every individual event also goes to ``merge-problems.jsonl``):

- ``reject``/``ignore`` answers drop that task's spans; the task gives the text no label coverage.
- A dataset's labels are the labels of every span in it (any answer). A text is *covered* for a label
  when a dataset carrying that label has an accepted task for it.
- Spans not on token boundaries: ``misaligned="fail"`` (error), ``"skip"`` (drop the span) or
  ``"expand"`` (grow it to the enclosing tokens, ``Doc.char_span(alignment_mode="expand")``).
- Identical spans (same tokens, same label) from several tasks are kept once (``duplicate``).
- Overlapping spans (any two distinct spans sharing a token, whichever datasets they come from) are a
  conflict: ``on_conflict="fail"`` (error naming both tasks and the input hash) or ``"keep-longest"``
  (keep the span with more tokens; ties go to the earlier input file, then the earlier line).
- One ``_input_hash`` with two different texts is an error. One text under several hashes is reported.
- Texts with no accepted task are not written.

Partial annotation. spaCy expresses "unknown" per token, not per label: a token's NER tag is either an
entity tag, ``O`` or missing. So, by default ("missing"), a text covered for *every* label in the inputs
gets ``O`` outside its entities, and a text lacking any label's coverage gets *missing* outside its
entities (``Doc.set_ents(default="missing")``): the model is taught the entities it has, and nothing
about the rest, including the labels that were annotated there. ``complete=True`` makes every token
outside an entity ``O``, for data where a missing dataset really means "no such entities".
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, TextIO, Tuple, Union

import srsly
from spacy.tokens import Span

from ..common.errors import InputError
from ..storage.fileio import atomic_path
from .prodigy import Token, iter_tasks, make_doc, text_digest

PathLike = Union[str, Path]
ON_CONFLICT = ("fail", "keep-longest")
MISALIGNED = ("fail", "skip", "expand")
SHARD_DOCS = 1000
REPORT_NAME = "merge-report.json"
PROBLEMS_NAME = "merge-problems.jsonl"
COVERAGE_NAME = "coverage.jsonl"
EXAMPLES = 20  # problem examples kept in the report (all of them are in merge-problems.jsonl)
BATCH = 1000  # tasks per SQLite insert batch


@dataclass
class TaskRecord:
    """One task as the merge needs it (from the store or, in the naive benchmark, from memory)."""

    dataset: int
    line: int
    answer: str
    digest: bytes
    spans: List[Tuple[int, int, str]]


@dataclass
class Candidate:
    """An aligned span: token offsets plus where it came from."""

    start: int
    end: int
    label: str
    dataset: int
    line: int
    chars: Tuple[int, int]


@dataclass
class MergeStats:
    """Counters for the report; bounded by the number of labels, never by the number of tasks."""

    paths: List[str]
    options: Dict[str, object]
    counts: Counter = field(default_factory=Counter)
    answers: List[Counter] = field(default_factory=list)
    dataset_labels: List[Set[str]] = field(default_factory=list)
    texts_per_label: Counter = field(default_factory=Counter)
    labels_covered_hist: Counter = field(default_factory=Counter)
    examples: Dict[str, list] = field(default_factory=dict)
    shards: List[str] = field(default_factory=list)

    def where(self, dataset: int, line: int) -> str:
        return f"{self.paths[dataset]}:{line}"

    def example(self, kind: str, event: dict) -> None:
        kept = self.examples.setdefault(kind, [])
        if len(kept) < EXAMPLES:
            kept.append(event)


class TaskStore:
    """Tasks grouped by input hash on disk: SQLite in a temporary folder, dropped after the merge."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(str(path))
        self.db.executescript(
            """
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;
            CREATE TABLE texts (id INTEGER PRIMARY KEY, input_hash INTEGER UNIQUE NOT NULL,
                                digest BLOB NOT NULL, text TEXT NOT NULL, tokens TEXT,
                                dataset INTEGER NOT NULL, line INTEGER NOT NULL);
            CREATE TABLE tasks (input_hash INTEGER NOT NULL, dataset INTEGER NOT NULL, line INTEGER NOT NULL,
                                answer TEXT NOT NULL, digest BLOB NOT NULL, spans TEXT NOT NULL);
            """
        )

    def add(self, dataset: int, tasks: Iterable) -> None:
        """Insert tasks in batches; the first task of a hash stores its text, the first with tokens its tokens."""
        text_sql = (
            "INSERT INTO texts (input_hash, digest, text, tokens, dataset, line) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (input_hash) DO UPDATE SET tokens = excluded.tokens "
            "WHERE texts.tokens IS NULL AND excluded.tokens IS NOT NULL AND texts.digest = excluded.digest"
        )
        task_sql = "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)"
        while True:
            batch = list(itertools.islice(tasks, BATCH))
            if not batch:
                break
            texts, rows = [], []
            for task in batch:
                digest = text_digest(task.text)
                tokens = None if task.tokens is None else srsly.json_dumps(task.tokens)
                texts.append((task.input_hash, digest, task.text, tokens, dataset, task.line))
                spans = srsly.json_dumps([(s.start, s.end, s.label) for s in task.spans])
                rows.append((task.input_hash, dataset, task.line, task.answer, digest, spans))
            with self.db:
                self.db.executemany(text_sql, texts)
                self.db.executemany(task_sql, rows)

    def groups(self) -> Iterator[Tuple[Tuple, List[TaskRecord]]]:
        """Yield (text row, its tasks) in first-seen text order, tasks by input file then line."""
        self.db.execute("CREATE INDEX tasks_by_hash ON tasks (input_hash, dataset, line)")
        rows = self.db.execute(
            "SELECT t.input_hash, t.digest, t.text, t.tokens, t.dataset, t.line, "
            "k.dataset, k.line, k.answer, k.digest, k.spans "
            "FROM texts t JOIN tasks k ON k.input_hash = t.input_hash ORDER BY t.id, k.dataset, k.line"
        )
        for _, group in itertools.groupby(rows, key=lambda row: row[0]):
            group = list(group)
            records = [TaskRecord(r[6], r[7], r[8], r[9], [tuple(s) for s in srsly.json_loads(r[10])]) for r in group]
            yield group[0][:6], records

    def texts_under_several_hashes(self) -> Iterator[Tuple[List[int], str]]:
        """Same text, different hashes: usually inputs with and without Prodigy's ``_input_hash``."""
        self.db.execute("CREATE INDEX texts_by_digest ON texts (digest)")
        rows = self.db.execute(
            "SELECT group_concat(input_hash), min(text) FROM texts GROUP BY digest HAVING count(*) > 1"
        )
        for hashes, text in rows:
            yield [int(h) for h in hashes.split(",")], text

    def close(self) -> None:
        self.db.close()


def merge_annotations(
    inputs: Sequence[PathLike],
    out_dir: PathLike,
    *,
    on_conflict: str = "fail",
    misaligned: str = "fail",
    complete: bool = False,
    shard_docs: int = SHARD_DOCS,
    lang: str = "en",
) -> dict:
    """Merge Prodigy datasets into ``out_dir`` (DocBin shards + report), atomically; returns the report."""
    _check_options(inputs, on_conflict, misaligned, shard_docs)
    out_dir = Path(out_dir)
    paths = [str(p) for p in inputs]
    options = {"on_conflict": on_conflict, "misaligned": misaligned, "complete": complete,
               "shard_docs": shard_docs, "lang": lang}
    stats = MergeStats(paths=paths, options=options)
    with atomic_path(out_dir, is_dir=True) as tmp, tempfile.TemporaryDirectory(
        prefix=f".{out_dir.name}.store.", dir=out_dir.parent
    ) as work:
        store = TaskStore(Path(work) / "tasks.sqlite")
        try:
            for i, path in enumerate(paths):
                store.add(i, _counted(iter_tasks(path), i, stats))
            with (tmp / PROBLEMS_NAME).open("w", encoding="utf-8") as problems, (tmp / COVERAGE_NAME).open(
                "w", encoding="utf-8"
            ) as coverage:
                docs = _merged_docs(store, stats, problems, coverage)
                _write_shards(docs, tmp, shard_docs, lang, stats)
                _report_shared_texts(store, stats, problems)
        finally:
            store.close()
        report = build_report(stats)
        (tmp / REPORT_NAME).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return report


def _check_options(inputs: Sequence[PathLike], on_conflict: str, misaligned: str, shard_docs: int) -> None:
    if not inputs:
        raise ValueError("no input datasets given")
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, got {on_conflict!r}")
    if misaligned not in MISALIGNED:
        raise ValueError(f"misaligned must be one of {', '.join(MISALIGNED)}, got {misaligned!r}")
    if shard_docs < 1:
        raise ValueError(f"shard_docs must be at least 1, got {shard_docs}")
    for path in inputs:  # fail before minutes of ingesting, not after
        if not Path(path).is_file():
            raise InputError(path, "file not found")


def _counted(tasks: Iterator, dataset: int, stats: MergeStats) -> Iterator:
    """Pass tasks through, counting answers and collecting the dataset's labels on the way."""
    answers: Counter = Counter()
    labels: Set[str] = set()
    stats.answers.append(answers)
    stats.dataset_labels.append(labels)
    for task in tasks:
        answers[task.answer] += 1
        labels.update(span.label for span in task.spans)
        yield task
    if not answers:
        raise InputError(stats.paths[dataset], "empty file: no tasks")


def _merged_docs(store: TaskStore, stats: MergeStats, problems: TextIO, coverage: TextIO) -> Iterator[Tuple]:
    """Yield (text, tokens, entities, default) per text; the Doc is built by the shard writer's nlp."""
    all_labels = set().union(*stats.dataset_labels)
    for (input_hash, digest, text, tokens_json, dataset, line), records in store.groups():
        stats.counts["texts"] += 1
        covered = _check_texts_and_coverage(input_hash, digest, dataset, line, records, stats)
        accepted = [r for r in records if r.answer == "accept"]
        stats.counts["spans_dropped_by_answer"] += sum(len(r.spans) for r in records if r.answer != "accept")
        if not accepted:
            stats.counts["texts_without_accepted_task"] += 1
            continue
        tokens = None if tokens_json is None else [tuple(t) for t in srsly.json_loads(tokens_json)]
        is_complete = stats.options["complete"] or covered >= all_labels
        stats.counts["texts_complete" if covered >= all_labels else "texts_partial"] += 1
        stats.texts_per_label.update(covered)
        stats.labels_covered_hist[len(covered)] += 1
        coverage.write(json.dumps({"input_hash": input_hash, "labels": sorted(covered),
                                   "missing_labels": sorted(all_labels - covered),
                                   "outside": "O" if is_complete else "missing"}) + "\n")
        yield input_hash, text, tokens, accepted, "outside" if is_complete else "missing", problems


def _check_texts_and_coverage(input_hash: int, digest: bytes, dataset: int, line: int,
                              records: List[TaskRecord], stats: MergeStats) -> Set[str]:
    """Fail on a second text under this hash; return the labels covered by accepted tasks."""
    covered: Set[str] = set()
    for rec in records:
        if rec.digest != digest:
            raise InputError(stats.paths[rec.dataset],
                             f"_input_hash {input_hash} has a different text here than at "
                             f"{stats.where(dataset, line)}", line=rec.line)
        if rec.answer == "accept":
            covered |= stats.dataset_labels[rec.dataset]
    return covered


def resolve_entities(doc, input_hash: int, accepted: List[TaskRecord], stats: MergeStats, problems: TextIO) -> list:
    """Align every accepted span to the Doc's tokens, drop duplicates, resolve overlaps; return spaCy Spans."""
    candidates = _aligned(doc, input_hash, accepted, stats, problems)
    unique: Dict[Tuple[int, int, str], Candidate] = {}
    for cand in candidates:
        key = (cand.start, cand.end, cand.label)
        if key in unique:
            stats.counts["spans_duplicate"] += 1
        else:
            unique[key] = cand
    kept = _without_overlaps(list(unique.values()), input_hash, doc, stats, problems)
    stats.counts["spans_written"] += len(kept)
    return [Span(doc, c.start, c.end, label=c.label) for c in sorted(kept, key=lambda c: c.start)]


def _aligned(doc, input_hash: int, accepted: List[TaskRecord], stats: MergeStats, problems: TextIO) -> List[Candidate]:
    mode = stats.options["misaligned"]
    out = []
    for rec in accepted:
        for start, end, label in rec.spans:
            stats.counts["spans_accepted"] += 1
            span = doc.char_span(start, end, label=label)
            if span is None:
                stats.counts["spans_misaligned"] += 1
                event = {"kind": "misaligned", "input_hash": input_hash, "source": stats.where(rec.dataset, rec.line),
                         "span": [start, end, label], "text": doc.text[start:end]}
                if mode == "fail":
                    raise InputError(stats.paths[rec.dataset],
                                     f"span [{start}, {end}) {label} {doc.text[start:end]!r} is not on token "
                                     f"boundaries (_input_hash {input_hash}; --misaligned skip|expand)", line=rec.line)
                if mode == "expand":
                    span = doc.char_span(start, end, label=label, alignment_mode="expand")
                    if span is not None and span.text.strip():
                        event["action"] = "expanded"
                        event["expanded_to"] = [span.start_char, span.end_char]
                        stats.counts["spans_misaligned_expanded"] += 1
                    else:
                        span = None
                if span is None:
                    event["action"] = "skipped"
                    stats.counts["spans_misaligned_skipped"] += 1
                _log(problems, stats, event)
                if span is None:
                    continue
            out.append(Candidate(span.start, span.end, label, rec.dataset, rec.line, (span.start_char, span.end_char)))
    return out


def _without_overlaps(cands: List[Candidate], input_hash: int, doc, stats: MergeStats, problems: TextIO) -> List[Candidate]:
    """Greedy keep-longest (ties: earlier input, earlier line); with on_conflict=fail the first overlap raises."""
    owner: List[Optional[Candidate]] = [None] * len(doc)
    kept = []
    for cand in sorted(cands, key=lambda c: (c.start - c.end, c.dataset, c.line, c.start)):
        blocker = next((owner[i] for i in range(cand.start, cand.end) if owner[i] is not None), None)
        if blocker is None:
            owner[cand.start : cand.end] = [cand] * (cand.end - cand.start)
            kept.append(cand)
            continue
        stats.counts["conflicts"] += 1
        if stats.options["on_conflict"] == "fail":
            raise InputError(stats.paths[cand.dataset],
                             f"span [{cand.chars[0]}, {cand.chars[1]}) {cand.label} overlaps span "
                             f"[{blocker.chars[0]}, {blocker.chars[1]}) {blocker.label} from "
                             f"{stats.where(blocker.dataset, blocker.line)} (_input_hash {input_hash}; "
                             f"--on-conflict keep-longest)", line=cand.line)
        stats.counts["spans_dropped_by_conflict"] += 1
        _log(problems, stats, {"kind": "conflict", "input_hash": input_hash, "action": "kept longest",
                               "kept": _describe(blocker, doc, stats), "dropped": _describe(cand, doc, stats)})
    return kept


def _describe(cand: Candidate, doc, stats: MergeStats) -> dict:
    return {"span": [cand.chars[0], cand.chars[1], cand.label], "text": doc.text[cand.chars[0] : cand.chars[1]],
            "source": stats.where(cand.dataset, cand.line)}


def _log(problems: TextIO, stats: MergeStats, event: dict) -> None:
    problems.write(json.dumps(event) + "\n")
    stats.example(event["kind"], event)


def _write_shards(items: Iterator[Tuple], folder: Path, shard_docs: int, lang: str, stats: MergeStats) -> None:
    """Build Docs and write ``000000.spacy``, ... with a fresh vocab per shard, so strings don't pile up."""
    import spacy
    from spacy.tokens import DocBin

    for shard, chunk in enumerate(_chunks(items, shard_docs)):
        nlp = spacy.blank(lang)
        db = DocBin(attrs=["ORTH", "SPACY", "ENT_IOB", "ENT_TYPE"])
        for input_hash, text, tokens, accepted, default, problems in chunk:
            doc = make_doc(text, tokens, nlp)
            doc.set_ents(resolve_entities(doc, input_hash, accepted, stats, problems), default=default)
            db.add(doc)
        name = f"{shard:06d}.spacy"
        db.to_disk(folder / name)
        stats.shards.append(name)
        stats.counts["docs_written"] += len(db)


def _chunks(items: Iterator, size: int) -> Iterator[List]:
    while True:
        chunk = list(itertools.islice(items, size))
        if not chunk:
            return
        yield chunk


def _report_shared_texts(store: TaskStore, stats: MergeStats, problems: TextIO) -> None:
    for hashes, text in store.texts_under_several_hashes():
        stats.counts["texts_under_several_hashes"] += 1
        _log(problems, stats, {"kind": "text_under_several_hashes", "input_hashes": hashes, "text": text[:80]})


def build_report(stats: MergeStats) -> dict:
    """The merge report: every rule's count, label coverage, per-input summary, first problem examples."""
    all_labels = sorted(set().union(*stats.dataset_labels))
    c = stats.counts
    return {
        "inputs": [{"path": p, "tasks": sum(a.values()), "answers": dict(a), "labels": sorted(l)}
                   for p, a, l in zip(stats.paths, stats.answers, stats.dataset_labels)],
        "options": stats.options,
        "labels": all_labels,
        "texts": c["texts"],
        "docs_written": c["docs_written"],
        "shards": stats.shards,
        "texts_without_accepted_task": c["texts_without_accepted_task"],
        "texts_under_several_hashes": c["texts_under_several_hashes"],
        "answers": {a: sum(x[a] for x in stats.answers) for a in ("accept", "reject", "ignore")},
        "spans": {k: c[f"spans_{k}"] for k in ("accepted", "dropped_by_answer", "duplicate", "misaligned",
                                                 "misaligned_expanded", "misaligned_skipped",
                                                 "dropped_by_conflict", "written")},
        "conflicts": c["conflicts"],
        "coverage": {
            "outside_tokens": "O" if stats.options["complete"] else "O when every label is covered, else missing",
            "texts_complete": c["texts_complete"],
            "texts_partial": c["texts_partial"],
            "texts_per_label": {label: stats.texts_per_label[label] for label in all_labels},
            "texts_by_number_of_labels_covered": {str(k): v for k, v in sorted(stats.labels_covered_hist.items())},
        },
        "examples": stats.examples,
    }


def format_summary(report: dict, out_dir: PathLike) -> str:
    """A few lines for people; the JSON report has everything."""
    s = report["spans"]
    cov = report["coverage"]
    a = report["answers"]
    lines = [
        f"merged {sum(i['tasks'] for i in report['inputs'])} tasks from {len(report['inputs'])} datasets "
        f"into {report['docs_written']} docs ({len(report['shards'])} shards) in {out_dir}",
        f"answers: {a['accept']} accept, {a['reject']} reject, {a['ignore']} ignore "
        f"({s['dropped_by_answer']} spans dropped); {report['texts_without_accepted_task']} texts without an accept",
        f"spans: {s['written']} written of {s['accepted']} accepted; {s['duplicate']} duplicates, "
        f"{report['conflicts']} conflicts ({s['dropped_by_conflict']} dropped), {s['misaligned']} misaligned "
        f"({s['misaligned_expanded']} expanded, {s['misaligned_skipped']} skipped)",
        f"coverage: {cov['texts_complete']} texts cover all {len(report['labels'])} labels, "
        f"{cov['texts_partial']} partial (outside tokens: {cov['outside_tokens']})",
    ]
    unlabeled = [i["path"] for i in report["inputs"] if not i["labels"]]
    if unlabeled:
        lines.append(f"warning: no spans, so no known label, in {', '.join(unlabeled)}")
    if report["texts_under_several_hashes"]:
        lines.append(f"warning: {report['texts_under_several_hashes']} texts appear under several _input_hash "
                     f"values (see {PROBLEMS_NAME})")
    return "\n".join(lines)
