"""Reading and writing DocBins: single files, sharded folders, and the raw-text pretraining corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, List, Tuple, Union

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ..errors import InputError

PathLike = Union[str, Path]
SHARD_DOCS = 5000  # docs per pretraining shard: bounded memory when reading 100k reviews


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


def read_docs(path: PathLike, vocab: Vocab) -> Iterator[Doc]:
    """Stream docs from a ``.spacy`` file or a folder of shards, one shard in memory at a time."""
    for file in docbin_files(path):
        try:
            db = DocBin().from_disk(file)
        except Exception as err:  # msgpack/zlib errors: name the file, not the library internals
            raise InputError(file, f"not a readable spaCy DocBin ({type(err).__name__}: {err})") from None
        yield from db.get_docs(vocab)
