"""LMAO pretraining: spaCy's pretraining model and update step, in a loop that keeps every checkpoint.

Why not ``spacy pretrain`` as is: its corpus readers re-tokenize raw text every epoch, and it keeps only
what ``n_save_every`` (batches) allows. Here the corpus is the tokenized DocBin shards written once by
``lmao data``, a checkpoint is saved after every epoch (``model{epoch}.bin``, spaCy's naming: ``model0.bin``
= after one epoch) and optionally every N words, so one run serves every "pretraining epochs = k" trial.
The model, objective and update step are spaCy's (``create_pretraining_model``, ``make_update``).
A finished run is cached content-addressed: the key hashes exactly the inputs that change the weights.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

from spacy.tokens import Doc
from spacy.schemas import ConfigSchemaPretrain
from spacy.training.pretrain import create_pretraining_model, make_update
from spacy.util import dot_to_object, load_model_from_config, registry
from thinc.api import Config, fix_random_seed

from . import objectives  # noqa: F401  (registers lmao.PretrainTrigramVectors.v1)
from .data.docbins import docbin_files, read_docs
from .fileio import feed_file, write_json
from .progress import log, progress

LOG_FILE = "log.jsonl"
INFO_FILE = "pretraining.json"
# Everything in a trial's params that changes pretrained weights (the rest is fine-tuning only).
PRETRAINING_PARAMS = (
    "width", "depth", "embed_rows", "window_size", "maxout_pieces", "static_vectors_input",
    "objective", "pretrain_loss", "pretrain_max_epochs", "pretrain_max_words",
    "pretrain_save_every_words", "pretrain_dropout", "pretrain_learn_rate", "pretrain_batch_size",
    "pretrain_hidden_size", "pretrain_n_characters", "seed",
)
CODE_VERSION = "pretrain-v1"  # bump when this module changes what a checkpoint contains


@registry.readers("lmao.PretrainDocBins.v1")
def create_pretrain_docbins(path: str, limit: int = 0) -> Callable[[Any], Iterator[Doc]]:
    """Reader for ``[corpora.pretrain]``: tokenized docs straight from DocBin shards (no re-tokenizing)."""

    def read(nlp) -> Iterator[Doc]:
        for i, doc in enumerate(read_docs(path, nlp.vocab)):
            if limit and i >= limit:
                break
            if len(doc):
                yield doc

    return read


def checkpoint_name(epochs: int) -> str:
    """The file holding the weights after ``epochs`` full epochs (spaCy numbers epochs from 0)."""
    return f"model{epochs - 1}.bin"


def pretrain(config: Config, output_dir: Path, *, max_words: int = 0, save_every_words: int = 0,
             silent: bool = False, n_workers: int = 1) -> Dict[str, Any]:
    """Run pretraining as ``config[pretraining]`` says; write checkpoints + ``log.jsonl`` + info.

    ``n_workers`` > 1 splits every batch between that many processes (data-parallel, one optimizer
    step per batch: see :mod:`experiments.parallel`). The weights then depend on the worker count (each
    worker draws its own dropout masks), so it is part of the cache key; 1 is spaCy's own update step.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    config = config.copy()
    config["initialize"]["init_tok2vec"] = None
    seed = config["training"]["seed"]
    if seed is not None:
        fix_random_seed(seed)
    # As spaCy's pretrain does: the pipeline from the config, initialised (vectors loaded) by
    # create_pretraining_model without reading any labelled data.
    nlp = load_model_from_config(config, auto_fill=True)
    filled = nlp.config.interpolate()
    P = registry.resolve(filled["pretraining"], schema=ConfigSchemaPretrain)
    corpus = registry.resolve({"corpus": dot_to_object(filled, P["corpus"])})["corpus"]
    model = create_pretraining_model(nlp, P)
    optimizer = P["optimizer"]
    objective = model.attrs["loss"]
    tok2vec = model.get_ref("tok2vec")
    words = 0
    next_save = save_every_words or 0
    start = time.perf_counter()
    checkpoints: Dict[str, Dict[str, Any]] = {}

    def save(name: str, epoch: int, loss: float) -> None:
        with model.use_params(optimizer.averages):
            (output_dir / name).write_bytes(tok2vec.to_bytes())
        row = {"checkpoint": name, "epoch": epoch, "words": words, "epoch_loss": loss,
               "seconds": round(time.perf_counter() - start, 3)}
        checkpoints[name] = row
        with (output_dir / LOG_FILE).open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    stop = False
    if n_workers > 1:
        from .parallel import DataParallel, loss_weighting

        update = DataParallel(model, objective, optimizer, n_workers=n_workers, seed=seed,
                              loss_weight=loss_weighting(dict(nlp.config["pretraining"]["objective"])),
                              batches=lambda: P["batcher"](corpus(nlp)))
    else:
        update = None
    try:
        for epoch in range(P["max_epochs"]):
            epoch_loss = 0.0
            batches = P["batcher"](corpus(nlp))
            if update is not None:
                update.start_epoch()
            for docs in progress(batches, desc=f"pretrain epoch {epoch + 1}/{P['max_epochs']}", unit="batch"):
                docs = list(docs)
                if update is not None:
                    epoch_loss += update(docs)
                else:
                    epoch_loss += make_update(model, docs, optimizer, objective)
                words += sum(len(doc) for doc in docs)
                if save_every_words and words >= next_save:
                    save(f"model-w{words}.bin", epoch, epoch_loss)
                    next_save += save_every_words
                if max_words and words >= max_words:
                    stop = True
                    break
            save(checkpoint_name(epoch + 1), epoch, epoch_loss)
            if not silent:
                elapsed = time.perf_counter() - start
                log(f"pretrain: epoch {epoch + 1} loss {epoch_loss:.1f} words {words} ({words / elapsed:.0f} w/s)")
            if stop:
                break
    finally:
        if update is not None:
            update.close()
    seconds = time.perf_counter() - start
    info = {"words": words, "seconds": round(seconds, 3), "words_per_second": words / seconds if seconds else None,
            "epochs_completed": len([c for c in checkpoints if not c.startswith("model-w")]),
            "checkpoints": checkpoints, "objective": dict(nlp.config["pretraining"]["objective"]),
            "workers": n_workers}
    write_json(output_dir / INFO_FILE, info)
    return info


def corpus_fingerprint(corpus_dir: Path) -> str:
    """sha256 over the pretraining shards' bytes: the cache key changes iff the corpus does."""
    digest = hashlib.sha256()
    for file in docbin_files(Path(corpus_dir) / "pretrain"):
        digest.update(file.name.encode())
        feed_file(digest, file)
    return digest.hexdigest()


def vectors_fingerprint(vectors: Optional[Path]) -> Optional[str]:
    if not vectors:
        return None
    digest = hashlib.sha256()
    for file in sorted(Path(vectors).rglob("*")):
        if file.is_file() and file.name != "vectors-info.json":
            digest.update(str(file.relative_to(vectors)).encode())
            feed_file(digest, file)
    return digest.hexdigest()


def pretrain_workers(params: Mapping[str, Any]) -> int:
    """The processes a pretraining run uses: ``pretrain_workers``, 0 meaning every core of this machine."""
    from .data.tokenized import available_cores

    n = params.get("pretrain_workers", 1)
    return n if n > 0 else available_cores()


def pretraining_inputs(params: Mapping[str, Any], corpus_dir: Path, vectors: Optional[Path],
                       uses_vectors: bool) -> Dict[str, Any]:
    """Exactly what determines the pretrained weights (the cache key is the hash of this)."""
    import spacy
    import thinc

    inputs = {
        "code": CODE_VERSION,
        "spacy": spacy.__version__,
        "thinc": thinc.__version__,
        "corpus": corpus_fingerprint(corpus_dir),
        "vectors": vectors_fingerprint(vectors) if uses_vectors else None,
        "params": {name: params[name] for name in PRETRAINING_PARAMS},
    }
    workers = pretrain_workers(params)
    if workers != 1:  # one process is spaCy's own update step: its runs keep the keys they always had
        inputs["workers"] = workers
    if params.get("cpu_gemm", "blis") != "blis":  # thinc's default BLIS: the keys runs always had
        inputs["cpu_gemm"] = params["cpu_gemm"]
    return inputs


@dataclass(frozen=True)
class Pretrained:
    """The pretrained weights a trial starts from: which checkpoint of which (cached) run, and its cost.

    The run's own files (``pretraining.json``, checkpoint names) are read only here.
    """

    objective: str
    loss: Optional[str]  # None for the characters objective (it has no distance)
    epochs: int  # full pretraining epochs behind the checkpoint
    words_seen: int  # words the checkpoint was trained on
    seconds: float  # pretraining compute spent by this trial (0 when the run was cached)
    run_seconds: float  # the whole run's time
    words_per_second: Optional[float]
    cached: bool  # True when an existing run was reused
    cache_key: str
    seed: int  # the pretraining run's seed (``pretrain_seed`` when fixed, else the trial's)
    checkpoint: Path

    def to_results(self) -> Dict[str, Any]:
        """The ``pretraining`` block of ``results.json`` (see :mod:`experiments.results`)."""
        return {"objective": self.objective, "loss": self.loss, "epochs": self.epochs,
                "words_seen": self.words_seen, "seconds": self.seconds, "run_seconds": self.run_seconds,
                "words_per_second": self.words_per_second, "cached": self.cached, "cache_key": self.cache_key,
                "seed": self.seed, "checkpoint": str(self.checkpoint)}


def read_run(run_dir: Path, epochs: int, params: Mapping[str, Any], *, cache_key: str, cached: bool) -> Pretrained:
    """The checkpoint after ``epochs`` epochs (at most as many as the run completed) of a finished run."""
    info = json.loads((Path(run_dir) / INFO_FILE).read_text(encoding="utf-8"))
    usable = min(epochs, info["epochs_completed"])
    name = checkpoint_name(usable)
    row = info["checkpoints"][name]
    return Pretrained(
        objective=params["objective"],
        loss=params["pretrain_loss"] if params["objective"] != "characters" else None,
        epochs=usable, words_seen=row["words"], seconds=0.0 if cached else row["seconds"],
        run_seconds=info["seconds"], words_per_second=info["words_per_second"], cached=cached,
        cache_key=cache_key, seed=params["seed"], checkpoint=Path(run_dir) / name,
    )


def pretrained_checkpoint(config: Config, params: Mapping[str, Any], corpus_dir: Path, vectors: Optional[Path],
                          uses_vectors: bool, cache_root: str) -> Pretrained:
    """Reuse the cached pretraining run these params need, or run it (``config``: the trial's pretraining
    config), and return the checkpoint for ``params["pretrain_epochs"]``."""
    from .cache import ArtifactCache, cache_key
    from .errors import InputError

    epochs = params["pretrain_epochs"]
    if epochs > params["pretrain_max_epochs"]:
        raise InputError("pretrain_epochs", f"{epochs} > pretrain_max_epochs ({params['pretrain_max_epochs']})")
    inputs = pretraining_inputs(params, corpus_dir, vectors, uses_vectors)
    key = cache_key(inputs)

    def build(out: Path) -> None:
        log(f"pretraining: {params['objective']} objective, {params['pretrain_max_epochs']} epochs (key {key[:12]})")
        pretrain(config, out, max_words=params["pretrain_max_words"],
                 save_every_words=params["pretrain_save_every_words"], n_workers=pretrain_workers(params))
        write_json(out / "inputs.json", inputs)

    entry = ArtifactCache(cache_root).get_or_create(key, build)
    return read_run(entry.path, epochs, params, cache_key=key, cached=entry.hit)
