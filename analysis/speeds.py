"""Inference speed of every model of the size frontier, measured side by side in one run.

A trial records its own inference speed, but that number depends on what else the machine was doing at
the time (the committed campaign's identical 34 MB models logged 40k to 58k words/s). So the frontier's
speed axis comes from this measurement instead: each distinct model (architecture and static-vectors
table; pretraining changes no weight shape, so no speed) is built with spaCy's ``init_nlp`` at its
trained shapes and runs ``nlp.pipe`` over the same dev docs, round-robin over ``--rounds`` rounds, in
this one process on one core (numpy's BLAS held to one thread, as trials run). Time is this process's
CPU time, not wall time: single-threaded, it equals wall time on an idle core, and other work on a busy
machine does not leak into it. The median of a model's rounds is its speed; the spread is beside it.

    make frontier-speed   # -> analysis/results/frontier-speed.csv, an input of `make report`

The CSV is committed like raw results: `make report` reads it and never measures anything itself.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import typer

from experiments.common.cli_base import new_app
from experiments.common.errors import InputError
from experiments.training.results import cpu_model

SPEED_FILE = "frontier-speed.csv"


def design_models(designs: Sequence[Path], corpus_dir: Path) -> Dict[str, Dict]:
    """Model label (as the frontier names it) -> resolved params of its first setting, over ``designs``."""
    from experiments.sweeps.campaign import load_design
    from experiments.training.config import load_experiment
    from experiments.training.params import resolve

    from .frontier import model_label

    models: Dict[str, Dict] = {}
    for path in designs:
        design = load_design(path)
        defaults = load_experiment(design.experiment_dir)["params"]
        for setting in design.settings:
            params = resolve(defaults, {**setting.params, "seed": 0}, defaults_source=path)
            row = pd.Series({**{f"params.{k}": v for k, v in params.items()},
                             "config_overrides": json.dumps(setting.overrides, sort_keys=True)})
            label = model_label(row)
            if label not in models:
                models[label] = {"params": {**params, "corpus_dir": str(corpus_dir)},
                                 "experiment_dir": design.experiment_dir, "setting": setting.name,
                                 "overrides": dict(setting.overrides)}
    return models


def build_pipeline(experiment_dir: Path, params: Dict, corpus_dir: Path, overrides: Optional[Dict] = None):
    """The pipeline a trial with ``params`` (and ``--section.key`` ``overrides``) trains, initialised
    (untrained weights of the trained shapes)."""
    from spacy.training.initialize import init_nlp

    from experiments.training.config import build_config
    from experiments.training.trial import resolve_vectors

    vectors = resolve_vectors(params, corpus_dir)
    config = build_config(experiment_dir, params, corpus_dir=corpus_dir, vectors=vectors, overrides=overrides)
    return init_nlp(config, use_gpu=-1)


def measure(designs: Sequence[Path], corpus_dir: Path, *, n_docs: int, rounds: int) -> pd.DataFrame:
    """One row per model: median words/s over ``rounds`` round-robin passes over the same ``n_docs``."""
    from experiments.training.finetune import load_examples
    from experiments.training.trial import use_cpu_ops

    use_cpu_ops("numpy")
    models = design_models(designs, corpus_dir)
    pipelines = {label: build_pipeline(m["experiment_dir"], m["params"], corpus_dir, m["overrides"])
                 for label, m in models.items()}
    first = next(iter(pipelines.values()))
    docs = [eg.predicted for eg in load_examples(corpus_dir / "dev.spacy", first, limit=n_docs)]
    words = sum(len(doc) for doc in docs)
    speeds: Dict[str, List[float]] = {label: [] for label in pipelines}
    for _ in range(rounds):
        for label, nlp in pipelines.items():
            batch = [nlp.make_doc(doc.text) for doc in docs]  # fresh docs of this pipeline's vocab
            start = time.process_time()
            for _doc in nlp.pipe(batch, batch_size=nlp.batch_size):
                pass
            speeds[label].append(words / (time.process_time() - start))
    rows = []
    for label, values in speeds.items():
        rows.append({"model": label, "setting": models[label]["setting"],
                     "words_per_second": round(float(np.median(values)), 1),
                     "min_words_per_second": round(min(values), 1), "max_words_per_second": round(max(values), 1),
                     "rounds": rounds, "docs": len(docs), "words": words,
                     "machine": f"{platform.processor() or platform.machine()}; {cpu_model('unknown CPU')}"})
    return pd.DataFrame(rows)


app = new_app(help="Inference speed of each frontier model, side by side in one run.")


@app.command()
def main(
    designs: List[Path] = typer.Argument(..., help="Campaign designs (YAML) whose models to measure"),
    corpus: Path = typer.Option(..., "--corpus", help="Prepared corpus: its dev docs are the text"),
    out: Path = typer.Option(Path("analysis/results") / SPEED_FILE, "--out", help="CSV to write"),
    n_docs: int = typer.Option(300, "--docs", min=1, help="Dev docs per pass"),
    rounds: int = typer.Option(5, "--rounds", min=1, help="Round-robin passes over every model"),
) -> None:
    """Build every model of the designs and time them against each other on the same docs."""
    from experiments.storage.fileio import write_text

    if not (corpus / "dev.spacy").is_file():
        raise InputError(corpus / "dev.spacy", "prepared corpus file missing (run `lmao data imdb` first)")
    frame = measure(designs, corpus, n_docs=n_docs, rounds=rounds)
    write_text(out, frame.to_csv(index=False, lineterminator="\n"))
    for row in frame.itertuples():
        typer.echo(f"{row.words_per_second / 1e3:7.1f}k words per CPU-second  {row.model}")


if __name__ == "__main__":
    app()
