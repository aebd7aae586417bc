"""Fine-tuning: a training loop you can read top to bottom, evaluated on dev once per epoch.

spaCy's ``init_nlp`` builds and initialises the pipeline (labels, static vectors, ``init_tok2vec``
from a pretraining checkpoint); ``nlp.update`` trains it. What differs from ``spacy train``: epochs are
the unit (evaluation, patience, checkpoints), the data are pre-tokenized DocBins read once, and dev
evaluation runs on up to 4 cores by forking workers that share the current weights copy-on-write; only
the predictions come back, and the components' own spaCy scorers score them, so each score is the one
``nlp.evaluate`` gives on fresh docs (tests/test_scores_oracle.py checks every epoch against it).
:func:`finetune` says what it shares with ``spacy train``'s loop and what it does differently, and why.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Sequence

import numpy
from spacy.language import Language
from spacy.schemas import ConfigSchemaTraining
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import create_before_to_disk_callback, subdivide_batch
from spacy.util import registry
from thinc.api import Config, constant, fix_random_seed, set_gpu_allocator

from . import pretrain  # noqa: F401  (registers the pretraining corpus reader named in configs)
from ..common.progress import progress
from ..data.docbins import read_examples
from ..data.tokenized import available_cores
from ..storage.fileio import atomic_path
from .results import is_new_best

METRICS = {"textcat": "accuracy", "ner": "ents_f"}
INIT_CORPUS = "lmao_init_train"  # the corpora section init_pipeline reads for initialisation


@dataclass
class Evaluation:
    score: float
    scores: Dict[str, Any]
    seconds: float
    words: int

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds else 0.0


def load_examples(path: Path, nlp: Language, limit: int = 0) -> List[Example]:
    """Gold docs from a DocBin, each paired with an unannotated copy of its tokens (no re-tokenizing).

    The copy keeps the tokenizer's norms (``n't`` -> ``not``): the tok2vec embeds NORM, and ``nlp(text)``
    sets them, so training and evaluation must see them too (spaCy's Corpus re-tokenizes to get them).
    Built from the DocBin's arrays (experiments/data/docbins.py ``read_examples``).
    """
    return read_examples(path, nlp.vocab, limit)


def init_pipeline(config: Config, *, use_gpu: int = -1) -> Language:
    """spaCy's ``init_nlp`` on ``config``, its training corpus for initialisation (labels, layer shapes,
    every pass ``initialize`` makes) read by ``lmao.DocBinExamples.v1``: the pre-tokenized examples
    fine-tuning trains on, read once. spaCy's ``Corpus`` re-tokenizes and aligns every doc on each of
    its 4 passes, most of ``init_nlp``'s time. The pipeline is the same (labels, weights, RNG state,
    config: tests/test_setup_speed.py): the reader is a section of its own, dropped again afterwards,
    so the config saved with the model is the one ``init_nlp`` fills."""
    train_corpus = config["training"]["train_corpus"]  # a dot name, e.g. "corpora.train"
    section = config
    for name in train_corpus.split("."):
        section = section[name]
    init_config = config.copy()
    init_config["corpora"][INIT_CORPUS] = {"@readers": "lmao.DocBinExamples.v1", "path": section["path"]}
    init_config["training"]["train_corpus"] = f"corpora.{INIT_CORPUS}"
    nlp = init_nlp(init_config, use_gpu=use_gpu)
    del nlp.config["corpora"][INIT_CORPUS]
    nlp.config["training"]["train_corpus"] = train_corpus
    return nlp


# ---- evaluation -------------------------------------------------------------------------------------
#
# The dev examples are loaded once per trial; their ``predicted`` docs are templates that the pipeline
# never annotates. Every evaluation predicts on fresh docs, as ``nlp.evaluate`` does (it copies the
# examples): otherwise the entity recognizer, which keeps entities already set on a doc, would start
# each epoch from the previous epoch's predictions. In forked workers the templates are the worker's
# own copy-on-write memory, fresh by construction; in one process the pipeline runs on copies.

_FORK_STATE: Dict[str, Any] = {}


def _predict_docs(nlp: Language, docs: Iterable[Doc], task: str, batch_size: int) -> List[Any]:
    """Run the pipeline over ``docs``; return only the predictions (cats or entity spans)."""
    return [_prediction(_without_tensor(doc), task) for doc in nlp.pipe(docs, batch_size=batch_size)]


def _predict_chunk(bounds) -> List[Any]:
    """Worker: predict one slice of the dev templates, annotating this process's private copy only."""
    start, end = bounds
    state = _FORK_STATE
    return _predict_docs(state["nlp"], state["docs"][start:end], state["task"], state["batch_size"])


def _without_tensor(doc: Doc) -> Doc:
    """Drop the tok2vec output the pipeline left on ``doc`` (width floats per token; 1 GB over the
    protocol's 10000 dev reviews at width 96): the scores need only cats and entities."""
    doc.tensor = numpy.zeros((0,), dtype="float32")
    return doc


def _prediction(doc: Doc, task: str) -> Any:
    if task == "textcat":
        return dict(doc.cats)
    return [(ent.start, ent.end, ent.label_) for ent in doc.ents]


def _apply_prediction(doc: Doc, prediction: Any, task: str) -> None:
    if task == "textcat":
        doc.cats = prediction
    else:
        doc.set_ents([Span(doc, start, end, label=label) for start, end, label in prediction], default="outside")


def _clear_prediction(doc: Doc, task: str) -> None:
    """Undo ``_apply_prediction``: back to an unannotated doc (no cats; every token's entity missing)."""
    if task == "textcat":
        doc.cats = {}
    else:
        doc.set_ents([], default="missing")


def predict(nlp: Language, docs: Sequence[Doc], task: str, *, batch_size: int, processes: int) -> List[Any]:
    """Predictions for ``docs``, split over ``processes`` forked workers (1 = in this process).

    ``docs`` themselves are left as they are: the pipeline only ever sees fresh copies of them.
    """
    processes = max(1, min(processes, len(docs) // max(batch_size, 1) or 1))
    if processes == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return _predict_docs(nlp, (doc.copy() for doc in docs), task, batch_size)
    step = -(-len(docs) // processes)
    chunks = [(i, min(i + step, len(docs))) for i in range(0, len(docs), step)]
    _FORK_STATE.update(nlp=nlp, docs=docs, batch_size=batch_size, task=task)
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_predict_chunk, chunks)
    finally:
        _FORK_STATE.clear()
    return [prediction for chunk in results for prediction in chunk]


@contextmanager
def _annotated(examples: Sequence[Example], predictions: Sequence[Any], task: str):
    """The examples with their predictions set, for scoring; unannotated again afterwards (cheaper than
    scoring copies: 10000 ``Doc.copy()`` calls take about 2 s, a reset a tenth of that)."""
    for eg, prediction in zip(examples, predictions):
        _apply_prediction(eg.predicted, prediction, task)
    try:
        yield examples
    finally:
        for eg in examples:
            _clear_prediction(eg.predicted, task)


def score(nlp: Language, examples: Iterable[Example]) -> Dict[str, Any]:
    """spaCy's Scorer, less its tokenization scores: the dev docs are gold-tokenized, so those are
    always 100% and, over 10000 reviews, cost more than the metric itself."""
    scores: Dict[str, Any] = {}
    examples = list(examples)
    for _name, component in nlp.pipeline:
        if hasattr(component, "score"):
            scores.update(component.score(examples))
    return scores


def textcat_accuracy(examples: Iterable[Example]) -> float:
    """Share of docs whose highest-scoring predicted label is the gold label (exclusive classes)."""
    examples = list(examples)
    correct = sum(
        max(eg.predicted.cats, key=eg.predicted.cats.get) == max(eg.reference.cats, key=eg.reference.cats.get)
        for eg in examples
    )
    return correct / len(examples) if examples else 0.0


def evaluate(nlp: Language, examples: List[Example], task: str, *, batch_size: int, processes: int) -> Evaluation:
    """Predict on fresh copies of the dev docs, then score with the components' own spaCy scorers
    (plus accuracy for textcat). ``seconds`` covers both."""
    start = time.perf_counter()
    predictions = predict(nlp, [eg.predicted for eg in examples], task, batch_size=batch_size, processes=processes)
    with _annotated(examples, predictions, task):
        scores = score(nlp, examples)
        if task == "textcat":
            scores["accuracy"] = textcat_accuracy(examples)
    seconds = time.perf_counter() - start
    metric = METRICS[task]
    value = float(scores.get(metric) or 0.0)
    return Evaluation(value, scores, seconds, sum(len(eg.predicted) for eg in examples))


# ---- training ---------------------------------------------------------------------------------------

def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def selection_score(scores: Dict[str, Any], score_weights: Dict[str, Any]) -> float:
    """The score ``spacy train`` selects by: the ``[training.score_weights]`` sum over the scores, as
    spaCy's ``create_evaluation_callback`` computes it (weights of None or of absent scores dropped).
    Recorded with every epoch (``spacy_score``); selection here uses the task's metric instead (see
    :func:`finetune`)."""
    scores = {k: v for k, v in scores.items() if v is not None}
    weights = {k: v for k, v in score_weights.items() if v is not None and k in scores}
    return float(sum(scores[k] * w for k, w in weights.items() if isinstance(scores[k], (int, float))))


def finetune(
    config: Config,
    task: str,
    out_dir: Path,
    *,
    on_epoch: Callable[[Dict[str, Any]], None] = lambda row: None,
    eval_processes: int = 0,
    use_gpu: int = -1,
) -> Dict[str, Any]:
    """Train for up to ``[training] max_epochs``; keep the best epoch's pipeline in ``out_dir/model-best``.

    Every setting comes from the resolved ``[training]`` block, and the updates are the ones
    ``spacy train`` makes on the same config (``spacy.training.loop.train`` of spaCy 3.8.18, the version
    pinned here): the same seeding (again after ``init_nlp``), ``gpu_allocator``, shuffling, batcher,
    dropout (a float or a schedule), ``accumulate_gradient``, ``before_update`` (0-based step and epoch),
    optimizer schedules, frozen and annotating components, and averaged parameters for evaluation and
    saving. Saving is spaCy's too: ``before_to_disk`` is applied to what is saved, and ``model-last`` is
    written when training ends, also when it crashes (then the exception goes on). ``max_steps = N`` makes N + 1
    updates, as spaCy's loop does (it stops once the 0-based step reaches N). On a tie the later
    evaluation becomes the best (``model-best``, ``best_epoch``), while ``patience`` counts from the
    earliest evaluation with the best score, both as in spaCy. tests/test_finetune_fidelity.py runs
    spaCy's loop beside this one on a trial's saved config.

    What differs, by design:

    - **Epochs are the unit**: evaluation once per epoch, after its last update (spaCy: every
      ``eval_frequency`` steps, from step 0), so ``patience`` counts epochs, ``eval_frequency`` is
      ignored, and a run stopped by ``max_steps`` mid-epoch is evaluated at that step. The per-epoch
      learning curve is what the protocol compares, and an evaluation of the 10000 dev reviews costs as
      much as an epoch of training.
    - **Selection by the task's metric** (``METRICS``: textcat ``accuracy``, NER ``ents_f``), not the
      ``score_weights`` sum: the protocol's metric is dev accuracy, which no spaCy scorer reports (spaCy's
      textcat default weighs ``cats_score``, macro F). With the NER config's weights (``ents_f`` 1, ``ents_p``
      and ``ents_r`` 0) the two are the same score. The weighted score is recorded per epoch
      (``spacy_score``).
    - **No** ``update_meta``: spaCy writes each evaluation's scores and losses into the saved
      ``meta.json`` ("performance"); here they are in ``results.json``, and the saved pipeline's bytes
      stay the pipeline's alone, so ``model_size_bytes`` is what ``analysis.sizes`` predicts before
      training, byte for byte (tests/test_frontier.py), rather than a number that moves with the length
      of the scores' decimal digits.
    - **Evaluation** predicts in up to ``eval_processes`` forked workers (default: one per core this
      process may use, ``available_cores()``, which honours a cgroup CPU limit, at most 4; one on a GPU)
      and scores without the tokenization scores (gold-tokenized dev docs: always 100%).
    - **model-last** is written once, at the end (spaCy rewrites it at every evaluation); ``model-best``
      is written by its own ``to_disk`` (spaCy copies ``model-last``), the same files.
    """
    nlp = init_pipeline(config, use_gpu=use_gpu)
    training = nlp.config.interpolate()["training"]
    if use_gpu >= 0 and training["gpu_allocator"]:
        set_gpu_allocator(training["gpu_allocator"])  # init_nlp set it already; spaCy's train() does again
    T = registry.resolve(training, schema=ConfigSchemaTraining)
    fix_random_seed(T["seed"])  # again after init_nlp, as spaCy's train() does
    optimizer, batcher = T["optimizer"], T["batcher"]
    dropouts = constant(T["dropout"]) if isinstance(T["dropout"], float) else T["dropout"]
    before_to_disk = create_before_to_disk_callback(T["before_to_disk"])
    train = load_examples(Path(config["paths"]["train"]), nlp)
    dev = load_examples(Path(config["paths"]["dev"]), nlp)
    train_words = sum(len(eg.reference) for eg in train)
    processes = 1 if use_gpu >= 0 else (eval_processes or min(available_cores(), 4))
    frozen = T["frozen_components"]
    max_steps = T["max_steps"]
    best_dir = out_dir / "model-best"
    best: Dict[str, Any] = {"epoch": None, "score": None, "words_per_second": None}
    first_best_epoch = None  # the earliest epoch with the best score: patience counts from it (spaCy's)
    epochs: List[Dict[str, Any]] = []
    step = 0  # updates made so far

    def averaged():
        return nlp.use_params(optimizer.averages) if optimizer.averages else nullcontext()

    def save(path: Path) -> None:
        with atomic_path(path, is_dir=True) as tmp:
            before_to_disk(nlp).to_disk(tmp)

    try:
        for epoch in range(1, T["max_epochs"] + 1):
            start = time.perf_counter()
            random.shuffle(train)  # spaCy's create_train_batches: global RNG, once per epoch
            losses: Dict[str, float] = {}
            for batch in progress(batcher(train), desc=f"epoch {epoch}/{T['max_epochs']}", unit="batch"):
                if T["before_update"]:
                    T["before_update"](nlp, {"step": step, "epoch": epoch - 1})
                dropout = next(dropouts)
                for subbatch in subdivide_batch(batch, T["accumulate_gradient"]):
                    nlp.update(subbatch, drop=dropout, losses=losses, sgd=False, exclude=frozen,
                               annotates=T["annotating_components"])
                for name, proc in nlp.pipeline:
                    if name not in frozen and getattr(proc, "is_trainable", False) and \
                            proc.model not in (True, False, None):
                        proc.finish_update(optimizer)
                optimizer.step_schedules()
                step += 1
                if max_steps and step > max_steps:  # spaCy: stop once the 0-based step reaches max_steps
                    break
            train_seconds = time.perf_counter() - start
            # Evaluate and save with the averaged parameters when the optimizer keeps them (spaCy does).
            with averaged():
                evaluation = evaluate(nlp, dev, task, batch_size=nlp.batch_size, processes=processes)
                if best["score"] is None or evaluation.score > best["score"]:
                    first_best_epoch = epoch
                if is_new_best(evaluation.score, best["score"]):
                    best = {"epoch": epoch, "score": evaluation.score,
                            "words_per_second": evaluation.words_per_second}
                    save(best_dir)
            row = {
                "epoch": epoch,
                "train_loss": float(sum(v for k, v in losses.items() if k != "tok2vec")),
                "losses": {k: float(v) for k, v in losses.items()},
                "dev_score": evaluation.score,
                "spacy_score": selection_score(evaluation.scores, T["score_weights"]),
                "steps": step,
                "seconds": round(train_seconds + evaluation.seconds, 3),
                "train_seconds": round(train_seconds, 3),
                "eval_seconds": round(evaluation.seconds, 3),
                "train_words": train_words,
                "train_words_per_second": train_words / train_seconds if train_seconds else None,
                "eval_words_per_second": evaluation.words_per_second,
                "learn_rate": float(optimizer.learn_rate),
                "dev_scores": _jsonable(evaluation.scores),
            }
            epochs.append(row)
            on_epoch(row)
            if (T["patience"] and epoch - first_best_epoch >= T["patience"]) or (max_steps and step > max_steps):
                break
    except BaseException:
        with suppress(Exception), averaged():  # spaCy saves model-last on the way out, then re-raises
            save(out_dir / "model-last")
        raise
    with averaged():
        save(out_dir / "model-last")
    return {
        "epochs": epochs,
        "best_epoch": best["epoch"],
        "best_dev_score": best["score"],
        "inference_words_per_second": best["words_per_second"],
        "model_size_bytes": directory_size(best_dir),
        "data": {"train_docs": len(train), "dev_docs": len(dev), "train_words": train_words,
                 "dev_words": sum(len(eg.reference) for eg in dev)},
    }


def evaluate_saved(model_dir: Path, data: Path, task: str, *, batch_size: int, processes: int) -> Evaluation:
    """Score a saved pipeline on a DocBin (the final test evaluation)."""
    import spacy

    nlp = spacy.load(model_dir)
    return evaluate(nlp, load_examples(data, nlp), task, batch_size=batch_size, processes=processes)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, str)) or value is None:
        return value
    return float(value)
