"""One trial: resolve params -> pretrain (or reuse a cached run) -> fine-tune -> ``results.json``.

The result file is rewritten atomically after every epoch (``status: running``), so a sweep can read
intermediate scores and a crash leaves a readable record. The test split is read only when ``final``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Set, Tuple

from thinc.api import Config

from ..common.errors import InputError
from ..common.progress import log
from ..storage.storage import local_corpus
from . import results as result_file
from .config import build_config, load_experiment, needs_vectors
from ..data.docbins import require_prepared_corpus
from .params import resolve


def resolve_vectors(params: Mapping[str, Any], corpus_dir: Path) -> Optional[Path]:
    """``-P vectors=PATH`` or an installed spaCy pipeline package name (``en_core_web_lg``: kept as the
    name, spaCy's ``[initialize] vectors`` loads it), else ``CORPUS/vectors`` when ``lmao vectors train`` put
    them there. None when the trial reads no vectors (neither as input nor as the pretraining target): a
    design may name one table for all its settings, and a setting without vectors must not need it."""
    if not needs_vectors(params, pretraining=params["pretrain_epochs"] > 0):
        return None
    if params["vectors"]:
        from .vectors import resolve_vectors_source

        return resolve_vectors_source(params["vectors"])  # type: ignore[return-value]
    default = corpus_dir / "vectors"
    return default if default.exists() else None


def corpus_info(corpus_dir: Path, pretrain_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Which prepared corpus the trial read: its folder and the manifest `lmao data` wrote; and, when the
    pretraining text came from another corpus (``pretrain_corpus``), the same for that one."""
    def manifest(folder: Path) -> Optional[Dict[str, Any]]:
        path = folder / "manifest.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    info: Dict[str, Any] = {"dir": str(corpus_dir), "manifest": manifest(corpus_dir)}
    if pretrain_dir is not None:
        info["pretrain"] = {"dir": str(pretrain_dir), "manifest": manifest(pretrain_dir)}
    return info


def select_device(gpu: str, cpu_gemm: str = "blis") -> int:
    """``auto``: the GPU when one is there (spaCy's allocator), else CPU; ``-1``: CPU; ``N``: GPU N.
    On CPU, thinc's ops use the ``cpu_gemm`` matrix multiply (:func:`use_cpu_ops`)."""
    import spacy

    if gpu == "auto":
        gpu_id = 0 if spacy.prefer_gpu() else -1
    else:
        gpu_id = parse_gpu(gpu)
        if gpu_id >= 0:
            spacy.require_gpu(gpu_id)
    if gpu_id < 0:
        use_cpu_ops(cpu_gemm)
    return gpu_id


def parse_gpu(gpu: str) -> int:
    """``--gpu``: ``auto`` (-2 here), ``-1`` or a GPU id."""
    if gpu == "auto":
        return -2
    try:
        gpu_id = int(gpu)
    except ValueError:
        gpu_id = -2
    if gpu_id < -1:
        raise InputError("--gpu", f"expected auto, -1 or a GPU id, got {gpu!r}")
    return gpu_id


def check_configs(experiment_dir: Path, params: Mapping[str, Any], corpus_dir: Path, vectors: Optional[Path],
                  config_overrides: Optional[Mapping[str, Any]], pretrain_dir: Optional[Path] = None) -> None:
    """Build and validate (spaCy's auto-fill and schemas) the configs the trial will train with, so a bad
    ``config.cfg`` value or ``--section.key`` override is an :class:`InputError` before anything is written
    or trained: naming the override when the problem is at one, else ``config.cfg``."""
    from confection import ConfigValidationError
    from spacy.schemas import ConfigSchemaPretrain, ConfigSchemaTraining
    from spacy.util import load_model_from_config, registry

    from ..common.errors import read_user_text

    config_path = Path(experiment_dir) / "config.cfg"
    read_user_text(config_path)  # not UTF-8: the line
    overrides = dict(config_overrides or {})
    section = ""  # the section being validated: spaCy's error locations are relative to it
    try:
        configs = [build_config(experiment_dir, params, corpus_dir=corpus_dir, vectors=vectors,
                                overrides=overrides)]
        if params["pretrain_epochs"] > 0:
            configs.append(pretraining_setup(experiment_dir, params, corpus_dir, vectors, overrides, pretrain_dir)[1])
        for config in configs:
            filled = load_model_from_config(config, auto_fill=True, validate=True).config.interpolate()
            for section, schema in (("training", ConfigSchemaTraining), ("pretraining", ConfigSchemaPretrain)):
                if section in filled:  # resolve: fill leaves a value of the wrong type alone (spaCy 3.8)
                    registry.resolve(filled[section], schema=schema)
            section = ""
    except ConfigValidationError as err:
        locs = [".".join([section] * bool(section) + [str(part) for part in e.get("loc", [])])
                for e in (err.errors or [])]
        messages = [f"{loc}: {e.get('msg')}" for loc, e in zip(locs, err.errors or [])]
        at = next((key for loc in locs for key in overrides if loc == key or loc.startswith(key + ".")), None)
        where = f"--{at}" if at else config_path
        raise InputError(where, f"{err.title or 'invalid config'}: {'; '.join(messages) or err}") from None
    except (ValueError, KeyError, TypeError) as err:  # configparser's errors, a model's own argument checks
        if isinstance(err, InputError):
            raise
        raise InputError(config_path, f"invalid config ({type(err).__name__}: {err})") from None


def use_cpu_ops(gemm: str) -> None:
    """Make thinc's CPU ops (every model built after this) multiply matrices with ``gemm``.

    ``blis`` is thinc's default, its bundled BLIS. ``numpy`` is thinc's own ``NumpyOps(use_blis=False)``:
    numpy's BLAS (OpenBLAS in the numpy wheels), faster here (benchmarks/README.md, "Matrix multiply"). It is the same
    computation; only float rounding differs, so a pretraining cache key names it when it is not BLIS.
    numpy's BLAS is held to one thread per process (threadpoolctl): this repo uses cores by processes
    (evaluation and pretraining workers, sweep workers), and one thread keeps the result independent of
    the machine's core count."""
    from thinc.api import NumpyOps, set_current_ops

    if gemm == "numpy":
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    set_current_ops(NumpyOps(use_blis=gemm == "blis"))


def pretraining_setup(experiment_dir: Path, params: Mapping[str, Any], corpus_dir: Path, vectors: Optional[Path],
                      config_overrides: Optional[Mapping[str, Any]] = None,
                      pretrain_dir: Optional[Path] = None) -> Tuple[Dict[str, Any], Config]:
    """The params and the spaCy config of a trial's pretraining run: ``config.cfg``, the params, then the
    ``--section.key`` overrides (the pretraining cache key hashes this config, filled)."""
    # A fixed pretrain_seed lets one cached pretraining run serve every fine-tuning seed.
    pre_params = {**params, "seed": params["pretrain_seed"]} if params["pretrain_seed"] >= 0 else dict(params)
    config = build_config(experiment_dir, pre_params, corpus_dir=corpus_dir, vectors=vectors, pretraining=True,
                          overrides=config_overrides, pretrain_dir=pretrain_dir)
    return pre_params, config


# Makes a trial's experiment tracker from (experiment name, params, out_dir); the tracker gets
# ``log_epoch(row)`` after every epoch and ``finish(results)`` at the end. Training never imports a tracker:
# the ``lmao trial`` command passes experiments.polyaxon.make_tracker (a Polyaxon run when an API is there).
TrackerFactory = Callable[[str, Mapping[str, Any], Path], Any]


class NoTracking:
    """No tracker (what :func:`run_trial` uses without a ``tracker_factory``): every call is a no-op."""

    enabled = False

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        pass

    def finish(self, results: Mapping[str, Any]) -> None:
        pass


def no_tracking(experiment: str, params: Mapping[str, Any], out_dir: Path) -> NoTracking:
    return NoTracking()


def run_trial(
    experiment_dir: Path,
    out_dir: Path,
    overrides: Mapping[str, Any],
    *,
    config_overrides: Optional[Mapping[str, Any]] = None,
    cache: Optional[str] = None,
    artifacts: Optional[str] = None,
    final: bool = False,
    gpu: str = "auto",
    eval_processes: int = 0,
    meta: Optional[Mapping[str, str]] = None,
    tracker_factory: Optional[TrackerFactory] = None,
) -> Dict[str, Any]:
    """Run one trial and return its results (also written to ``out_dir/results.json``).

    ``meta`` is free-form provenance recorded as is (a sweep passes its study, search and trial number).
    ``tracker_factory`` makes the trial's tracker (:data:`TrackerFactory`; default: none); the ``lmao trial``
    command passes :func:`experiments.polyaxon.make_tracker`.
    """
    from .finetune import METRICS, evaluate_saved, finetune
    from .vectors import vectors_record

    experiment_dir, out_dir = Path(experiment_dir), Path(out_dir)
    experiment = load_experiment(experiment_dir)
    params = resolve(experiment["params"], overrides, defaults_source=experiment_dir / "defaults.yml")
    task = experiment["task"]
    # Every input is checked here, before anything is written or trained.
    parse_gpu(gpu)
    if eval_processes < 0:
        raise InputError("--eval-processes", f"must be at least 0 (0 = cores, max 4), got {eval_processes}")
    if params["pretrain_epochs"] > params["pretrain_max_epochs"]:
        raise InputError("-P", f"pretrain_epochs {params['pretrain_epochs']} > pretrain_max_epochs "
                               f"{params['pretrain_max_epochs']} (the pretraining run saves one checkpoint per epoch)")
    corpus_dir = local_corpus(params["corpus_dir"])  # gs://...: a verified local copy
    require_prepared_corpus(corpus_dir)
    if final and not (corpus_dir / "test.spacy").exists():
        raise InputError(corpus_dir / "test.spacy", "--final needs the test split, which the corpus lacks")
    pretrain_dir = None  # another corpus's pretraining text (-P pretrain_corpus), a local copy of it
    if params["pretrain_corpus"] and params["pretrain_epochs"] > 0:
        pretrain_dir = local_corpus(params["pretrain_corpus"])
        if not (pretrain_dir / "pretrain").is_dir():
            raise InputError(pretrain_dir / "pretrain", "pretraining text missing (param 'pretrain_corpus': "
                                                        "a folder prepared by `lmao data ...`)")
    vectors = resolve_vectors(params, corpus_dir)
    check_configs(experiment_dir, params, corpus_dir, vectors, config_overrides, pretrain_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result_file.clear_unfinished(out_dir)  # a retried attempt starts clean, never mixed with the killed one
    started = time.perf_counter()
    results = result_file.new_results(
        experiment=experiment["name"], task=task, metric=METRICS[task], params=params,
        config_overrides=config_overrides, meta=meta, corpus=corpus_info(corpus_dir, pretrain_dir),
        vectors=vectors_record(vectors) if vectors is not None else None, final=final)

    def save() -> None:
        results["wall_seconds"] = round(time.perf_counter() - started, 3)
        result_file.save(out_dir, results)

    save()
    tracker = (tracker_factory or no_tracking)(experiment["name"], params, out_dir)
    kernels = None
    try:
        use_gpu = select_device(gpu, params["cpu_gemm"])
        results["device"] = f"gpu:{use_gpu}" if use_gpu >= 0 else "cpu"
        if use_gpu >= 0 and cache:
            kernels = sync_kernels("restore", cache)  # CuPy's compiled kernels from the bucket, if any
        init_tok2vec = None
        if params["pretrain_epochs"] > 0:
            from .pretrain import pretrained_checkpoint

            pre_params, pretrain_config = pretraining_setup(experiment_dir, params, corpus_dir, vectors,
                                                            config_overrides, pretrain_dir)
            pretrained = pretrained_checkpoint(pretrain_config, pre_params, cache or str(out_dir.parent / "cache"),
                                               gpu_id=use_gpu)
            results["pretraining"] = pretrained.to_results()
            init_tok2vec = pretrained.checkpoint
            save()
        config = build_config(experiment_dir, params, corpus_dir=corpus_dir, vectors=vectors,
                              init_tok2vec=init_tok2vec, overrides=config_overrides)

        def on_epoch(row: Dict[str, Any]) -> None:
            result_file.add_epoch(results, row)
            log(f"{experiment['name']}: epoch {row['epoch']} loss {row['train_loss']:.3f} "
                f"dev {results['metric']} {row['dev_score']:.4f} ({row['seconds']:.1f}s)")
            save()
            tracker.log_epoch(row)

        outcome = finetune(config, task, out_dir, on_epoch=on_epoch, eval_processes=eval_processes,
                           use_gpu=use_gpu)
        results.update({k: outcome[k] for k in ("best_epoch", "best_dev_score", "model_size_bytes",
                                                "inference_words_per_second", "data")})
        if final:
            test_path = corpus_dir / "test.spacy"
            if not test_path.exists():
                raise InputError(test_path, "--final needs the test split, which the corpus lacks")
            test = evaluate_saved(out_dir / "model-best", test_path, task,
                                  batch_size=params["eval_batch_size"], processes=eval_processes or 2)
            results["test_score"], results["test_scores"] = test.score, _plain(test.scores)
        result_file.finish(results, "completed")
    except BaseException as err:
        results["traceback"] = traceback.format_exc()
        result_file.finish(results, "failed", f"{type(err).__name__}: {err}")
        raise
    finally:
        if kernels is not None:
            sync_kernels("save", cache, kernels)
        results["finished_at"] = result_file.now()
        save()
        tracker.finish(results)
        if artifacts:
            publish_trial(out_dir, artifacts, results, save)
    return results


def sync_kernels(action: str, cache: str, known: Optional[Set[str]] = None) -> Optional[Set[str]]:
    """Restore CuPy's kernel cache from, or save it to, ``CACHE/cupy-kernels/`` (``gs://`` caches only;
    experiments/storage/kernel_cache.py). A failure costs only compile time, so it is logged, never raised."""
    from ..storage import kernel_cache

    try:
        if action == "restore":
            return kernel_cache.restore(cache)
        kernel_cache.save(cache, known or set())
    except Exception as err:  # noqa: BLE001  (network, permissions: the trial itself is unaffected)
        log(f"CuPy kernel cache: {action} skipped ({type(err).__name__}: {err})")
    return None if action == "save" else set()


def publish_trial(out_dir: Path, artifacts: str, results: Dict[str, Any], save) -> str:
    """Publish the trial folder to ``ARTIFACTS/<trial name>`` (atomic: readers see all of it or none).

    A re-run of the same trial (a retried job after a spot preemption) must not overwrite the first
    publication: it goes to ``<trial name>-retry-<UTC time>`` instead, and results.json says where.
    """
    from ..storage.storage import AlreadyPublishedError, upload_tree

    base = artifacts.rstrip("/") + "/" + out_dir.name
    for url in (base, f"{base}-retry-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S%f')}"):
        results["artifacts_url"] = url
        save()
        try:
            upload_tree(out_dir, url)
            log(f"published {out_dir} -> {url}")
            return url
        except AlreadyPublishedError:
            log(f"{url} is already published; publishing this run beside it")
    raise AlreadyPublishedError(f"{base}: could not publish (retry name taken too)")


def _plain(scores: Dict[str, Any]) -> Dict[str, Any]:
    from .finetune import _jsonable

    return _jsonable(scores)
