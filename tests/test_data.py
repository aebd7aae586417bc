"""Loaders: IMDB in every accepted form, NER formats, and one clear error for each kind of bad input."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import spacy

from experiments.data.docbins import read_docs, write_docbin
from experiments.data.imdb import prepare_imdb, read_reviews, split_imdb_1k
from experiments.data.ner import prepare_ner, read_ner_docs
from experiments.common.errors import InputError
from tests.imdb_oracle import reference_prepare_imdb

REPO = Path(__file__).resolve().parents[1]
VOCAB = spacy.blank("en").vocab


def review_rows(n_per_label: int = 6):
    rows = []
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            for i in range(n_per_label):
                word = "great" if label == "pos" else "awful"
                rows.append({"text": f"Review {i} was {word}.<br /><br />Truly {word}!", "label": label,
                             "split": split, "id": f"{split}/{label}/{i}_{8 if label == 'pos' else 2}"})
    rows += [{"text": f"unlabelled {i}", "label": None, "split": "unsup", "id": f"train/unsup/{i}_0"}
             for i in range(3)]
    return rows


def write_jsonl(path: Path, rows, *, raw_lines=()) -> Path:
    lines = [json.dumps(r) for r in rows] + list(raw_lines)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_imdb_protocol_split_is_seeded_and_disjoint(tmp_path):
    src = write_jsonl(tmp_path / "imdb.jsonl.gz", review_rows())
    m = prepare_imdb(src, tmp_path / "out", n_train=4, n_dev=5, seed=3)
    assert m["docs"] == {"train": 4, "dev": 5, "test": 12, "pretrain": 24}
    train = list(read_docs(tmp_path / "out" / "train.spacy", VOCAB))
    dev = list(read_docs(tmp_path / "out" / "dev.spacy", VOCAB))
    assert all(sum(d.cats.values()) == 1.0 and set(d.cats) == {"POSITIVE", "NEGATIVE"} for d in train + dev)
    assert not {d.text for d in train} & {d.text for d in dev}
    assert all("<br" not in d.text for d in train + dev)
    # Same seed -> same split; the protocol's "first N / last M" of one shuffled order.
    reviews = [r for r in read_reviews(src) if r.split == "train"]
    again = split_imdb_1k(reviews, 4, 5, seed=3)
    assert [r.id for r in again["train"]] == m["train_ids_head"][:4]
    other = split_imdb_1k(reviews, 4, 5, seed=4)
    assert [r.id for r in other["train"]] != [r.id for r in again["train"]]
    # Pretraining text has no labels.
    assert all(not d.cats for d in read_docs(tmp_path / "out" / "pretrain", VOCAB))


def test_imdb_unsup_and_caps(tmp_path):
    src = write_jsonl(tmp_path / "imdb.jsonl", review_rows())
    m = prepare_imdb(src, tmp_path / "u", n_train=2, n_dev=2, include_unsup=True, n_test=3)
    assert m["docs"]["pretrain"] == 27 and m["docs"]["test"] == 3
    m = prepare_imdb(src, tmp_path / "c", n_train=2, n_dev=2, max_pretrain_docs=5)
    assert m["docs"]["pretrain"] == 5


def _spacy_files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.spacy"))}


@pytest.mark.parametrize("n_process", [1, 2])
def test_imdb_tokenized_once_is_byte_identical_to_tokenizing_each_split(tmp_path, monkeypatch, n_process):
    """prepare_imdb tokenizes each distinct text once (in worker processes) and reuses the tokens for the
    labelled splits and the pretraining shards: the files are the same bytes as DocBin.add over docs
    tokenized split by split, in the same order, shards included."""
    from experiments.data import docbins

    rows = review_rows(n_per_label=9)
    # Text that exercises the tokenizer: leading quotes/punctuation, emoji, odd whitespace, URLs, a
    # duplicate text under two ids (tokenized once, written under both), and real reviews when present.
    odd = ["'Tis \"great\"... isn't it?<br/>Yes!!", "  Leading spaces\tand\ttabs\n\nend ", "😀 emoji :-) U.S.A.",
           "see http://example.com/x?y=1 & e-mail a@b.org", "Review 0 was great.<br /><br />Truly great!"]
    rows += [{"text": t, "label": ("pos", "neg")[i % 2], "split": ("train", "test")[i % 2],
              "id": f"{('train', 'test')[i % 2]}/odd/{i}_5"} for i, t in enumerate(odd)]
    imdb = REPO.parent / "shared" / "data" / "imdb" / "imdb.jsonl.gz"
    if imdb.exists():
        with gzip.open(imdb, "rt", encoding="utf-8") as f:
            rows += [json.loads(next(f)) for _ in range(60)]
    src = write_jsonl(tmp_path / "imdb.jsonl.gz", rows)
    monkeypatch.setattr(docbins, "SHARD_DOCS", 7)  # several pretraining shards, the last one partial
    for name, kwargs in [("a", dict(n_train=8, n_dev=10, seed=1, include_unsup=True)),
                         ("b", dict(n_train=3, n_dev=4, max_pretrain_docs=9, n_test=5))]:
        m = prepare_imdb(src, tmp_path / f"new-{name}", n_process=n_process, **kwargs)
        reference_prepare_imdb(src, tmp_path / f"ref-{name}", shard_docs=7, **kwargs)
        new, ref = _spacy_files(tmp_path / f"new-{name}"), _spacy_files(tmp_path / f"ref-{name}")
        assert len(ref) >= 5 and list(new) == list(ref)
        for file in ref:
            assert new[file] == ref[file], file
        pretrain = list(read_docs(tmp_path / f"new-{name}" / "pretrain", VOCAB))
        assert m["docs"]["pretrain"] == len(pretrain) and m["pretrain_words"] == sum(len(d) for d in pretrain)


def _add(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_imdb_folder_and_tarball_give_the_same_corpus(tmp_path):
    rows = review_rows(3)
    folder = tmp_path / "aclImdb"
    for r in rows:
        path = folder / (r["id"] + ".txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(r["text"], encoding="utf-8")
    tarball = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for r in rows:
            _add(tar, f"aclImdb/{r['id']}.txt", r["text"])
    jsonl = write_jsonl(tmp_path / "rows.jsonl", rows)
    outs = []
    for i, source in enumerate((folder, tmp_path, tarball, jsonl)):
        prepare_imdb(source, tmp_path / f"o{i}", n_train=2, n_dev=3, seed=0)
        outs.append([d.text for d in read_docs(tmp_path / f"o{i}" / "train.spacy", VOCAB)])
    assert outs[0] == outs[1] == outs[2] == outs[3]


@pytest.mark.parametrize("bad_line, problem", [
    ('{"text": "ok", "label": "pos", "split": "train"', "malformed JSON"),
    ('{"text": "ok", "label": "positive", "split": "train"}', "unknown label 'positive'"),
    ('{"text": "ok", "label": "pos", "split": "validation"}', "unknown split 'validation'"),
    ('{"label": "pos", "split": "train"}', "missing or empty 'text'"),
    ('{"text": "ok", "label": "pos", "split": "unsup"}', "unsup row has label"),
    ('["text", "pos"]', "expected a JSON object"),
])
def test_imdb_bad_lines_name_file_and_line(tmp_path, bad_line, problem):
    rows = review_rows(2)
    src = write_jsonl(tmp_path / "bad.jsonl", rows[:3], raw_lines=[bad_line])
    with pytest.raises(InputError) as err:
        prepare_imdb(src, tmp_path / "out", n_train=1, n_dev=1)
    assert str(err.value).startswith(f"{src}:4: ") and problem in str(err.value)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no half-written temp folder


def test_imdb_empty_file_and_too_few_reviews(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match=r"empty\.jsonl: empty file"):
        prepare_imdb(empty, tmp_path / "out", n_train=1, n_dev=1)
    src = write_jsonl(tmp_path / "few.jsonl", review_rows(2))
    with pytest.raises(ValueError, match="exceeds the 4 training reviews"):
        prepare_imdb(src, tmp_path / "out", n_train=3, n_dev=3)


def test_cli_bad_input_is_one_line(tmp_path):
    src = write_jsonl(tmp_path / "bad.jsonl", review_rows(1), raw_lines=["{oops"])
    done = subprocess.run([sys.executable, "-m", "experiments", "data", "imdb", str(src), str(tmp_path / "o"),
                           "--n-train", "1", "--n-dev", "1"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {src}:8: malformed JSON (Expecting property name enclosed in double quotes)"


# ---- NER -------------------------------------------------------------------------------------------

IOB = "-DOCSTART-\tO\n\nJohn\tB-person\nlives\tO\nin\tO\nNew\tB-location\nYork\tI-location\n\t\nHi\tO\nAcme\tI-corporation\n"


def test_iob_reader_exact_docs(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(IOB, encoding="utf-8")
    docs = list(read_ner_docs(path, VOCAB))
    assert [[t.text for t in d] for d in docs] == [["John", "lives", "in", "New", "York"], ["Hi", "Acme"]]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("John", "person"), ("New York", "location")]
    assert [(e.text, e.label_) for e in docs[1].ents] == [("Acme", "corporation")]  # IOB1 start accepted
    grouped = list(read_ner_docs(path, VOCAB, n_sents=2))
    assert len(grouped) == 1 and len(list(grouped[0].sents)) == 2


CONLL2012 = """#begin document (bc/cctv/00/cctv_0001); part 000
bc/cctv/00/cctv_0001   0   0   Mary   NNP  (TOP(S(NP*  -  -  -  Speaker#1  (PERSON*  *  -
bc/cctv/00/cctv_0001   0   1   Smith  NNP  *)         -  -  -  Speaker#1  *)  *  -
bc/cctv/00/cctv_0001   0   2   visited VBD (VP*       -  -  -  Speaker#1  *  *  -
bc/cctv/00/cctv_0001   0   3   Paris  NNP  (NP*)      -  -  -  Speaker#1  (GPE)  *  -
bc/cctv/00/cctv_0001   0   4   .      .    *))        -  -  -  Speaker#1  *  *  -

bc/cctv/00/cctv_0001   0   0   Bye    UH   (TOP*))    -  -  -  Speaker#1  *  *  -

#end document
"""


def test_conll2012_reader_exact_docs(tmp_path):
    path = tmp_path / "a_gold_conll"
    path.write_text(CONLL2012, encoding="utf-8")
    docs = list(read_ner_docs(path, VOCAB))
    assert [d.text for d in docs] == ["Mary Smith visited Paris . ", "Bye "]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Mary Smith", "PERSON"), ("Paris", "GPE")]
    folder = tmp_path / "onto"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b_gold_conll").write_text(CONLL2012, encoding="utf-8")
    assert len(list(read_ner_docs(folder, VOCAB))) == 2


@pytest.mark.parametrize("name, text, line, problem", [
    ("a.conll", "John\tB-person\nSmith\n", 2, "found 1 column"),
    ("b.conll", "John\tNNP\tB-person\nSmith\tI-person\n", 2, "wrong column count: 2 columns"),
    ("c.conll", "John\tB-person\nSmith\tX-person\n", 2, "bad NER tag 'X-person'"),
    ("d_gold_conll", CONLL2012.replace("(GPE)", "(GPE*"), 7, "(GPE is not closed before the sentence ends"),
    ("e_gold_conll", CONLL2012.replace("*)  *  -\nbc/cctv/00/cctv_0001   0   2", "*  *  -\nbc/cctv/00/cctv_0001   0   2"),
     5, "nested entity '(GPE)' inside (PERSON"),
    ("f_gold_conll", CONLL2012.replace("(PERSON*", "*"), 3, "none is open"),
    ("g_gold_conll", "doc 0 0 Mary NNP * - - -\n", 1, "wrong column count: 9 columns"),
])
def test_ner_bad_input_names_file_and_line(tmp_path, name, text, line, problem):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        list(read_ner_docs(path, VOCAB))
    assert str(err.value).startswith(f"{path}:{line}: ") and problem in str(err.value)


def test_ner_empty_file_and_unreadable_docbin(tmp_path):
    empty = tmp_path / "empty.conll"
    empty.write_text("\n\t\n")
    with pytest.raises(InputError, match="empty file"):
        list(read_ner_docs(empty, VOCAB))
    junk = tmp_path / "junk.spacy"
    junk.write_bytes(b"not a docbin")
    with pytest.raises(InputError, match=r"junk\.spacy: not a readable spaCy DocBin"):
        list(read_ner_docs(junk, VOCAB))


def test_prodigy_misaligned_span_is_an_error(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"text": "Acme Corp rocks", "spans": [{"start": 0, "end": 3, "label": "ORG"}],
                                "answer": "accept"}) + "\n")
    with pytest.raises(InputError) as err:
        list(read_ner_docs(path, VOCAB))
    assert str(err.value).startswith(f"{path}:1: ") and "not on token boundaries" in str(err.value)


def test_prepare_ner_from_every_form(tmp_path, shared_data):
    iob = tmp_path / "train.conll"
    iob.write_text(IOB, encoding="utf-8")
    prodigy = tmp_path / "dev.jsonl"
    prodigy.write_text(json.dumps({"text": "Mary went to Paris", "spans": [
        {"start": 0, "end": 4, "label": "person"}, {"start": 13, "end": 18, "label": "location"}]}) + "\n")
    m = prepare_ner(iob, prodigy, tmp_path / "a")
    assert m["docs"] == {"train": 2, "dev": 1, "pretrain": 2} and m["labels"] == ["corporation", "location", "person"]
    # without --raw, the training docs' text only: never the dev text the trials are scored on
    pretrain = [d.text for d in read_docs(tmp_path / "a" / "pretrain", VOCAB)]
    train_text = [d.text for d in read_docs(tmp_path / "a" / "train.spacy", VOCAB)]
    assert pretrain == train_text and m["pretrain_text"] == "train"
    dev = list(read_docs(tmp_path / "a" / "dev.spacy", VOCAB))
    assert [(e.text, e.label_) for e in dev[0].ents] == [("Mary", "person"), ("Paris", "location")]
    # .spacy in, and raw text for pretraining from JSONL with Reddit's 'body'.
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(json.dumps({"body": f"comment number {i}"}) for i in range(7)) + "\n")
    m = prepare_ner(tmp_path / "a" / "train.spacy", tmp_path / "a" / "dev.spacy", tmp_path / "b", raw=raw)
    assert m["docs"]["pretrain"] == 7 and m["pretrain_words"] == 21
    # The real WNUT-17 files: counts from the data README.
    wnut = shared_data / "ner" / "wnut17"
    m = prepare_ner(wnut / "wnut17train.conll", wnut / "emerging.dev.conll", tmp_path / "w",
                    test=wnut / "emerging.test.annotated")
    assert m["docs"]["train"] == 3394 and m["docs"]["dev"] == 1009 and m["docs"]["test"] == 1287
    assert sum(m["label_counts"].values()) == 1975 + 836 + 1079


def test_docbin_roundtrip_and_shards(tmp_path):
    nlp = spacy.blank("en")
    docs = [nlp(f"doc number {i}") for i in range(5)]
    from experiments.data.docbins import write_shards

    assert write_shards(docs, tmp_path / "shards", shard_docs=2) == 5
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["000000.spacy", "000001.spacy", "000002.spacy"]
    assert [d.text for d in read_docs(tmp_path / "shards", VOCAB)] == [d.text for d in docs]
    write_docbin(docs, tmp_path / "one.spacy")
    assert len(list(read_docs(tmp_path / "one.spacy", VOCAB))) == 5


def test_available_cores_respects_a_cgroup_cpu_limit(tmp_path):
    from experiments.data.tokenized import available_cores, cgroup_cpu_quota

    assert cgroup_cpu_quota(tmp_path) is None  # no cgroup files: unlimited
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # a pod limited to 1.5 CPUs
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.0
    assert 1 <= available_cores() <= (os.cpu_count() or 1)
