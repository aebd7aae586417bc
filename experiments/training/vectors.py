"""Static word vectors, the targets of the LMAO objective.

``train_vectors`` fits fastText or word2vec (gensim) on the tokenized pretraining corpus and converts
the result with spaCy's own vectors machinery (``convert_vectors``), so the output is an ordinary spaCy
pipeline folder holding only vectors: ``[initialize] vectors`` and ``[paths] vectors`` accept it.
``import_vectors`` does the same for user-supplied GloVe/fastText/word2vec text files or a spaCy pipeline.
Vectors are keyed by the exact token text (ORTH), as spaCy's pretraining objective looks them up.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy
import spacy
from spacy.training.initialize import convert_vectors

from ..common.errors import InputError, check_at_least
from ..common.progress import log, progress
from ..data.docbins import read_docs
from ..storage.fileio import atomic_path, path_fingerprint, write_json

PathLike = Union[str, Path]
ALGORITHMS = ("fasttext", "word2vec")


def write_token_lines(corpus: PathLike, target: Path) -> Counter:
    """One line of space-separated tokens per doc (whitespace tokens dropped): gensim's corpus_file.
    Returns how often each token occurs."""
    vocab = spacy.blank("en").vocab
    counts: Counter = Counter()
    with open(target, "w", encoding="utf-8") as out:
        for doc in progress(read_docs(corpus, vocab), desc="vectors corpus", unit="doc"):
            tokens = [t.text for t in doc if not t.is_space]
            counts.update(tokens)
            out.write(" ".join(tokens) + "\n")
    return counts


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
        raise InputError("--algorithm", f"unknown algorithm {algorithm!r} (expected one of {list(ALGORITHMS)})")
    # gensim 4 does not check these itself: a window of 0 ends the process with a floating point exception.
    for option, value in (("--dims", dims), ("--min-count", min_count), ("--epochs", epochs),
                          ("--window", window), ("--workers", workers)):
        check_at_least(option, value, 1)
    check_at_least("--seed", seed, 0)
    from gensim.models import FastText, Word2Vec

    with tempfile.TemporaryDirectory() as scratch:
        lines = Path(scratch) / "tokens.txt"
        counts = write_token_lines(corpus, lines)
        n_words = sum(counts.values())
        if n_words == 0:
            raise InputError(corpus, "corpus has no tokens to train vectors on")
        if max(counts.values()) < min_count:
            raise InputError("--min-count", f"no word occurs {min_count} times in {corpus} "
                                            f"(the most frequent occurs {max(counts.values())} times)")
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


def check_vectors_text(path: Path) -> None:
    """Read a vectors text file once as spaCy 3.8's ``read_vectors`` will (``training/initialize.py``:
    an optional ``rows dims`` header, then ``word v1 ... vD`` split from the right) and raise an
    :class:`InputError` naming the line of the first problem: not UTF-8, a truncated gzip, a line with
    the wrong number of values, more or fewer rows than the header says, an empty file."""
    from ..data.textfiles import read_lines

    rows = dims = None
    n = 0
    for line_no, line in read_lines(path):
        if dims is None:
            parts = line.split()
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                rows, dims = int(parts[0]), int(parts[1])
                continue
            dims = len(parts) - 1
            if dims < 1:
                raise InputError(path, "expected a 'rows dims' header or 'word v1 ... vD'", line_no)
        pieces = line.rstrip().rsplit(" ", dims)
        if len(pieces) != dims + 1:
            raise InputError(path, f"expected a word and {dims} numbers, found {len(pieces) - 1}", line_no)
        n += 1
        if rows is not None and n > rows:
            raise InputError(path, f"more rows than the header's {rows}", line_no)
    if dims is None or n == 0:
        raise InputError(path, "empty file: no vectors")
    if rows is not None and n < rows:
        raise InputError(path, f"the header says {rows} rows, the file has {n}")


def _save_spacy_vectors(text_vectors: Path, out_dir: PathLike, *, lang: str, extra: Dict) -> Dict[str, object]:
    import tarfile
    import zipfile

    if not (tarfile.is_tarfile(text_vectors) or zipfile.is_zipfile(text_vectors)):  # spaCy opens those itself
        check_vectors_text(text_vectors)
    nlp = spacy.blank(lang)
    try:
        convert_vectors(nlp, text_vectors, truncate=0, prune=-1)
    except (ValueError, IndexError, EOFError, OSError, StopIteration, AssertionError, tarfile.TarError) as err:
        raise InputError(text_vectors, f"not a vectors text file ({type(err).__name__}: {err})") from None
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


# ------------------------------------------------------------------------------ installed pipeline packages


def pipeline_package(value: Union[str, Path, None]) -> Optional[str]:
    """``value`` when it names an installed spaCy pipeline package (``en_core_web_lg``), else None.

    spaCy's own test and order (``spacy.util.load_model`` in spaCy 3.8: ``is_package(name)`` before
    ``Path(name).exists()``): an installed package wins over a folder of the same name. A package that is
    not a spaCy pipeline (no ``meta.json``, e.g. ``numpy``) is not one."""
    from spacy.util import get_package_path, is_package

    if not isinstance(value, str) or not value.isidentifier() or not is_package(value):
        return None
    return value if (get_package_path(value) / "meta.json").is_file() else None


def package_data_path(name: str) -> Path:
    """The pipeline folder inside an installed package, found as spaCy 3.8's ``load_model_from_init_py``
    finds it: ``<package>/<lang>_<name>-<version>`` from the package's ``meta.json``."""
    from spacy.util import get_model_meta, get_package_path

    root = get_package_path(name)
    meta = get_model_meta(root)
    return root / f"{meta['lang']}_{meta['name']}-{meta['version']}"


def resolve_vectors_source(value: str, what: str = "param 'vectors'") -> Union[Path, str]:
    """``-P vectors=VALUE``: an installed spaCy pipeline package name (kept as the name, so spaCy's
    ``[initialize] vectors`` loads it by its own mechanism), else an existing folder."""
    name = pipeline_package(value)
    if name:
        return name
    path = Path(value)
    if not path.exists():
        raise InputError(path, f"vectors not found ({what}: neither a folder nor an installed spaCy pipeline package)")
    if not path.is_dir() or not (path / "config.cfg").is_file():
        raise InputError(path, f"not a spaCy vectors folder or pipeline (no config.cfg; {what}; "
                               "`lmao vectors train|import` make one)")
    return path


def package_fingerprint(name: str) -> str:
    """An installed pipeline package as a cache key part: ``name==version vocab-sha256:<hash>``, the hash over
    its ``vocab/`` folder (the vectors table, its key map and the strings), so a package rebuilt with other
    vectors under the same version gets another key, and its other components do not count."""
    from spacy.util import get_package_version

    return f"{name}=={get_package_version(name)} vocab-sha256:{path_fingerprint(package_data_path(name) / 'vocab')}"


def vectors_record(source: Union[Path, str]) -> Dict[str, object]:
    """What a trial records of the vectors table it read: where from, the content hash the pretraining cache
    key also uses, and how it was made (``vectors-info.json``). A path names a table, not its content: a
    table rebuilt at the same path (fastText with several workers is not bit-reproducible) gets another
    fingerprint, so results that name one path but read different tables can be told apart."""
    name = pipeline_package(str(source))
    if name:
        return {"source": name, "fingerprint": package_fingerprint(name), "info": None}
    path = Path(source)
    info_path = path / "vectors-info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else None
    return {"source": str(path), "fingerprint": "sha256:" + path_fingerprint(path), "info": info}


def load_vectors_pipeline(source: Union[str, Path]):
    """A pipeline holding the vectors of ``source`` (folder or installed package), loaded by spaCy's
    ``spacy.util.load_model`` (what ``[initialize] vectors`` uses), its components left out."""
    from spacy.util import load_model

    source = resolve_vectors_source(str(source), "vectors source")
    try:
        nlp = load_model(source, exclude=_pipe_names(source))
    except (OSError, ValueError) as err:
        raise InputError(source, f"cannot load as a spaCy pipeline ({err})") from None
    if nlp.vocab.vectors.shape[0] == 0 or nlp.vocab.vectors.shape[1] == 0:
        raise InputError(source, "the pipeline has no vectors")
    return nlp


def _pipe_names(source: Union[str, Path]) -> List[str]:
    from spacy.util import load_config

    folder = package_data_path(source) if isinstance(source, str) else Path(source)
    try:
        return list(load_config(folder / "config.cfg", interpolate=False)["nlp"].get("pipeline", []))
    except Exception:  # noqa: BLE001 - an unreadable config fails in load_model with spaCy's message
        return []


# ------------------------------------------------------------------------------------- smaller tables


def prune_vectors(source: Union[str, Path], out_dir: PathLike, *, rows: int = 0, dims: int = 0) -> Dict[str, object]:
    """A smaller copy of a vectors table: ``rows`` rows (spaCy's ``Vocab.prune_vectors``) and/or ``dims``
    dimensions (PCA), saved as a spaCy vectors folder.

    Rows: exactly what ``spacy init vectors --prune N`` does (spaCy 3.8 ``training/initialize.py``
    ``convert_vectors`` calls ``nlp.vocab.prune_vectors(prune)``): the first N rows in lexeme-probability
    order are kept (ties, i.e. every word when no probability table is loaded, keep table order; gensim and
    spaCy's packages store the most frequent words first), and every dropped word stays in the table,
    mapped to its nearest kept row by cosine. So the vocabulary keeps its coverage and the model file
    shrinks by the dropped rows (``Vocab.prune_vectors``, ``spacy/vocab.pyx``).

    Dims: a PCA projection of the kept rows (centred, onto the top ``dims`` principal axes; signs fixed so
    each axis' largest loading is positive: the same input gives the same bytes). Not truncation:
    fastText's or GloVe's coordinates have no order of importance, so keeping the first D keeps an
    arbitrary D-dimensional slice; the top principal axes keep the most variance of the table, the best
    rank-D approximation in the least-squares sense. Rows are pruned first, on the full vectors (nearer
    neighbours), then the kept table is projected.
    """
    if rows < 0 or dims < 0:
        raise InputError("--rows" if rows < 0 else "--dims", f"must be 0 (keep all) or more, got {min(rows, dims)}")
    if not rows and not dims:
        raise InputError("lmao vectors prune", "nothing to do: give --rows N and/or --dims D")
    nlp = load_vectors_pipeline(source)
    vectors = nlp.vocab.vectors
    if vectors.mode != "default":
        raise InputError(source, f"{vectors.mode} vectors cannot be pruned (spaCy prunes only a default table)")
    n_rows, n_dims = vectors.shape
    n_keys = len(vectors.keys())
    if rows >= n_rows:
        raise InputError("--rows", f"{rows} is not fewer than the table's {n_rows} rows")
    if dims >= n_dims:
        raise InputError("--dims", f"{dims} is not fewer than the table's {n_dims} dimensions")
    extra: Dict[str, object] = {"source": str(source), "source_rows": int(n_rows), "source_dims": int(n_dims),
                                "source_keys": int(n_keys)}
    if rows:
        log(f"vectors: pruning {n_rows} rows to {rows} (dropped words map to their nearest kept row)")
        remap = nlp.vocab.prune_vectors(rows)
        scores = numpy.asarray([score for _, score in remap.values()], dtype="float64")
        extra["prune"] = {"rows": rows, "remapped_words": len(remap),
                          "remapped_mean_similarity": round(float(scores.mean()), 4) if len(scores) else None}
    if dims:
        extra["pca"] = {"dims": dims, "explained_variance": round(reduce_dims(nlp.vocab.vectors, dims), 4)}
    out = spacy.blank(nlp.lang, vocab=nlp.vocab)
    with atomic_path(out_dir, is_dir=True) as tmp:
        out.to_disk(tmp)
        info = _vectors_info(out, extra)
        write_json(tmp / "vectors-info.json", info)
    return info


def reduce_dims(vectors, dims: int) -> float:
    """Project a spaCy ``Vectors`` table onto its top ``dims`` principal axes in place (rows and the key
    map unchanged); returns the fraction of the variance kept."""
    data = numpy.asarray(vectors.data, dtype="float64")
    centred = data - data.mean(axis=0)
    _, singular, axes = numpy.linalg.svd(centred, full_matrices=False)
    top = axes[:dims]
    top *= numpy.sign(top[numpy.arange(dims), numpy.abs(top).argmax(axis=1)])[:, None]
    projected = (centred @ top.T).astype(vectors.data.dtype)
    vectors.resize((data.shape[0], dims))  # spaCy's own resize: keeps every key's row
    vectors.data[:] = projected
    return float((singular[:dims] ** 2).sum() / (singular ** 2).sum())
