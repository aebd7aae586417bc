"""Tokenize texts once, on every core, and write tokenizer-only DocBins from the result.

``lmao data imdb`` needs the same review in two places (a labelled split and the pretraining shards) and
spends most of its time in the tokenizer and in ``DocBin.add``'s per-token Python loop. Here each distinct
text is tokenized once, by forked worker processes, into its token hashes (ORTH, NORM) and spaces; the
DocBins are then assembled from those arrays, again on every core (the workers are forked after
tokenizing, so they read the arrays without copying them).

The files are byte-identical to ``DocBin.add`` over the same docs (``tests/test_data.py`` compares them):
for a tokenizer-only pipeline the string-valued columns other than ORTH and NORM (TAG, LEMMA, MORPH, DEP,
ENT_*) are 0, so every other string it collects per token (``tag_``, ``lemma_``, ``str(morph)``, ...) is
``""``; the workers check that and fail loudly otherwise. The few nonzero numeric cells (SENT_START) are
carried as they are. ``user_data`` is not stored (as
``write_docbin``'s default), and docs carry no spans and known spaces.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy
import spacy
import srsly
from spacy.attrs import DEP, ENT_ID, ENT_KB_ID, ENT_TYPE, LEMMA, MORPH, NORM, ORTH, SPACY, TAG
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ..common.progress import progress

CHUNK_TEXTS = 256  # texts per task sent to a worker


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota (a Kubernetes pod's
    CPU limit shows only there: the affinity still lists every core of the node)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> Optional[float]:
    """The CPU limit in cores from cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``; None when unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


class Tokens(NamedTuple):
    """One tokenized text: its DocBin columns, compactly (the other columns are 0 but ``extra``)."""

    orth: numpy.ndarray
    norm: numpy.ndarray
    spaces: numpy.ndarray
    extra: Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]  # rows, columns, values of other nonzero cells


@dataclass(frozen=True)
class DocBinJob:
    """One ``.spacy`` file: which tokenized texts, in which order, with which ``doc.cats`` each."""

    path: Path
    indices: Sequence[int]
    cats: Sequence[Dict[str, float]]


# What forked workers read (set in the parent just before forking, cleared after).
_WORKER: Dict[str, object] = {}


def _docbin_layout() -> Tuple[List[int], int, int]:
    attrs = DocBin().attrs
    return attrs, attrs.index(ORTH), attrs.index(NORM)


# DocBin.add collects the string of each of these per token; ORTH and NORM are the only ones a tokenizer sets.
_STRING_ATTRS = (TAG, LEMMA, MORPH, DEP, ENT_TYPE, ENT_KB_ID, ENT_ID)


def _tokenize_chunk(texts: List[str]) -> Tuple[List[Tokens], Dict[int, str]]:
    nlp = _WORKER["nlp"]
    attrs, orth_col, norm_col = _docbin_layout()
    string_cols = [attrs.index(attr) for attr in _STRING_ATTRS]
    out = []
    for doc in nlp.pipe(texts):  # type: ignore[attr-defined]
        full = doc.to_array(attrs).reshape((len(doc), len(attrs)))
        if full[:, string_cols].any() or doc.spans or doc.has_unknown_spaces:
            raise ValueError("tokenized docs carry annotations (tags, entities, spans): not a tokenizer-only pipeline")
        orth = numpy.ascontiguousarray(full[:, orth_col])
        norm = numpy.ascontiguousarray(full[:, norm_col])
        full[:, [orth_col, norm_col]] = 0
        rows, cols = numpy.nonzero(full)  # numeric columns the tokenizer set (SENT_START of a first token)
        out.append(Tokens(orth, norm, numpy.asarray(doc.to_array(SPACY), dtype=bool),
                          (rows.astype("int32"), cols.astype("int8"), full[rows, cols])))
    strings = nlp.vocab.strings  # type: ignore[attr-defined]
    hashes = numpy.unique(numpy.concatenate([a for t in out for a in (t.orth, t.norm)] or [numpy.zeros(0, "uint64")]))
    return out, {h: strings[h] for h in hashes.tolist()}


def _write_job(job: DocBinJob) -> Tuple[int, int]:
    store: TokenizedTexts = _WORKER["store"]  # type: ignore[assignment]
    return store._write_one(job)


class TokenizedTexts:
    """Texts tokenized once: per text its ORTH and NORM hashes and its spaces, plus the strings."""

    def __init__(self) -> None:
        self.docs: List[Tokens] = []
        self.strings: Dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.docs)

    def n_tokens(self, i: int) -> int:
        return len(self.docs[i].orth)

    @classmethod
    def tokenize(cls, texts: Sequence[str], *, lang: str = "en", n_process: int = 0,
                 desc: str = "tokenize") -> "TokenizedTexts":
        """Tokenize ``texts`` (in order) with ``spacy.blank(lang)``; ``n_process`` 0 = every core."""
        store = cls()
        chunks = [list(texts[i:i + CHUNK_TEXTS]) for i in range(0, len(texts), CHUNK_TEXTS)]
        _WORKER["nlp"] = spacy.blank(lang)
        try:
            for docs, strings in progress(_map(_tokenize_chunk, chunks, n_process, ordered=True),
                                          desc=desc, total=len(chunks), unit="chunk"):
                store.docs.extend(docs)
                store.strings.update(strings)
        finally:
            _WORKER.clear()
        return store

    def write_docbins(self, jobs: Sequence[DocBinJob], *, n_process: int = 0) -> List[Tuple[int, int]]:
        """Write every job's DocBin (in parallel); returns (docs, words) per job, in the jobs' order."""
        # Largest first, so the workers finish together.
        order = sorted(range(len(jobs)), key=lambda j: -sum(self.n_tokens(i) for i in jobs[j].indices))
        _WORKER["store"] = self
        try:
            done = list(_map(_write_job, [jobs[j] for j in order], n_process, ordered=True))
        finally:
            _WORKER.clear()
        results: List[Optional[Tuple[int, int]]] = [None] * len(jobs)
        for j, result in zip(order, done):
            results[j] = result
        return results  # type: ignore[return-value]

    def _write_one(self, job: DocBinJob) -> Tuple[int, int]:
        """What ``DocBin.add`` per doc then ``DocBin.to_disk`` write, built straight into one token array
        (``DocBin.to_bytes`` would stack per-doc copies: a 25k-review file holds ~0.7 GB of columns)."""
        template = DocBin()
        attrs, orth_col, norm_col = _docbin_layout()
        empty_spans = Doc(Vocab(), words=[]).spans.to_bytes()  # what DocBin.add stores for a doc without spans
        lengths = numpy.asarray([self.n_tokens(i) for i in job.indices], dtype="int32")
        words = int(lengths.sum())
        tokens = numpy.zeros((words, len(attrs)), dtype="uint64")
        spaces = numpy.zeros((words, 1), dtype=bool)
        start = 0
        for i in job.indices:
            orth, norm, doc_spaces, (rows, cols, values) = self.docs[i]
            end = start + len(orth)
            tokens[start:end, orth_col] = orth
            tokens[start:end, norm_col] = norm
            tokens[start + rows, cols] = values
            spaces[start:end, 0] = doc_spaces
            start = end
        strings: List[str] = []
        if words:  # DocBin.add collects "" for every empty tag_, lemma_, dep_, ... of a token
            hashes = numpy.unique(numpy.concatenate([tokens[:, orth_col], tokens[:, norm_col]]))
            strings = sorted({self.strings[h] for h in hashes.tolist()} | {""})
        n = len(job.indices)
        msg = {  # DocBin.to_bytes's message, field for field
            "version": template.version,
            "attrs": attrs,
            "tokens": tokens.tobytes("C"),
            "spaces": spaces.tobytes("C"),
            "lengths": lengths.tobytes("C"),
            "strings": strings,
            "cats": [dict(cats) for cats in job.cats],
            "flags": [{"has_unknown_spaces": False} for _ in range(n)],
            "span_groups": [empty_spans] * n,
        }
        if len(msg["cats"]) != n:
            raise ValueError(f"{job.path}: {n} docs but {len(msg['cats'])} cats")
        del tokens, spaces
        data = zlib.compress(srsly.msgpack_dumps(msg))
        Path(job.path).parent.mkdir(parents=True, exist_ok=True)
        Path(job.path).write_bytes(data)
        return n, words


def _map(func, items: List, n_process: int, *, ordered: bool) -> Iterator:
    """``map`` in forked workers (``n_process`` 0 = every core), or in this process for one."""
    n = min(n_process or available_cores(), len(items))
    if n <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(func, items)
        return
    with multiprocessing.get_context("fork").Pool(n) as pool:
        yield from (pool.imap if ordered else pool.imap_unordered)(func, items)
