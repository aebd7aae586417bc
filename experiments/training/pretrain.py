"""LMAO pretraining: spaCy's pretraining model and update step, in a loop that keeps every checkpoint.

Why not ``spacy pretrain`` as is: its corpus readers re-tokenize raw text every epoch, and it keeps only
what ``n_save_every`` (batches) allows. Here the corpus is the tokenized DocBin shards written once by
``lmao data``, a checkpoint is saved after every epoch (``model{epoch}.bin``, spaCy's naming: ``model0.bin``
= after one epoch) and optionally every N words, so one run serves every "pretraining epochs = k" trial.
The model, objective and update step are spaCy's (``create_pretraining_model``, ``make_update``).
A finished run is cached content-addressed: the key hashes exactly the inputs that change the weights
(:func:`pretraining_inputs`).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

from spacy.language import Language
from spacy.tokens import Doc
from spacy.schemas import ConfigSchemaPretrain
from spacy.training.pretrain import create_pretraining_model, make_update
from spacy.util import dot_to_object, get_package_version, is_package, load_model_from_config, registry
from thinc.api import Config, fix_random_seed

from . import objectives  # noqa: F401  (registers lmao.PretrainTrigramVectors.v1)
from ..common.progress import log, progress
from ..data.docbins import docbin_files, read_docs
from ..storage.fileio import path_fingerprint, write_json

LOG_FILE = "log.jsonl"
INFO_FILE = "pretraining.json"
# Bump when this module changes what a checkpoint contains. v2: the key hashes the filled config (v1
# hashed a list of trial params, blind to config.cfg edits and --section.key overrides).
CODE_VERSION = "pretrain-v2"


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
    step per batch: see :mod:`experiments.training.parallel`). The weights then depend on the worker count (each
    worker draws its own dropout masks), so it is part of the cache key; 1 is spaCy's own update step.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    seed = config.interpolate()["training"]["seed"]
    if seed is not None:
        fix_random_seed(seed)
    # As spaCy's pretrain does: the pipeline from the config, initialised (vectors loaded) by
    # create_pretraining_model without reading any labelled data.
    nlp = _pretraining_nlp(config)
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


def _pretraining_nlp(config: Config) -> Language:
    """The pipeline pretraining builds from ``config``, every default filled in (spaCy's auto-fill, as
    ``spacy pretrain`` does); pretraining starts from fresh weights, so ``init_tok2vec`` is dropped."""
    config = config.copy()
    config["initialize"]["init_tok2vec"] = None
    return load_model_from_config(config, auto_fill=True)


def _pretrained_components(filled: Config) -> Dict[str, Any]:
    """The ``[components]`` blocks whose weights pretraining trains: ``[pretraining] component``, and the
    tok2vec a listener there points to (as ``create_pretraining_model`` of spaCy 3.8 follows it)."""
    name = filled["pretraining"]["component"]
    out = {name: filled["components"][name]}
    model = filled["components"][name].get("model", {})
    layers = [model] + [v for v in model.values() if isinstance(v, dict)]
    for layer in layers:
        if str(layer.get("@architectures", "")).startswith("spacy.Tok2VecListener"):
            upstream = layer.get("upstream", "*")
            upstream = "tok2vec" if upstream == "*" else upstream
            out[upstream] = filled["components"][upstream]
    return out


def weights_config(config: Config) -> Dict[str, Any]:
    """The part of a pretraining config that determines the weights, filled and interpolated, with every
    path (corpus shards, vectors, any other file a value names) replaced by a fingerprint of its content.

    Sections: ``[pretraining]`` (filled by spaCy's pretraining schema), the pretrained component(s),
    the ``[corpora]`` reader ``[pretraining] corpus`` names, ``[initialize]`` (vectors, lookups, hooks),
    ``[system]``, ``[nlp]`` (language, pipeline, tokenizer) and ``[training] seed`` (the seed pretraining
    fixes). Left out, because pretraining never reads them: the other components, the train/dev readers,
    the rest of ``[training]`` (fine-tuning's optimizer, dropout, batches, epochs) and ``[nlp] batch_size``
    (the default batch size of ``nlp.pipe``).
    """
    filled = _pretraining_nlp(config).config
    filled["pretraining"] = registry.fill(filled["pretraining"], schema=ConfigSchemaPretrain)
    filled = filled.interpolate()
    corpus = filled["pretraining"]["corpus"]
    part = {
        "pretraining": filled["pretraining"],
        "components": _pretrained_components(filled),
        "corpora": {corpus: dot_to_object(filled, corpus)},
        "initialize": filled["initialize"],
        "system": filled["system"],
        "nlp": {k: v for k, v in filled["nlp"].items() if k != "batch_size"},
        "training": {"seed": filled["training"]["seed"]},
    }
    return _fingerprint_paths(json.loads(json.dumps(part)))


def _fingerprint_paths(value: Any) -> Any:
    """``value`` with each string naming an existing file or folder replaced by ``sha256:<content>``,
    and each installed spaCy pipeline package (e.g. vectors = "en_core_web_lg") by ``name==version``."""
    if isinstance(value, dict):
        return {k: _fingerprint_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fingerprint_paths(v) for v in value]
    if isinstance(value, str) and value not in ("", ".", ".."):
        if value.isidentifier() and is_package(value):  # spaCy's load_model tries a package before a path
            from .vectors import package_fingerprint, pipeline_package

            # A pipeline package: name==version plus a hash of its vocab/ (vectors, key map, strings).
            return package_fingerprint(value) if pipeline_package(value) else f"{value}=={get_package_version(value)}"
        if Path(value).exists():
            return "sha256:" + path_fingerprint(Path(value))
    return value


def library_versions() -> Dict[str, Optional[str]]:
    """The versions of the libraries that compute or fill in the weights (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: Dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in ("spacy", "thinc", "confection", "numpy", "blis", "spacy-lookups-data", "cupy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def arithmetic(params: Mapping[str, Any], gpu_id: int) -> Dict[str, Any]:
    """What changes the float arithmetic of the same run: processes per batch, device, matrix multiply."""
    out: Dict[str, Any] = {"workers": pretrain_workers(params), "machine": platform.machine()}
    if gpu_id >= 0:
        import cupy

        out["device"] = "gpu"
        out["gpu"] = cupy.cuda.runtime.getDeviceProperties(gpu_id)["name"].decode()
        out["cupy"] = cupy.__version__
    else:
        out["device"] = "cpu"
        out["cpu_gemm"] = params["cpu_gemm"]
    return out


def pretrain_workers(params: Mapping[str, Any]) -> int:
    """The processes a pretraining run uses: ``pretrain_workers``, 0 meaning every core of this machine."""
    from ..data.tokenized import available_cores

    n = params.get("pretrain_workers", 1)
    return n if n > 0 else available_cores()


def pretraining_inputs(config: Config, params: Mapping[str, Any], gpu_id: int = -1) -> Dict[str, Any]:
    """Exactly what determines the pretrained weights (the cache key is the hash of this): the filled
    config pretraining reads with paths as content fingerprints (:func:`weights_config`), the limits
    :func:`pretrain` takes besides the config, the library versions and the arithmetic."""
    return {
        "code": CODE_VERSION,
        "config": weights_config(config),
        "run": {"max_words": params["pretrain_max_words"], "save_every_words": params["pretrain_save_every_words"]},
        "versions": library_versions(),
        "arithmetic": arithmetic(params, gpu_id),
    }


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
        """The ``pretraining`` block of ``results.json`` (see :mod:`experiments.training.results`)."""
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


def pretrained_checkpoint(config: Config, params: Mapping[str, Any], cache_root: str, *, gpu_id: int = -1
                          ) -> Pretrained:
    """Reuse the cached pretraining run this config needs, or run it (``config``: the trial's pretraining
    config, ``gpu_id``: the device it runs on, -1 for CPU), and return the checkpoint for
    ``params["pretrain_epochs"]``."""
    from ..common.errors import InputError
    from ..storage.cache import ArtifactCache, cache_key

    epochs = params["pretrain_epochs"]
    if epochs > params["pretrain_max_epochs"]:
        raise InputError("pretrain_epochs", f"{epochs} > pretrain_max_epochs ({params['pretrain_max_epochs']})")
    inputs = pretraining_inputs(config, params, gpu_id)
    key = cache_key(inputs)

    def build(out: Path) -> None:
        log(f"pretraining: {params['objective']} objective, {params['pretrain_max_epochs']} epochs (key {key[:12]})")
        pretrain(config, out, max_words=params["pretrain_max_words"],
                 save_every_words=params["pretrain_save_every_words"], n_workers=pretrain_workers(params))
        write_json(out / "inputs.json", inputs)

    entry = ArtifactCache(cache_root).get_or_create(key, build)
    return read_run(entry.path, epochs, params, cache_key=key, cached=entry.hit)
