"""Dev-set evaluation speed: spaCy's own path (`spacy.Corpus` reader + `nlp.evaluate`, as `spacy train`
evaluates) beside ours (pre-tokenized docs, forked workers, spaCy's Scorer), same model, same data, one run.

    .venv/bin/python benchmarks/bench_eval_speed.py MODEL_DIR DEV.spacy
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import spacy
from spacy.training import Corpus

from experiments.training.finetune import evaluate, load_examples


def main(model_dir: str, dev: str) -> None:
    nlp = spacy.load(model_dir)
    start = time.perf_counter()
    examples = list(Corpus(dev)(nlp))  # re-tokenizes, as spaCy's train loop does for every evaluation
    spacy_scores = nlp.evaluate(examples)
    spacy_seconds = time.perf_counter() - start
    words = sum(len(eg.reference) for eg in examples)
    ours_examples = load_examples(Path(dev), nlp)  # once per trial, outside the per-epoch evaluation
    ours = evaluate(nlp, ours_examples, "textcat" if "textcat" in nlp.pipe_names else "ner",
                    batch_size=nlp.batch_size, processes=2)
    print(f"dev words: {words}")
    print(f"spaCy nlp.evaluate: {spacy_seconds:.1f} s, {words / spacy_seconds:.0f} words/s "
          f"(cats_score {spacy_scores.get('cats_score')}, ents_f {spacy_scores.get('ents_f')})")
    print(f"ours (2 processes): {ours.seconds:.1f} s, {ours.words_per_second:.0f} words/s "
          f"(cats_score {ours.scores.get('cats_score')}, ents_f {ours.scores.get('ents_f')})")
    print(f"speed-up: {spacy_seconds / ours.seconds:.2f}x; same scores: "
          f"{spacy_scores.get('cats_score') == ours.scores.get('cats_score') and spacy_scores.get('ents_f') == ours.scores.get('ents_f')}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
