"""Prodigy task JSONL(.gz), read as a stream of validated tasks, and as NER Docs.

A Prodigy task is one JSON object per line: ``text``, ``spans`` (``start``/``end`` character offsets and
``label``, optionally ``token_start``/``token_end``), optionally ``tokens`` (``text``, ``start``, ``end``,
``id``, ``ws``), ``answer`` (accept/reject/ignore), ``_input_hash`` and ``_task_hash``. Every problem is
raised as ``InputError(path, problem, line=N)`` so a bad line in a 100 MB export is found at once.

``_input_hash`` identifies the text. When a task has none, :func:`text_hash` computes one from the text
alone (BLAKE2b, 8 bytes, signed little-endian int). That is not Prodigy's own hash, so a dataset with
hashes and one without do not group together for the same text; the merge reports such texts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..common.errors import InputError
from .textfiles import read_jsonl

PathLike = Union[str, Path]
ANSWERS = ("accept", "reject", "ignore")
Token = Tuple[int, int, bool]  # start, end, followed by a space


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


@dataclass
class Task:
    """One validated Prodigy task; ``line`` is 1-based, ``tokens`` None when the task has none."""

    line: int
    text: str
    spans: List[Span]
    tokens: Optional[List[Token]]
    answer: str
    input_hash: int


def text_hash(text: str) -> int:
    """Stand-in ``_input_hash`` for tasks without one: a stable 64-bit hash of the text only."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def text_digest(text: str) -> bytes:
    """16-byte fingerprint used to detect different texts under one ``_input_hash``."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def iter_tasks(path: PathLike, *, require_answer: bool = True) -> Iterator[Task]:
    """Stream validated tasks, one line in memory at a time; blank lines are skipped."""
    for line_no, obj in read_jsonl(path):
        if not isinstance(obj, dict):
            raise InputError(path, f"expected a JSON object (a Prodigy task), got {type(obj).__name__}", line=line_no)
        yield parse_task(obj, path, line_no, require_answer=require_answer)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_task(obj: dict, path: PathLike, line: int, *, require_answer: bool = True) -> Task:
    """Validate one task dict; ``require_answer=False`` treats a missing answer as accept (gold files)."""
    text = obj.get("text")
    if not isinstance(text, str):
        problem = "task has no 'text'" if text is None else f"'text' must be a string, got {type(text).__name__}"
        raise InputError(path, problem, line=line)
    answer = obj.get("answer")
    if answer is None and not require_answer:
        answer = "accept"
    if answer not in ANSWERS:
        problem = "task has no 'answer'" if answer is None else f"unknown answer {answer!r}"
        raise InputError(path, f"{problem} (expected accept, reject or ignore)", line=line)
    input_hash = obj.get("_input_hash")
    if input_hash is None:
        input_hash = text_hash(text)
    elif not _is_int(input_hash):
        raise InputError(path, f"'_input_hash' must be an integer, got {input_hash!r}", line=line)
    spans = _parse_spans(obj.get("spans"), text, path, line)
    tokens = _parse_tokens(obj.get("tokens"), text, path, line)
    return Task(line=line, text=text, spans=spans, tokens=tokens, answer=answer, input_hash=input_hash)


def _parse_spans(raw: object, text: str, path: PathLike, line: int) -> List[Span]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError(path, f"'spans' must be a list, got {type(raw).__name__}", line=line)
    spans = []
    for i, span in enumerate(raw):
        if not isinstance(span, dict):
            raise InputError(path, f"span {i} must be an object", line=line)
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if not (_is_int(start) and _is_int(end)):
            raise InputError(path, f"span {i} needs integer 'start' and 'end'", line=line)
        if not 0 <= start < end <= len(text):
            raise InputError(path, f"span {i} offsets [{start}, {end}) out of range for a text of {len(text)} characters", line=line)
        if not isinstance(label, str) or not label:
            raise InputError(path, f"span {i} [{start}, {end}) has no 'label'", line=line)
        spans.append(Span(start, end, label))
    return spans


def _parse_tokens(raw: object, text: str, path: PathLike, line: int) -> Optional[List[Token]]:
    """Tokens must tile the text exactly (each one followed by one space or none), as spaCy's Doc needs."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InputError(path, f"'tokens' must be a list, got {type(raw).__name__}", line=line)
    tokens: List[Token] = []
    pos = 0
    for i, tok in enumerate(raw):
        if not isinstance(tok, dict):
            raise InputError(path, f"token {i} must be an object", line=line)
        start, end, ws = tok.get("start"), tok.get("end"), bool(tok.get("ws", False))
        if not (_is_int(start) and _is_int(end)) or start != pos or end <= start or end > len(text):
            raise InputError(path, f"token {i} offsets ({start}, {end}) do not continue the text at character {pos}", line=line)
        if "text" in tok and tok["text"] != text[start:end]:
            raise InputError(path, f"token {i} text {tok['text']!r} differs from the text at [{start}, {end})", line=line)
        if ws and text[end : end + 1] != " ":
            raise InputError(path, f"token {i} has ws=true but no space follows it in the text", line=line)
        tokens.append((start, end, ws))
        pos = end + 1 if ws else end
    if pos != len(text):
        raise InputError(path, f"tokens cover {pos} of the text's {len(text)} characters", line=line)
    return tokens


def make_doc(text: str, tokens: Optional[List[Token]], nlp: Language) -> Doc:
    """Doc from the task's own tokens when it has them (spans were drawn on those), else nlp's tokenizer."""
    if tokens is None:
        return nlp.make_doc(text)
    return tokens_doc(text, tokens, nlp.vocab)


def tokens_doc(text: str, tokens: List[Token], vocab: Vocab) -> Doc:
    words = [text[start:end] for start, end, _ in tokens]
    return Doc(vocab, words=words, spaces=[ws for _, _, ws in tokens])


def read_prodigy_ner(path: PathLike, nlp: Language) -> Iterator[Doc]:
    """Docs from one already-merged Prodigy NER file: accepted tasks only, tokens outside spans are O.

    A task without ``answer`` counts as accepted (gold exports); spans must sit on token boundaries and
    must not overlap, or ``InputError`` names the line. For per-label datasets use ``merge-annotations``.
    """
    for task in iter_tasks(path, require_answer=False):
        if task.answer != "accept":
            continue
        doc = make_doc(task.text, task.tokens, nlp)
        ents = []
        for span in task.spans:
            ent = doc.char_span(span.start, span.end, label=span.label)
            if ent is None:
                raise InputError(path, f"span [{span.start}, {span.end}) {span.label} is not on token boundaries", line=task.line)
            ents.append(ent)
        try:
            doc.set_ents(ents, default="outside")
        except ValueError:
            raise InputError(path, "overlapping spans (an NER token can have one entity only)", line=task.line) from None
        yield doc
