"""NER corpora in, train/dev(/test) DocBins out.

Accepted forms (detected from the path):
- spaCy ``.spacy`` files, or folders of ``.spacy`` shards (e.g. ``lmao data merge-annotations`` output);
- CoNLL-2012 ``*_gold_conll`` files or folders of them (OntoNotes 5.0: the NE column holds bracketed
  ``(PERSON*`` ... ``*)`` spans);
- IOB/BIO CoNLL column files (token first, tag last; CoNLL-2003 and WNUT-17 style; whitespace-only
  lines break sentences; ``-DOCSTART-`` lines are skipped);
- Prodigy JSONL(.gz) with ``spans`` (accepted answers only).
Each bad line is an ``InputError`` naming the file, the line and the problem.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
from spacy.tokens import Doc
from spacy.training import biluo_tags_to_spans, iob_to_biluo
from spacy.vocab import Vocab

from ..common.errors import InputError, check_at_least
from ..storage.fileio import atomic_path, write_json
from .docbins import read_docs, write_docbin, write_pretraining_corpus
from .textfiles import read_jsonl, read_lines

PathLike = Union[str, Path]
_IOB_TAG = re.compile(r"^(O|[BIES]-\S+|[BILU]-\S+)$")
CONLL2012_NE_COLUMN = 10
CONLL2012_MIN_COLUMNS = 12

Sentence = Tuple[List[str], List[str], int]  # words, IOB tags, first line number


def detect_format(path: Path) -> str:
    name = path.name
    if path.is_dir():
        if any(path.rglob("*.spacy")):
            return "spacy"
        if any(path.rglob("*gold_conll")):
            return "conll2012"
        raise InputError(path, "folder holds neither .spacy shards nor *_gold_conll files")
    if name.endswith(".spacy"):
        return "spacy"
    if name.endswith("gold_conll"):
        return "conll2012"
    if name.endswith((".jsonl", ".jsonl.gz")):
        return "prodigy"
    return "iob"


def read_ner_docs(path: PathLike, vocab: Vocab, *, n_sents: int = 1) -> Iterator[Doc]:
    """Docs with gold ``ents`` from any accepted form; ``n_sents`` sentences are grouped per doc."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    fmt = detect_format(path)
    if fmt == "spacy":
        yield from read_docs(path, vocab)
    elif fmt == "prodigy":
        from .prodigy import read_prodigy_ner

        yield from read_prodigy_ner(path, spacy.blank("en", vocab=vocab))
    else:
        files = sorted(path.rglob("*gold_conll")) if path.is_dir() else [path]
        for file in files:
            sentences = read_conll2012(file) if fmt == "conll2012" else read_iob(file)
            yield from _group_docs(vocab, file, sentences, n_sents)


def _group_docs(vocab: Vocab, file: Path, sentences: Iterable[Sentence], n_sents: int) -> Iterator[Doc]:
    group: List[Sentence] = []
    for sentence in sentences:
        group.append(sentence)
        if len(group) >= n_sents:
            yield _doc_from_sentences(vocab, file, group)
            group = []
    if group:
        yield _doc_from_sentences(vocab, file, group)


def _doc_from_sentences(vocab: Vocab, file: Path, group: Sequence[Sentence]) -> Doc:
    words = [w for sentence in group for w in sentence[0]]
    tags = [t for sentence in group for t in sentence[1]]
    sent_starts = [i == 0 for sentence in group for i in range(len(sentence[0]))]
    doc = Doc(vocab, words=words, sent_starts=sent_starts)
    try:
        doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(tags))
    except ValueError as err:
        raise InputError(file, f"entity tags do not form valid spans ({err})", group[0][2]) from None
    return doc


def read_sentences(path: Path, token: Callable[[str, int], Optional[Tuple[str, str]]],
                   sentence_end: Callable[[Optional[int]], None] = lambda line_no: None) -> Iterator[Sentence]:
    """The sentence loop of every column format: whitespace-only lines end a sentence.

    ``token(line, line_no)`` turns any other line into ``(word, IOB tag)``, or None for a line that
    carries no token (``-DOCSTART-``, ``#`` comments); it raises ``InputError`` for a bad line.
    ``sentence_end(line_no)`` runs at each blank line and once at the end of the file (``None``), to
    check state a format keeps across lines."""
    words: List[str] = []
    tags: List[str] = []
    start = 0
    n_sentences = 0
    for line_no, line in read_lines(path):
        if line.strip():
            item = token(line, line_no)
            if item is not None:
                if not words:
                    start = line_no
                words.append(item[0])
                tags.append(item[1])
            continue
        sentence_end(line_no)
        if words:
            yield words, tags, start
            n_sentences += 1
        words, tags = [], []
    sentence_end(None)
    if words:
        yield words, tags, start
        n_sentences += 1
    if n_sentences == 0:
        raise InputError(path, "empty file: no sentences")


def read_iob(path: Path) -> Iterator[Sentence]:
    """Column files: token in the first column, IOB/BIO tag in the last; one consistent column count."""
    n_columns: Optional[int] = None

    def token(line: str, line_no: int) -> Optional[Tuple[str, str]]:
        nonlocal n_columns
        columns = line.rstrip("\n").split("\t") if "\t" in line else line.split()
        columns = [c.strip() for c in columns]
        if columns[0] == "-DOCSTART-":
            return None
        if len(columns) < 2:
            raise InputError(path, f"expected 'token<TAB>tag', found {len(columns)} column", line_no)
        if n_columns is None:
            n_columns = len(columns)
        elif len(columns) != n_columns:
            raise InputError(
                path, f"wrong column count: {len(columns)} columns, the file started with {n_columns}",
                line_no)
        tag = columns[-1]
        if not _IOB_TAG.match(tag):
            raise InputError(path, f"bad NER tag {tag!r} (expected O, B-TYPE or I-TYPE)", line_no)
        return columns[0], _to_iob(tag)

    return read_sentences(path, token)


def _to_iob(tag: str) -> str:
    """BILUO/IOBES tags -> IOB, so one converter handles every scheme."""
    if tag == "O":
        return tag
    prefix, label = tag.split("-", 1)
    return ("B-" if prefix in ("B", "U", "S") else "I-") + label


def read_conll2012(path: Path) -> Iterator[Sentence]:
    """OntoNotes ``*_gold_conll``: word in column 3, bracketed named entities in column 10."""
    open_label: Optional[str] = None

    def token(line: str, line_no: int) -> Optional[Tuple[str, str]]:
        nonlocal open_label
        if line.startswith("#"):
            return None
        columns = line.split()
        if len(columns) < CONLL2012_MIN_COLUMNS:
            raise InputError(path, f"wrong column count: {len(columns)} columns, CoNLL-2012 has at "
                                   f"least {CONLL2012_MIN_COLUMNS}", line_no)
        cell = columns[CONLL2012_NE_COLUMN]
        if cell.startswith("("):
            if open_label is not None:
                raise InputError(path, f"nested entity {cell!r} inside ({open_label}", line_no)
            label = cell[1:].rstrip("*)")
            if not label:
                raise InputError(path, f"entity bracket {cell!r} has no label", line_no)
            open_label = None if cell.endswith(")") else label
            return columns[3], f"B-{label}"
        if cell == "*":
            return columns[3], f"I-{open_label}" if open_label else "O"
        if cell == "*)":
            if open_label is None:
                raise InputError(path, "entity closes with '*)' but none is open", line_no)
            label, open_label = open_label, None
            return columns[3], f"I-{label}"
        raise InputError(path, f"bad named-entity cell {cell!r}", line_no)

    def sentence_end(line_no: Optional[int]) -> None:
        if open_label is not None:
            where = "before the sentence ends" if line_no is not None else "at the end of the file"
            raise InputError(path, f"entity ({open_label} is not closed {where}", line_no)

    return read_sentences(path, token, sentence_end)


def read_raw_texts(path: Path) -> Iterator[str]:
    """Raw text for pretraining: ``.txt`` (one doc per line) or JSONL(.gz) rows with ``text`` (or Reddit's
    ``body``)."""
    if not path.name.endswith((".jsonl", ".jsonl.gz")):
        yield from (line.rstrip("\n") for _, line in read_lines(path) if line.strip())
        return
    for line_no, row in read_jsonl(path):
        text = row.get("text", row.get("body")) if isinstance(row, dict) else None
        if not isinstance(text, str):
            raise InputError(path, "row has no 'text' (or 'body') string", line_no)
        yield text


def prepare_ner(
    train: PathLike,
    dev: PathLike,
    out_dir: PathLike,
    *,
    test: Optional[PathLike] = None,
    raw: Optional[PathLike] = None,
    n_sents: int = 1,
    max_train_docs: int = 0,
    max_dev_docs: int = 0,
    max_pretrain_docs: int = 0,
    lang: str = "en",
) -> Dict[str, object]:
    """Write ``train.spacy``, ``dev.spacy`` (``test.spacy``), ``pretrain/`` shards and ``manifest.json``.

    Without ``raw``, the pretraining corpus is the text of the training docs (no labels): the corpus's own
    text, as a domain-matched but small alternative to a large raw-text corpus (the protocol used Reddit
    comments). Never the dev docs' text: that is what the trials are scored on.
    """
    check_at_least("--n-sents", n_sents, 1)
    for option, value in (("--max-train-docs", max_train_docs), ("--max-dev-docs", max_dev_docs),
                          ("--max-pretrain-docs", max_pretrain_docs)):
        check_at_least(option, value, 0, "0 = all")
    nlp = spacy.blank(lang)
    out_dir = Path(out_dir)
    labels: Dict[str, int] = {}

    def take(docs: Iterator[Doc], limit: int) -> List[Doc]:
        out: List[Doc] = []
        for doc in docs:
            if limit and len(out) >= limit:
                break
            for ent in doc.ents:
                labels[ent.label_] = labels.get(ent.label_, 0) + 1
            out.append(doc)
        return out

    train_docs = take(read_ner_docs(train, nlp.vocab, n_sents=n_sents), max_train_docs)
    dev_docs = take(read_ner_docs(dev, nlp.vocab, n_sents=n_sents), max_dev_docs)
    test_docs = take(read_ner_docs(test, nlp.vocab, n_sents=n_sents), 0) if test else None
    if not train_docs:
        raise InputError(train, "no training documents")
    if not dev_docs:
        raise InputError(dev, "no development documents")
    if raw:
        raw_texts: Iterable[str] = read_raw_texts(Path(raw))
    else:
        raw_texts = (doc.text for doc in train_docs)
    with atomic_path(out_dir, is_dir=True) as tmp:
        counts = {"train": write_docbin(train_docs, tmp / "train.spacy"),
                  "dev": write_docbin(dev_docs, tmp / "dev.spacy")}
        if test_docs is not None:
            counts["test"] = write_docbin(test_docs, tmp / "test.spacy")
        if max_pretrain_docs:
            raw_texts = itertools.islice(raw_texts, max_pretrain_docs)
        counts["pretrain"], pretrain_words = write_pretraining_corpus(
            nlp.pipe(raw_texts, batch_size=256), tmp / "pretrain")
        if raw and not counts["pretrain"]:
            raise InputError(raw, "empty file: no texts for pretraining")
        manifest = {
            "kind": "ner",
            "task": "ner",
            "labels": sorted(labels),
            "label_counts": dict(sorted(labels.items())),
            "sources": {"train": str(train), "dev": str(dev), "test": str(test) if test else None,
                        "raw": str(raw) if raw else None},
            "n_sents": n_sents,
            "pretrain_text": "raw" if raw else "train",  # where the pretraining shards' text came from
            "docs": counts,
            "pretrain_words": pretrain_words,
        }
        write_json(tmp / "manifest.json", manifest)
    return manifest
