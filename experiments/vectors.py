"""Static word vectors, the targets of the LMAO objective.

``train_vectors`` fits fastText or word2vec (gensim) on the tokenized pretraining corpus and converts
the result with spaCy's own vectors machinery (``convert_vectors``), so the output is an ordinary spaCy
pipeline folder holding only vectors: ``[initialize] vectors`` and ``[paths] vectors`` accept it.
``import_vectors`` does the same for user-supplied GloVe/fastText/word2vec text files or a spaCy pipeline.
Vectors are keyed by the exact token text (ORTH), as spaCy's pretraining objective looks them up.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict, Union

import spacy
from spacy.training.initialize import convert_vectors

from .data.docbins import read_docs
from .errors import InputError
from .fileio import atomic_path, write_json
from .progress import log, progress

PathLike = Union[str, Path]
ALGORITHMS = ("fasttext", "word2vec")


def write_token_lines(corpus: PathLike, target: Path) -> int:
    """One line of space-separated tokens per doc (whitespace tokens dropped): gensim's corpus_file."""
    vocab = spacy.blank("en").vocab
    n_words = 0
    with open(target, "w", encoding="utf-8") as out:
        for doc in progress(read_docs(corpus, vocab), desc="vectors corpus", unit="doc"):
            tokens = [t.text for t in doc if not t.is_space]
            n_words += len(tokens)
            out.write(" ".join(tokens) + "\n")
    return n_words


def train_vectors(
    corpus: PathLike,
    out_dir: PathLike,
    *,
    algorithm: str = "fasttext",
    dims: int = 100,
    min_count: int = 5,
    epochs: int = 5,
    window: int = 5,
    seed: int = 0,
    workers: int = 2,
    lang: str = "en",
) -> Dict[str, object]:
    """Train vectors on a DocBin corpus (file or shard folder) and save them as a spaCy pipeline."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r} (expected one of {list(ALGORITHMS)})")
    from gensim.models import FastText, Word2Vec

    with tempfile.TemporaryDirectory() as scratch:
        lines = Path(scratch) / "tokens.txt"
        n_words = write_token_lines(corpus, lines)
        if n_words == 0:
            raise InputError(corpus, "corpus has no tokens to train vectors on")
        model_cls = FastText if algorithm == "fasttext" else Word2Vec
        log(f"vectors: training {algorithm} ({dims} dims, {epochs} epochs) on {n_words} words")
        model = model_cls(corpus_file=str(lines), vector_size=dims, window=window, min_count=min_count,
                          epochs=epochs, seed=seed, workers=workers)
        text_vectors = Path(scratch) / "vectors.txt"
        model.wv.save_word2vec_format(str(text_vectors))
        info = _save_spacy_vectors(text_vectors, out_dir, lang=lang, extra={
            "algorithm": algorithm, "dims": dims, "min_count": min_count, "epochs": epochs,
            "window": window, "seed": seed, "corpus": str(corpus), "corpus_words": n_words,
        })
    return info


def import_vectors(source: PathLike, out_dir: PathLike, *, lang: str = "en") -> Dict[str, object]:
    """GloVe (no header) / fastText / word2vec text files (.txt, .vec, optionally .gz), or a spaCy pipeline."""
    source = Path(source)
    if not source.exists():
        raise InputError(source, "not found")
    if source.is_dir():
        if not (source / "config.cfg").exists():
            raise InputError(source, "folder is not a spaCy pipeline (no config.cfg)")
        src = spacy.load(source)
        if src.vocab.vectors.shape[1] == 0:
            raise InputError(source, "the pipeline has no vectors")
        nlp = spacy.blank(src.lang)
        nlp.vocab.vectors = src.vocab.vectors
        with atomic_path(out_dir, is_dir=True) as tmp:
            nlp.to_disk(tmp)
            info = _vectors_info(nlp, {"source": str(source)})
            write_json(tmp / "vectors-info.json", info)
        return info
    return _save_spacy_vectors(source, out_dir, lang=lang, extra={"source": str(source)})


def _save_spacy_vectors(text_vectors: Path, out_dir: PathLike, *, lang: str, extra: Dict) -> Dict[str, object]:
    nlp = spacy.blank(lang)
    try:
        convert_vectors(nlp, text_vectors, truncate=0, prune=-1)
    except (ValueError, IndexError) as err:
        raise InputError(text_vectors, f"not a vectors text file ({err})") from None
    if nlp.vocab.vectors.shape[0] == 0:
        raise InputError(text_vectors, "no vectors found")
    with atomic_path(out_dir, is_dir=True) as tmp:
        nlp.to_disk(tmp)
        info = _vectors_info(nlp, extra)
        write_json(tmp / "vectors-info.json", info)
    return info


def _vectors_info(nlp, extra: Dict) -> Dict[str, object]:
    rows, dims = nlp.vocab.vectors.shape
    return {"rows": int(rows), "dims": int(dims), "keys": len(nlp.vocab.vectors.keys()), **extra}
