"""The test oracle for ``lmao data imdb``: the straightforward way to the same ``.spacy`` files.

``prepare_imdb`` tokenizes each distinct review once, in forked workers, and builds each file's token
array in place. This writes the same files the plain way (each split tokenized on its own, the
pretraining text a second time, on one core, ``DocBin.add`` per doc), so ``tests/test_data.py`` can check
the two byte for byte and ``benchmarks/bench_data_imdb.py`` can time them side by side. Both take their
reviews from ``experiments.data.imdb.select_reviews``: what differs is only how the files are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Union

from experiments.data import docbins
from experiments.data.imdb import Review, clean_text, review_cats, select_reviews


def reference_prepare_imdb(source: Union[str, Path], out: Union[str, Path], *, n_train: int = 1000,
                           n_dev: int = 10000, seed: int = 0, include_unsup: bool = False,
                           max_pretrain_docs: int = 0, n_test: int = 0, shard_docs: int = 0) -> None:
    """Write ``train.spacy``, ``dev.spacy``, ``test.spacy`` and ``pretrain/`` shards under ``out``."""
    from spacy import blank
    from spacy.tokens import DocBin

    chosen = select_reviews(source, n_train=n_train, n_dev=n_dev, seed=seed, include_unsup=include_unsup,
                            max_pretrain_docs=max_pretrain_docs, n_test=n_test)
    nlp = blank("en")
    out = Path(out)

    def write(items: List[Review], path: Path, labelled: bool) -> None:
        db = DocBin()
        for doc, review in nlp.pipe(((clean_text(r.text), r) for r in items), as_tuples=True, batch_size=256):
            if labelled:
                doc.cats = review_cats(review)
            db.add(doc)
        path.parent.mkdir(parents=True, exist_ok=True)
        db.to_disk(path)

    for split in ("train", "dev", "test"):
        write(chosen[split], out / f"{split}.spacy", True)
    pretrain = chosen["pretrain"]
    shard_docs = shard_docs or docbins.SHARD_DOCS
    for k in range(max(1, -(-len(pretrain) // shard_docs))):
        write(pretrain[k * shard_docs:(k + 1) * shard_docs], out / "pretrain" / f"{k:06d}.spacy", False)
