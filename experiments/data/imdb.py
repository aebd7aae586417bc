"""IMDB-1k: the protocol's splits of the Maas et al. (2011) reviews, as tokenized DocBins.

Protocol: sort the train reviews by id, shuffle them with a fixed seed, take the first ``n_train`` as the
training set and the last ``n_dev`` as the development set. The test split is tokenized and kept aside
(``test.spacy``); only ``lmao trial --final`` reads it. The pretraining corpus is the *text* of the
train and test reviews (optionally the 50k unlabelled ones too), tokenized once into shards.

Sources: a JSONL(.gz) of ``{"text", "label", "split"}`` rows, an extracted ``aclImdb/`` folder, or the
official ``aclImdb_v1.tar.gz`` (a local path or the URL, downloaded with a checksum).
"""

from __future__ import annotations

import random
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

from ..common.errors import InputError, check_at_least
from ..storage.fileio import atomic_path, write_json
from . import docbins
from .textfiles import read_jsonl as read_jsonl_rows
from .tokenized import DocBinJob, TokenizedTexts
from .download import download

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_CHECKSUM = "md5:7c2ac02c03563afcf9b574c7e56c153a"
LABELS = {"pos": "POSITIVE", "neg": "NEGATIVE"}
SPLITS = ("train", "test", "unsup")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_FILE_NAME = re.compile(r"(?:^|/)(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")


@dataclass(frozen=True)
class Review:
    id: str
    text: str
    label: Optional[str]  # "pos", "neg" or None (unsup)
    split: str


def read_jsonl(path: Path) -> Iterator[Review]:
    """Rows ``{"text", "label", "split"[, "id"]}``; any bad line is an InputError naming the line."""
    n = 0
    for line_no, row in read_jsonl_rows(path):
        yield _review_from_row(row, path, line_no)
        n += 1
    if n == 0:
        raise InputError(path, "empty file: no reviews")


def _review_from_row(row: object, path: Path, line_no: int) -> Review:
    if not isinstance(row, dict):
        raise InputError(path, f"expected a JSON object, got {type(row).__name__}", line_no)
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError(path, "missing or empty 'text'", line_no)
    split = row.get("split")
    if split not in SPLITS:
        raise InputError(path, f"unknown split {split!r} (expected one of {list(SPLITS)})", line_no)
    label = row.get("label")
    if split == "unsup":
        if label is not None:
            raise InputError(path, f"unsup row has label {label!r} (expected null)", line_no)
    elif label not in LABELS:
        raise InputError(path, f"unknown label {label!r} (expected 'pos' or 'neg')", line_no)
    review_id = str(row.get("id") or f"{split}/{label or 'unsup'}/line{line_no}")
    return Review(review_id, text, label, split)


def _review_from_member(name: str, data: bytes) -> Optional[Review]:
    match = _FILE_NAME.search(name)
    if not match:
        return None
    folder, label_dir, number, rating = match.groups()
    split = "unsup" if label_dir == "unsup" else folder
    label = None if label_dir == "unsup" else label_dir
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(name, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    return Review(f"{folder}/{label_dir}/{number}_{rating}", text, label, split)


def read_folder(path: Path) -> Iterator[Review]:
    """An extracted ``aclImdb/`` folder (or a folder that contains it)."""
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    files = sorted(root.glob("*/*/*.txt"))
    if not files:
        raise InputError(path, "no aclImdb review files (expected train/pos/*.txt, ...)")
    for file in files:
        review = _review_from_member(file.relative_to(root).as_posix(), file.read_bytes())
        if review is not None:
            yield review


def read_tarball(path: Path) -> Iterator[Review]:
    """The official ``aclImdb_v1.tar.gz``, streamed without extracting to disk."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".txt"):
                    handle = tar.extractfile(member)
                    if handle is None:
                        continue
                    review = _review_from_member(member.name, handle.read())
                    if review is not None:
                        yield review
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:  # corrupt, or a truncated .tar.gz
        raise InputError(path, f"not a readable tar archive ({type(err).__name__}: {err})") from None


def read_reviews(source: Union[str, Path]) -> Iterator[Review]:
    """Dispatch on the source's form: URL, tarball, folder or JSONL."""
    source_str = str(source)
    if source_str.startswith(("http://", "https://")):
        checksum = IMDB_CHECKSUM if source_str == IMDB_URL else None
        return read_tarball(download(source_str, checksum=checksum))
    path = Path(source)
    if not path.exists():
        raise InputError(path, "not found (give a JSONL(.gz), an aclImdb/ folder, a .tar.gz or a URL)")
    if path.is_dir():
        return read_folder(path)
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return read_tarball(path)
    if path.name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        return read_jsonl(path)
    raise InputError(path, "unknown file type (expected .jsonl, .jsonl.gz, .tar.gz or a folder)")


def split_imdb_1k(train: List[Review], n_train: int, n_dev: int, seed: int) -> Dict[str, List[Review]]:
    """The protocol's split: sort by id, seeded shuffle, first ``n_train`` / last ``n_dev``."""
    if n_train + n_dev > len(train):
        raise InputError("--n-train", f"{n_train} + --n-dev {n_dev} exceeds the {len(train)} training reviews")
    ordered = _seeded_order(train, seed)
    return {"train": ordered[:n_train], "dev": ordered[len(ordered) - n_dev:]}


def _natural_id(review_id: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", review_id)]


def clean_text(text: str) -> str:
    """Turn the reviews' HTML line breaks into newlines (the text is otherwise unchanged)."""
    return _BR.sub("\n", text)


def review_cats(review: Review) -> Dict[str, float]:
    """Exclusive POSITIVE/NEGATIVE cats for a labelled review; none for an unlabelled one."""
    if review.label is None:
        return {}
    return {name: float(review.label == key) for key, name in LABELS.items()}


def select_reviews(source: Union[str, Path], *, n_train: int, n_dev: int, seed: int, include_unsup: bool,
                   max_pretrain_docs: int, n_test: int) -> Dict[str, List[Review]]:
    """Which reviews go into ``train``, ``dev``, ``test`` and ``pretrain`` (in file order).

    train/dev: :func:`split_imdb_1k`. test: the whole test split, or a seeded sample of ``n_test`` for
    small runs. pretrain: the text of the train and test reviews (and unsup ones with
    ``include_unsup``), in a seeded mixed order so pretraining batches see both labels, cut to
    ``max_pretrain_docs`` when that is not 0."""
    check_at_least("--n-train", n_train, 1)
    check_at_least("--n-dev", n_dev, 1)
    check_at_least("--n-test", n_test, 0, "0 = all")
    check_at_least("--max-pretrain-docs", max_pretrain_docs, 0, "0 = all")
    reviews: Dict[str, List[Review]] = {split: [] for split in SPLITS}
    for review in read_reviews(source):
        reviews[review.split].append(review)
    if not reviews["train"]:
        raise InputError(source, "no reviews in the train split")
    if n_test > len(reviews["test"]):
        raise InputError("--n-test", f"{n_test} exceeds the {len(reviews['test'])} reviews of the test split")
    chosen = split_imdb_1k(reviews["train"], n_train, n_dev, seed)
    chosen["test"] = reviews["test"][:]
    if n_test:
        chosen["test"] = _seeded_order(reviews["test"], seed)[:n_test]
    pretrain = _seeded_order(reviews["train"] + reviews["test"] + (reviews["unsup"] if include_unsup else []), seed)
    chosen["pretrain"] = pretrain[:max_pretrain_docs] if max_pretrain_docs else pretrain
    return chosen


def _seeded_order(reviews: List[Review], seed: int) -> List[Review]:
    """Sorted by id, then shuffled with ``seed``: the same order whatever order the source had."""
    ordered = sorted(reviews, key=lambda r: _natural_id(r.id))
    random.Random(seed).shuffle(ordered)
    return ordered


def prepare_imdb(
    source: Union[str, Path],
    out_dir: Union[str, Path],
    *,
    n_train: int = 1000,
    n_dev: int = 10000,
    seed: int = 0,
    include_unsup: bool = False,
    max_pretrain_docs: int = 0,
    n_test: int = 0,
    lang: str = "en",
    n_process: int = 0,
) -> Dict[str, object]:
    """Write ``train.spacy``, ``dev.spacy``, ``test.spacy``, ``pretrain/`` shards and ``manifest.json``.

    Each distinct review text is tokenized once, on ``n_process`` cores (0 = all), and the same tokens
    serve its labelled split and the pretraining shards. The whole folder appears at once (built under a
    temporary name) or not at all.
    """
    check_at_least("--n-process", n_process, 0, "0 = every core")
    splits = select_reviews(source, n_train=n_train, n_dev=n_dev, seed=seed, include_unsup=include_unsup,
                            max_pretrain_docs=max_pretrain_docs, n_test=n_test)
    test, pretrain_reviews = splits["test"], splits["pretrain"]
    # Tokenize every distinct text once (train/dev/test reviews are also pretraining text).
    needed = splits["train"] + splits["dev"] + test + pretrain_reviews
    index: Dict[str, int] = {}
    for review in needed:
        index.setdefault(review.text, len(index))
    tokens = TokenizedTexts.tokenize([clean_text(text) for text in index], lang=lang, n_process=n_process,
                                     desc="tokenize")

    def job(path: Path, reviews: List[Review], *, labelled: bool) -> DocBinJob:
        return DocBinJob(path, [index[r.text] for r in reviews],
                         [review_cats(r) if labelled else {} for r in reviews])

    out_dir = Path(out_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        shard_docs = docbins.SHARD_DOCS
        shards = [pretrain_reviews[i:i + shard_docs] for i in range(0, len(pretrain_reviews), shard_docs)] or [[]]
        jobs = [job(tmp / "train.spacy", splits["train"], labelled=True),
                job(tmp / "dev.spacy", splits["dev"], labelled=True),
                job(tmp / "test.spacy", test, labelled=True)]
        jobs += [job(tmp / "pretrain" / f"{k:06d}.spacy", shard, labelled=False) for k, shard in enumerate(shards)]
        (tmp / "pretrain").mkdir(parents=True, exist_ok=True)
        written = tokens.write_docbins(jobs, n_process=n_process)
        counts = {"train": written[0][0], "dev": written[1][0], "test": written[2][0],
                  "pretrain": sum(n for n, _ in written[3:])}
        pretrain_words = sum(w for _, w in written[3:])
        manifest = {
            "kind": "imdb",
            "task": "textcat",
            "labels": sorted(LABELS.values()),
            "source": str(source),
            "seed": seed,
            "n_train": n_train,
            "n_dev": n_dev,
            "include_unsup": include_unsup,
            "max_pretrain_docs": max_pretrain_docs,
            "n_test": n_test,
            "docs": counts,
            "pretrain_words": pretrain_words,
            "train_ids_head": [r.id for r in splits["train"][:5]],
            "dev_ids_head": [r.id for r in splits["dev"][:5]],
        }
        write_json(tmp / "manifest.json", manifest)
    return manifest

