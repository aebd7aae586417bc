"""Reading and writing DocBins: single files, sharded folders, and the raw-text pretraining corpus.

Reading is on every trial's path before its first epoch (10000 dev reviews at the protocol's size), so
docs are rebuilt from a DocBin's arrays with one change to spaCy's ``DocBin.get_docs`` that makes it
about twice as fast (:func:`docs_from_docbin`), and fine-tuning's unannotated copies of the gold docs
come from the same arrays (:func:`read_doc_pairs`) instead of a loop over Token objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Tuple, Union

import srsly
from spacy.attrs import NORM, ORTH
from spacy.tokens import Doc, DocBin
from spacy.tokens._dict_proxies import SpanGroups
from spacy.training import Example
from spacy.util import registry
from spacy.vocab import Vocab

from ..common.errors import InputError

PathLike = Union[str, Path]
SHARD_DOCS = 5000  # docs per pretraining shard: bounded memory when reading 100k reviews


PREPARED_SPLITS = ("train.spacy", "dev.spacy")


def require_prepared_corpus(corpus_dir: Path, hint: str = "run `lmao data ...` first") -> None:
    """Stop with one error when ``corpus_dir`` lacks a split every trial reads (``train.spacy``,
    ``dev.spacy``): the check every command that takes a prepared corpus makes before it starts."""
    for name in PREPARED_SPLITS:
        if not (Path(corpus_dir) / name).exists():
            raise InputError(Path(corpus_dir) / name, f"prepared corpus file missing ({hint})")


def write_docbin(docs: Iterable[Doc], path: PathLike, *, store_user_data: bool = False) -> int:
    """Write docs to one ``.spacy`` file; returns the number of docs."""
    db = DocBin(store_user_data=store_user_data)
    n = 0
    for doc in docs:
        db.add(doc)
        n += 1
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db.to_disk(path)
    return n


def write_shards(docs: Iterable[Doc], folder: PathLike, *, shard_docs: int = SHARD_DOCS) -> int:
    """Write docs into ``folder/000000.spacy``, ``000001.spacy``, ...; returns the number of docs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    batch: List[Doc] = []
    n = shard = 0
    for doc in docs:
        batch.append(doc)
        if len(batch) >= shard_docs:
            write_docbin(batch, folder / f"{shard:06d}.spacy")
            shard += 1
            batch = []
        n += 1
    if batch or shard == 0:
        write_docbin(batch, folder / f"{shard:06d}.spacy")
    return n


def write_pretraining_corpus(docs: Iterable[Doc], folder: PathLike) -> Tuple[int, int]:
    """Shards of unlabelled docs for pretraining; returns (docs, words)."""
    words = 0

    def counted() -> Iterator[Doc]:
        nonlocal words
        for doc in docs:
            words += len(doc)
            yield doc

    n_docs = write_shards(counted(), folder)
    return n_docs, words


def docbin_files(path: PathLike) -> List[Path]:
    """A ``.spacy`` file, or every ``.spacy`` file in a folder (sorted, so order is reproducible)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.spacy"))
        if not files:
            raise InputError(path, "folder holds no .spacy files")
        return files
    if not path.exists():
        raise InputError(path, "file not found")
    return [path]


def _load_docbin(file: Path) -> DocBin:
    try:
        return DocBin().from_disk(file)
    except Exception as err:  # msgpack/zlib errors: name the file, not the library internals
        raise InputError(file, f"not a readable spaCy DocBin ({type(err).__name__}: {err})") from None


def _docs_and_words(db: DocBin, vocab: Vocab) -> Iterator[Tuple[Doc, List[int], List[bool]]]:
    """Each doc of ``db`` with its token IDs and spaces (both as Python lists).

    The body is spaCy 3.8's ``DocBin.get_docs`` (spacy/tokens/_serialize.py) with one change: ``Doc``
    gets the token IDs and spaces as lists, not as rows of the DocBin's numpy arrays, which its
    per-token loop would box into numpy scalars one by one (half of get_docs' time). The docs are the
    same (tests/test_setup_speed.py compares them with get_docs' byte for byte)."""
    for string in db.strings:
        vocab[string]
    orth_col = db.attrs.index(ORTH)
    for i, tokens in enumerate(db.tokens):
        words = tokens[:, orth_col].tolist()
        unknown_spaces = bool(db.flags[i].get("has_unknown_spaces"))
        spaces = [True] * len(words) if unknown_spaces else db.spaces[i].ravel().tolist()
        doc = Doc(vocab, words=words, spaces=None if unknown_spaces else spaces)
        doc = doc.from_array(db.attrs, tokens)
        doc.cats = db.cats[i]
        # backwards-compatibility (as get_docs): may be b'' or a serialized empty list
        if db.span_groups[i] and db.span_groups[i] != SpanGroups._EMPTY_BYTES:
            doc.spans.from_bytes(db.span_groups[i])
        else:
            doc.spans.clear()
        if i < len(db.user_data) and db.user_data[i] is not None:
            doc.user_data.update(srsly.msgpack_loads(db.user_data[i], use_list=False))
        yield doc, words, spaces


def docs_from_docbin(db: DocBin, vocab: Vocab) -> Iterator[Doc]:
    """``db.get_docs(vocab)``, the same docs, about twice as fast (:func:`_docs_and_words`)."""
    for doc, _words, _spaces in _docs_and_words(db, vocab):
        yield doc


def read_docs(path: PathLike, vocab: Vocab) -> Iterator[Doc]:
    """Stream docs from a ``.spacy`` file or a folder of shards, one shard in memory at a time."""
    for file in docbin_files(path):
        yield from docs_from_docbin(_load_docbin(file), vocab)


def read_doc_pairs(path: PathLike, vocab: Vocab) -> Iterator[Tuple[Doc, Doc]]:
    """Each gold doc with an unannotated doc of the same tokens (words, spaces and the gold doc's norms).

    The norms matter: the tokenizer sets them (``n't`` -> ``not``), the tok2vec embeds NORM, and a doc
    built from words alone would have the lexemes' norms instead. The copy is built from the token IDs
    the gold doc was built from, which takes a fifth of the time of reading them back from its tokens."""
    for file in docbin_files(path):
        for reference, words, spaces in _docs_and_words(_load_docbin(file), vocab):
            predicted = Doc(vocab, words=words, spaces=spaces)
            predicted.from_array([NORM], reference.to_array([NORM]))
            yield reference, predicted


def read_examples(path: PathLike, vocab: Vocab, limit: int = 0) -> List[Example]:
    """Training/evaluation examples: gold docs paired with unannotated copies (:func:`read_doc_pairs`)."""
    examples = []
    for i, (reference, predicted) in enumerate(read_doc_pairs(path, vocab)):
        if limit and i >= limit:
            break
        examples.append(Example(predicted, reference))
    return examples


@registry.readers("lmao.DocBinExamples.v1")
def docbin_examples(path: str) -> Callable[..., Iterator[Example]]:
    """A corpus reader over pre-tokenized DocBins (a file or a folder of shards): the same Examples
    fine-tuning trains on, with no re-tokenizing and no alignment. Fine-tuning gives it to spaCy's
    ``init_nlp`` for initialisation only (experiments/training/finetune.py ``init_pipeline``); the examples are
    read once and kept for initialize's further passes."""
    kept: dict = {}

    def read(nlp) -> Iterator[Example]:
        if kept.get("vocab") is not nlp.vocab:
            kept.update(vocab=nlp.vocab, examples=read_examples(path, nlp.vocab))
        return iter(kept["examples"])

    return read
