"""The one reader of line-based corpus files (experiments/data/textfiles.py), as each corpus reader sees it:
gzip is found by its magic bytes whatever the file is called, and a bad file is one InputError naming it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import spacy

from experiments.data.imdb import read_jsonl as read_imdb_jsonl
from experiments.data.ner import read_conll2012, read_iob, read_raw_texts
from experiments.data.prodigy import iter_tasks
from experiments.common.errors import InputError

IMDB_ROWS = [{"text": f"review {i}", "label": "pos", "split": "train"} for i in range(400)]
PRODIGY_ROWS = [{"text": f"text {i}", "answer": "accept", "spans": []} for i in range(400)]
IOB = "".join(f"word{i}\tO\nWord\tB-PER\n\n" for i in range(400))
CONLL2012 = "".join(f"doc 0 {i} w{i} NN * - - - - * -\n\n" for i in range(400))


def _jsonl(rows):
    return "".join(json.dumps(row) + "\n" for row in rows)


READERS = [
    ("imdb", lambda p: list(read_imdb_jsonl(p)), _jsonl(IMDB_ROWS), "data.jsonl"),
    ("prodigy", lambda p: list(iter_tasks(p)), _jsonl(PRODIGY_ROWS), "data.jsonl"),
    ("raw", lambda p: list(read_raw_texts(p)), _jsonl(IMDB_ROWS), "data.jsonl"),
    ("iob", lambda p: list(read_iob(p)), IOB, "data.iob"),
    ("conll2012", lambda p: list(read_conll2012(p)), CONLL2012, "data_gold_conll"),
]


@pytest.mark.parametrize("name,read,text,file_name", READERS, ids=[r[0] for r in READERS])
def test_gzip_by_magic_bytes_not_by_name(tmp_path: Path, name, read, text, file_name):
    plain, packed = tmp_path / file_name, tmp_path / f"packed-{file_name}"  # no .gz suffix on either
    plain.write_text(text, encoding="utf-8")
    packed.write_bytes(gzip.compress(text.encode("utf-8")))
    assert len(read(plain)) == 400
    assert read(packed) == read(plain)


@pytest.mark.parametrize("name,read,text,file_name", READERS, ids=[r[0] for r in READERS])
def test_truncated_gzip_names_file_and_line(tmp_path: Path, name, read, text, file_name):
    path = tmp_path / f"{file_name}.gz"
    data = gzip.compress(text.encode("utf-8"))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="unreadable gzip data") as err:
        read(path)
    assert err.value.path == str(path) and err.value.line is not None and err.value.line > 1


@pytest.mark.parametrize("name,read,text,file_name", READERS, ids=[r[0] for r in READERS])
def test_not_utf8_names_file_and_line(tmp_path: Path, name, read, text, file_name):
    path = tmp_path / file_name
    lines = text.encode("utf-8").splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]) + b"caf\xe9\n" + b"".join(lines[4:]))
    with pytest.raises(InputError, match="not UTF-8 text") as err:
        read(path)
    assert err.value.path == str(path) and err.value.line == 5


def test_malformed_json_gives_the_parser_message(tmp_path: Path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(_jsonl(PRODIGY_ROWS[:2]) + '{"text": "x", answer: 1}\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        list(iter_tasks(path))
    assert str(err.value) == f"{path}:3: malformed JSON (Expecting property name enclosed in double quotes)"


def test_prodigy_ner_reads_gzip_without_suffix(tmp_path: Path):
    path = tmp_path / "tasks.jsonl"
    rows = [{"text": "Ada lives here", "answer": "accept", "spans": [{"start": 0, "end": 3, "label": "PER"}]}]
    path.write_bytes(gzip.compress(_jsonl(rows).encode("utf-8")))
    from experiments.data.prodigy import read_prodigy_ner

    (doc,) = read_prodigy_ner(path, spacy.blank("en"))
    assert [(e.text, e.label_) for e in doc.ents] == [("Ada", "PER")]
