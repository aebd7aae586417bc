"""`lmao data merge-annotations` and the Prodigy reader: every merge rule on small hand-built datasets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import List, Optional

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from lmao.cli import app
from experiments.data.merge_annotations import merge_annotations
from experiments.data.prodigy import iter_tasks, read_prodigy_ner, text_hash
from experiments.common.errors import InputError

TEXT = "Anna met Bob in New York."
OTHER = "Carl likes Rome."
THIRD = "Nobody here."


def span(text: str, sub: str, label: str, nth: int = 0) -> dict:
    """A Prodigy span dict for the nth occurrence of ``sub`` in ``text``."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(sub, start + 1)
    return {"start": start, "end": start + len(sub), "label": label}


def task(text: str, *spans: dict, answer: str = "accept", hashed: bool = True, **extra) -> dict:
    out = {"text": text, "spans": list(spans), "answer": answer, **extra}
    if hashed:
        out.setdefault("_input_hash", hash_of(text))
        out.setdefault("_task_hash", out["_input_hash"] + len(spans))
    return out


def hash_of(text: str) -> int:
    return {TEXT: 101, OTHER: 202, THIRD: 303}.get(text, 999)


def write_jsonl(path: Path, tasks: List[dict], gz: bool = False) -> Path:
    data = "".join(json.dumps(t) + "\n" for t in tasks)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def docs_in(folder: Path) -> list:
    """Every doc in the output shards as [(token, iob, label)], in shard order."""
    nlp = spacy.blank("en")
    out = []
    for shard in sorted(folder.glob("*.spacy")):
        for doc in DocBin().from_disk(shard).get_docs(nlp.vocab):
            out.append([(t.text, t.ent_iob_, t.ent_type_) for t in doc])
    return out


def tags(doc_tokens: list) -> list:
    """Compact form: 'B-PERSON', 'I-GPE', 'O', or '-' for missing."""
    return [f"{iob}-{label}" if label else (iob or "-") for _, iob, label in doc_tokens]


@pytest.fixture
def per_gpe(tmp_path: Path):
    """PERSON dataset covers TEXT and OTHER; GPE dataset covers TEXT only."""
    per = write_jsonl(tmp_path / "person.jsonl", [
        task(TEXT, span(TEXT, "Anna", "PERSON"), span(TEXT, "Bob", "PERSON")),
        task(OTHER, span(OTHER, "Carl", "PERSON")),
    ])
    gpe = write_jsonl(tmp_path / "gpe.jsonl", [task(TEXT, span(TEXT, "New York", "GPE"))])
    return per, gpe


# --- the reader ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"text": "a b", "answer": "accept"', "malformed JSON"),
        ('["text"]', "expected a JSON object"),
        ('{"spans": [], "answer": "accept"}', "task has no 'text'"),
        ('{"text": "a b", "answer": "maybe"}', "unknown answer 'maybe'"),
        ('{"text": "a b"}', "task has no 'answer'"),
        ('{"text": "a b", "answer": "accept", "spans": [{"start": 2, "end": 9, "label": "X"}]}',
         "span 0 offsets [2, 9) out of range for a text of 3 characters"),
        ('{"text": "a b", "answer": "accept", "spans": [{"start": 0, "end": 1}]}', "span 0 [0, 1) has no 'label'"),
        ('{"text": "a b", "answer": "accept", "_input_hash": "x"}', "'_input_hash' must be an integer"),
        ('{"text": "a b", "answer": "accept", "tokens": [{"text": "a", "start": 0, "end": 1, "ws": false}]}',
         "tokens cover 1 of the text's 3 characters"),
        ('{"text": "ab", "answer": "accept", "tokens": [{"text": "a", "start": 0, "end": 1, "ws": true}, '
         '{"text": "b", "start": 1, "end": 2, "ws": false}]}', "token 0 has ws=true but no space follows it"),
        ('{"text": "a b", "answer": "accept", "tokens": [{"text": "x", "start": 0, "end": 1, "ws": true}, '
         '{"text": "b", "start": 2, "end": 3, "ws": false}]}', "token 0 text 'x' differs"),
    ],
)
def test_reader_names_file_line_and_problem(tmp_path: Path, line: str, problem: str):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "answer": "accept"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        list(iter_tasks(path))
    assert err.value.line == 3 and err.value.path == str(path)
    assert problem in err.value.problem
    assert str(err.value).startswith(f"{path}:3: ")


def test_reader_reads_gzip_tokens_and_computes_missing_hash(tmp_path: Path):
    tokens = [{"text": "New", "start": 0, "end": 3, "id": 0, "ws": True},
              {"text": "York", "start": 4, "end": 8, "id": 1, "ws": False}]
    path = write_jsonl(tmp_path / "a.jsonl.gz", [
        {"text": "New York", "tokens": tokens, "answer": "reject", "spans": [{"start": 0, "end": 8, "label": "GPE",
                                                                              "token_start": 0, "token_end": 1}]},
    ], gz=True)
    (t,) = list(iter_tasks(path))
    assert (t.line, t.answer, t.tokens) == (1, "reject", [(0, 3, True), (4, 8, False)])
    assert t.input_hash == text_hash("New York") != text_hash("New York.")
    assert [(s.start, s.end, s.label) for s in t.spans] == [(0, 8, "GPE")]


def test_reader_rejects_corrupt_gzip(tmp_path: Path):
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"text": "a", "answer": "accept"}\n' * 50)[:40])
    with pytest.raises(InputError, match="unreadable gzip data"):
        list(iter_tasks(path))


def test_read_prodigy_ner_gold_file(tmp_path: Path):
    path = write_jsonl(tmp_path / "gold.jsonl", [
        {"text": TEXT, "spans": [span(TEXT, "Anna", "PERSON"), span(TEXT, "New York", "GPE")]},  # no answer: gold
        task(OTHER, span(OTHER, "Rome", "GPE"), answer="reject"),
        task(THIRD),
    ])
    docs = [[(t.text, t.ent_iob_, t.ent_type_) for t in d] for d in read_prodigy_ner(path, spacy.blank("en"))]
    assert [tags(d) for d in docs] == [["B-PERSON", "O", "O", "O", "B-GPE", "I-GPE", "O"], ["O", "O", "O"]]
    bad = write_jsonl(tmp_path / "bad.jsonl", [task(TEXT, {"start": 0, "end": 2, "label": "PERSON"})])
    with pytest.raises(InputError, match=r"bad.jsonl:1: span \[0, 2\) PERSON is not on token boundaries"):
        list(read_prodigy_ner(bad, spacy.blank("en")))


# --- merging ---------------------------------------------------------------------------------------


def test_merge_combines_labels_and_marks_partial_texts_missing(tmp_path: Path, per_gpe):
    report = merge_annotations(per_gpe, tmp_path / "out")
    docs = docs_in(tmp_path / "out")
    assert [[t for t, _, _ in d] for d in docs] == [["Anna", "met", "Bob", "in", "New", "York", "."],
                                                     ["Carl", "likes", "Rome", "."]]
    # TEXT is covered by PERSON and GPE: outside is O. OTHER lacks GPE coverage: outside is missing,
    # so "Rome" is not taught as "not GPE".
    assert tags(docs[0]) == ["B-PERSON", "O", "B-PERSON", "O", "B-GPE", "I-GPE", "O"]
    assert tags(docs[1]) == ["B-PERSON", "-", "-", "-"]
    assert report["docs_written"] == 2 and report["texts"] == 2
    assert report["labels"] == ["GPE", "PERSON"]
    assert report["coverage"]["texts_complete"] == 1 and report["coverage"]["texts_partial"] == 1
    assert report["coverage"]["texts_per_label"] == {"GPE": 1, "PERSON": 2}
    assert report["coverage"]["texts_by_number_of_labels_covered"] == {"1": 1, "2": 1}
    assert report["spans"]["written"] == 4 and report["spans"]["accepted"] == 4
    assert json.loads((tmp_path / "out" / "merge-report.json").read_text()) == report
    coverage = [json.loads(l) for l in (tmp_path / "out" / "coverage.jsonl").read_text().splitlines()]
    assert coverage == [
        {"input_hash": 101, "labels": ["GPE", "PERSON"], "missing_labels": [], "outside": "O"},
        {"input_hash": 202, "labels": ["PERSON"], "missing_labels": ["GPE"], "outside": "missing"},
    ]


def test_merge_complete_marks_outside_as_O(tmp_path: Path, per_gpe):
    report = merge_annotations(per_gpe, tmp_path / "out", complete=True)
    assert tags(docs_in(tmp_path / "out")[1]) == ["B-PERSON", "O", "O", "O"]
    assert report["coverage"]["texts_partial"] == 1  # coverage is still reported as it is


def test_rejected_and_ignored_tasks_drop_spans_and_coverage(tmp_path: Path):
    per = write_jsonl(tmp_path / "person.jsonl", [
        task(TEXT, span(TEXT, "Anna", "PERSON"), answer="reject"),
        task(OTHER, span(OTHER, "Carl", "PERSON"), answer="ignore"),
        task(THIRD),
    ])
    gpe = write_jsonl(tmp_path / "gpe.jsonl", [
        task(TEXT, span(TEXT, "New York", "GPE")),
        task(OTHER, span(OTHER, "Rome", "GPE"), answer="reject"),
        task(THIRD),
    ])
    report = merge_annotations([per, gpe], tmp_path / "out")
    docs = docs_in(tmp_path / "out")
    # TEXT: PERSON task rejected, so only GPE covers it: "Anna" stays missing, not O.
    assert tags(docs[0]) == ["-", "-", "-", "-", "B-GPE", "I-GPE", "-"]
    assert tags(docs[1]) == ["O", "O", "O"]  # THIRD: both accepted, no entities: all O
    assert len(docs) == 2  # OTHER has no accepted task: not written
    assert report["answers"] == {"accept": 3, "reject": 2, "ignore": 1}
    assert report["spans"]["dropped_by_answer"] == 3
    assert report["texts_without_accepted_task"] == 1
    assert report["inputs"][0] == {"path": str(per), "tasks": 3, "answers": {"reject": 1, "ignore": 1, "accept": 1},
                                   "labels": ["PERSON"]}


def test_conflict_fails_by_default_naming_both_tasks_and_hash(tmp_path: Path):
    per = write_jsonl(tmp_path / "person.jsonl", [task(OTHER), task(TEXT, span(TEXT, "New York", "PERSON"))])
    gpe = write_jsonl(tmp_path / "gpe.jsonl", [task(TEXT, span(TEXT, "York", "GPE"))])
    with pytest.raises(InputError) as err:
        merge_annotations([per, gpe], tmp_path / "out")
    assert str(err.value) == (
        f"{gpe}:1: span [20, 24) GPE overlaps span [16, 24) PERSON from {per}:2 "
        "(_input_hash 101; --on-conflict keep-longest)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpe.jsonl", "person.jsonl"]  # nothing half-written


def test_conflict_keep_longest_and_ties_go_to_earlier_input(tmp_path: Path):
    per = write_jsonl(tmp_path / "person.jsonl", [task(TEXT, span(TEXT, "York", "PERSON"), span(TEXT, "Anna", "PERSON"))])
    gpe = write_jsonl(tmp_path / "gpe.jsonl", [task(TEXT, span(TEXT, "New York", "GPE"))])
    org = write_jsonl(tmp_path / "org.jsonl", [task(TEXT, span(TEXT, "Anna", "ORG"))])
    report = merge_annotations([per, gpe, org], tmp_path / "out", on_conflict="keep-longest")
    assert tags(docs_in(tmp_path / "out")[0]) == ["B-PERSON", "O", "O", "O", "B-GPE", "I-GPE", "O"]
    assert report["conflicts"] == 2 and report["spans"]["dropped_by_conflict"] == 2
    assert report["spans"]["written"] == 2
    problems = [json.loads(l) for l in (tmp_path / "out" / "merge-problems.jsonl").read_text().splitlines()]
    assert problems == [
        {"kind": "conflict", "input_hash": 101, "action": "kept longest",
         "kept": {"span": [16, 24, "GPE"], "text": "New York", "source": f"{gpe}:1"},
         "dropped": {"span": [20, 24, "PERSON"], "text": "York", "source": f"{per}:1"}},
        {"kind": "conflict", "input_hash": 101, "action": "kept longest",
         "kept": {"span": [0, 4, "PERSON"], "text": "Anna", "source": f"{per}:1"},
         "dropped": {"span": [0, 4, "ORG"], "text": "Anna", "source": f"{org}:1"}},
    ]
    assert report["examples"]["conflict"] == problems


def test_identical_spans_are_kept_once(tmp_path: Path):
    a = write_jsonl(tmp_path / "a.jsonl", [task(TEXT, span(TEXT, "Bob", "PERSON"))])
    b = write_jsonl(tmp_path / "b.jsonl", [task(TEXT, span(TEXT, "Bob", "PERSON")), task(TEXT, span(TEXT, "Bob", "PERSON"))])
    report = merge_annotations([a, b], tmp_path / "out")  # default on_conflict=fail: duplicates are no conflict
    assert tags(docs_in(tmp_path / "out")[0]) == ["O", "O", "B-PERSON", "O", "O", "O", "O"]
    assert report["spans"]["duplicate"] == 2 and report["conflicts"] == 0


@pytest.mark.parametrize(
    "mode, expected, counts",
    [
        ("skip", ["O", "O", "O", "O", "B-GPE", "I-GPE", "O"], {"misaligned": 1, "misaligned_skipped": 1}),
        ("expand", ["B-PERSON", "O", "O", "O", "B-GPE", "I-GPE", "O"], {"misaligned": 1, "misaligned_expanded": 1}),
    ],
)
def test_misaligned_spans_skip_or_expand(tmp_path: Path, mode: str, expected: list, counts: dict):
    per = write_jsonl(tmp_path / "person.jsonl", [task(TEXT, {"start": 1, "end": 3, "label": "PERSON"})])  # "nn"
    gpe = write_jsonl(tmp_path / "gpe.jsonl", [task(TEXT, span(TEXT, "New York", "GPE"))])
    report = merge_annotations([per, gpe], tmp_path / "out", misaligned=mode)
    assert tags(docs_in(tmp_path / "out")[0]) == expected
    for key, value in counts.items():
        assert report["spans"][key] == value
    (event,) = report["examples"]["misaligned"]
    assert event["source"] == f"{per}:1" and event["span"] == [1, 3, "PERSON"] and event["text"] == "nn"
    assert event["action"] == ("skipped" if mode == "skip" else "expanded")


def test_misaligned_fails_by_default(tmp_path: Path):
    per = write_jsonl(tmp_path / "person.jsonl", [task(THIRD), task(TEXT, {"start": 1, "end": 3, "label": "PERSON"})])
    with pytest.raises(InputError, match=r"person.jsonl:2: span \[1, 3\) PERSON 'nn' is not on token boundaries"):
        merge_annotations([per], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_different_texts_for_one_hash_is_an_error(tmp_path: Path):
    a = write_jsonl(tmp_path / "a.jsonl", [task(TEXT)])
    b = write_jsonl(tmp_path / "b.jsonl", [task(OTHER), task(TEXT + " Again.", _input_hash=101)])
    with pytest.raises(InputError) as err:
        merge_annotations([a, b], tmp_path / "out")
    assert str(err.value) == f"{b}:2: _input_hash 101 has a different text here than at {a}:1"


def test_hash_computed_from_text_and_text_under_two_hashes_reported(tmp_path: Path):
    a = write_jsonl(tmp_path / "a.jsonl", [task(TEXT, span(TEXT, "Anna", "PERSON"), hashed=False)])
    b = write_jsonl(tmp_path / "b.jsonl", [task(TEXT, span(TEXT, "York", "GPE"), hashed=False)])
    report = merge_annotations([a, b], tmp_path / "out")
    assert report["texts"] == 1 and report["texts_under_several_hashes"] == 0  # grouped by computed hash
    assert tags(docs_in(tmp_path / "out")[0]) == ["B-PERSON", "O", "O", "O", "O", "B-GPE", "O"]
    c = write_jsonl(tmp_path / "c.jsonl", [task(TEXT, span(TEXT, "Bob", "PERSON"))])  # has _input_hash 101
    report = merge_annotations([a, c], tmp_path / "out2")
    assert report["texts"] == 2 and report["texts_under_several_hashes"] == 1
    (event,) = report["examples"]["text_under_several_hashes"]
    assert sorted(event["input_hashes"]) == sorted([text_hash(TEXT), 101])


def test_task_tokens_define_the_doc(tmp_path: Path):
    text = "New-York rocks"
    tokens = [{"text": "New-York", "start": 0, "end": 8, "id": 0, "ws": True},
              {"text": "rocks", "start": 9, "end": 14, "id": 1, "ws": False}]
    a = write_jsonl(tmp_path / "a.jsonl", [task(text, span(text, "New-York", "GPE"))])  # no tokens here
    b = write_jsonl(tmp_path / "b.jsonl", [task(text, tokens=tokens)])
    merge_annotations([a, b], tmp_path / "out")
    assert docs_in(tmp_path / "out") == [[("New-York", "B", "GPE"), ("rocks", "O", "")]]


def test_shards_are_bounded_and_in_first_seen_order(tmp_path: Path):
    a = write_jsonl(tmp_path / "a.jsonl", [task(THIRD), task(TEXT), task(OTHER)])
    report = merge_annotations([a], tmp_path / "out", shard_docs=2)
    assert report["shards"] == ["000000.spacy", "000001.spacy"]
    assert [len(DocBin().from_disk(tmp_path / "out" / s)) for s in report["shards"]] == [2, 1]
    assert [d[0][0] for d in docs_in(tmp_path / "out")] == ["Nobody", "Anna", "Carl"]


# --- the command line ------------------------------------------------------------------------------


def run_cli(*args) -> "object":
    return CliRunner().invoke(app, ["data", "merge-annotations", *map(str, args)])


def test_cli_merges_gzip_inputs_and_prints_summary(tmp_path: Path):
    per = write_jsonl(tmp_path / "person.jsonl.gz", [task(TEXT, span(TEXT, "Anna", "PERSON"))], gz=True)
    gpe = write_jsonl(tmp_path / "gpe.jsonl.gz", [task(TEXT, span(TEXT, "New York", "GPE"))], gz=True)
    result = run_cli(per, gpe, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "merged 2 tasks from 2 datasets into 1 docs (1 shards)" in result.output
    assert "coverage: 1 texts cover all 2 labels, 0 partial" in result.output
    assert tags(docs_in(tmp_path / "out")[0]) == ["B-PERSON", "O", "O", "O", "B-GPE", "I-GPE", "O"]


def test_cli_bad_input_exits_nonzero_with_one_line_and_keeps_old_output(tmp_path: Path, per_gpe):
    out = tmp_path / "out"
    assert run_cli(*per_gpe, "--out", out).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(task(TEXT)) + "\n" + '{"text": "x", "answer": "accept", "spans": [}\n')
    result = run_cli(per_gpe[0], bad, "--out", out)
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {bad}:2: malformed JSON")
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == before  # the previous merge is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl.gz", "gpe.jsonl", "out", "person.jsonl"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--on-conflict", "longest"], "error: --on-conflict: must be one of fail, keep-longest, got 'longest'"),
        (["--misaligned", "contract"], "error: --misaligned: must be one of fail, skip, expand, got 'contract'"),
    ],
)
def test_cli_rejects_unknown_modes(tmp_path: Path, per_gpe, args: list, message: str):
    result = run_cli(*per_gpe, "--out", tmp_path / "out", *args)
    assert result.exit_code == 1 and result.output.strip() == message


def test_cli_missing_input_file(tmp_path: Path, per_gpe):
    result = run_cli(*per_gpe, tmp_path / "nope.jsonl", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {tmp_path / 'nope.jsonl'}: file not found"
    assert not (tmp_path / "out").exists()
