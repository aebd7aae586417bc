"""Model size of each setting of a campaign design, before training anything.

For each setting: its params (experiment defaults <- design <- setting), the fine-tuning config a trial
builds from them, spaCy's ``init_nlp`` on a prepared corpus (static vectors loaded, labels read, weights
allocated at their trained shapes), the docs of the corpus' train and dev splits read into the vocab (as
a trial does: their strings are saved with the model), then ``nlp.to_disk`` and the bytes on disk. That is
what a trial's ``model_size_bytes`` measures on ``model-best/``, with untrained weights of the same shapes.
On a small corpus the estimate lacks only the strings of the words the real dev split adds (about 0.3 to
0.6 MB at 10000 IMDB reviews, less when a vectors table already holds most of them).

``python -m analysis.sizes lmao-imdb-1k/frontier.yml --corpus CORPUS`` prints one line per setting.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import typer

from experiments.common.cli_base import new_app
from experiments.common.errors import InputError
from experiments.data.docbins import require_prepared_corpus


def corpus_strings(corpus_dir: Path) -> List[str]:
    """The strings reading the corpus' train and dev docs adds to a vocab (a trial reads both)."""
    import spacy

    from experiments.data.docbins import read_docs

    vocab = spacy.blank("en").vocab
    for split in ("train", "dev"):
        for _ in read_docs(corpus_dir / f"{split}.spacy", vocab):
            pass
    return sorted(vocab.strings)


def estimate_size(experiment_dir: Path, params: Dict, corpus_dir: Path, strings: Optional[List[str]] = None,
                  overrides: Optional[Dict] = None) -> int:
    """Bytes of ``nlp.to_disk`` for the pipeline a trial with ``params`` (and ``--section.key``
    ``overrides``) trains, on ``corpus_dir`` (``strings``: :func:`corpus_strings` of it, read once for many
    estimates)."""
    from spacy.training.initialize import init_nlp

    from experiments.training.config import build_config
    from experiments.training.finetune import directory_size
    from experiments.training.trial import resolve_vectors

    vectors = resolve_vectors(params, corpus_dir)
    config = build_config(experiment_dir, params, corpus_dir=corpus_dir, vectors=vectors, overrides=overrides)
    nlp = init_nlp(config, use_gpu=-1)
    for string in strings if strings is not None else corpus_strings(corpus_dir):
        nlp.vocab.strings.add(string)
    with tempfile.TemporaryDirectory() as tmp:
        nlp.to_disk(tmp)
        return directory_size(Path(tmp))


def design_sizes(design_path: Path, corpus_dir: Path, only: Sequence[str] = ()) -> List[Dict]:
    """One row per setting: name, params that set the size, estimated bytes (``corpus_dir`` replaces the
    design's corpus for the train/dev docs; the vectors are the setting's own)."""
    from experiments.sweeps.campaign import load_design
    from experiments.training.config import load_experiment
    from experiments.training.params import resolve

    design = load_design(design_path)
    defaults = load_experiment(design.experiment_dir)["params"]
    rows = []
    strings = corpus_strings(Path(corpus_dir))
    for setting in design.settings:
        if only and setting.name not in only:
            continue
        params = resolve(defaults, {**setting.params, "corpus_dir": str(corpus_dir)}, defaults_source=design_path)
        size = estimate_size(design.experiment_dir, params, Path(corpus_dir), strings, setting.overrides)
        rows.append({"setting": setting.name, "bytes": size, "textcat_arch": params["textcat_arch"],
                     "static_vectors": params["vectors"] if params["static_vectors_input"] else "none",
                     "width": params["width"], "depth": params["depth"], "embed_rows": params["embed_rows"]})
    return rows


app = new_app(help="Estimated model size per setting of a campaign design.")


@app.command()
def main(
    design: Path = typer.Argument(..., help="Campaign design (YAML)"),
    corpus: Path = typer.Option(..., "--corpus", help="Prepared corpus whose train/dev docs the pipeline reads"),
    only: Optional[List[str]] = typer.Option(None, "--only", help="Only these settings (repeatable)"),
) -> None:
    """Build each setting's pipeline with spaCy's init_nlp and print the size nlp.to_disk writes."""
    require_prepared_corpus(corpus)
    for row in design_sizes(design, corpus, only or ()):
        typer.echo(f"{row['setting']:<28} {row['bytes'] / 1e6:6.1f} MB  static vectors: {row['static_vectors']}, "
                   f"width {row['width']}, depth {row['depth']}, embed rows {row['embed_rows']}, "
                   f"textcat {row['textcat_arch']}")


if __name__ == "__main__":
    app()
