"""One trial: resolve params -> pretrain (or reuse a cached run) -> fine-tune -> ``results.json``.

The result file is rewritten atomically after every epoch (``status: running``), so a sweep can read
intermediate scores and a crash leaves a readable record. The test split is read only when ``final``.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from .config import build_config, load_experiment, needs_vectors
from .errors import InputError
from .fileio import write_json
from .params import resolve
from .progress import log
from .results import RESULTS_FILE, SCHEMA_VERSION, clear_unfinished, git_commit, library_versions
from .storage import local_corpus
from .tracking import make_tracker



def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def resolve_vectors(params: Mapping[str, Any], corpus_dir: Path) -> Optional[Path]:
    """``-P vectors=PATH``, else ``CORPUS/vectors`` when ``lmao vectors train`` put them there."""
    if params["vectors"]:
        path = Path(params["vectors"])
        if not path.exists():
            raise InputError(path, "vectors not found (param 'vectors')")
        return path
    default = corpus_dir / "vectors"
    return default if default.exists() else None


def corpus_info(corpus_dir: Path) -> Dict[str, Any]:
    """Which prepared corpus the trial read: its folder and the manifest `lmao data` wrote."""
    manifest_path = corpus_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else None
    return {"dir": str(corpus_dir), "manifest": manifest}


def select_device(gpu: str) -> int:
    """``auto``: the GPU when one is there (spaCy's allocator), else CPU; ``-1``: CPU; ``N``: GPU N."""
    import spacy

    if gpu == "auto":
        return 0 if spacy.prefer_gpu() else -1
    gpu_id = int(gpu)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return gpu_id


def pretrained_checkpoint(experiment_dir: Path, params: Mapping[str, Any], corpus_dir: Path,
                          vectors: Optional[Path], cache_root: str, config_overrides: Mapping[str, Any],
                          use_gpu: int) -> Dict[str, Any]:
    """Reuse or run the pretraining this trial needs; return the ``pretraining`` block of the results."""
    from .cache import ArtifactCache, cache_key
    from .pretrain import INFO_FILE, checkpoint_name, pretrain, pretraining_inputs

    epochs = params["pretrain_epochs"]
    if epochs > params["pretrain_max_epochs"]:
        raise ValueError(f"pretrain_epochs ({epochs}) > pretrain_max_epochs ({params['pretrain_max_epochs']})")
    uses_vectors = needs_vectors(params, pretraining=True)
    inputs = pretraining_inputs(params, corpus_dir, vectors, uses_vectors)
    key = cache_key(inputs)
    config = build_config(experiment_dir, params, corpus_dir=corpus_dir, vectors=vectors, pretraining=True,
                          overrides=config_overrides)

    def build(out: Path) -> None:
        log(f"pretraining: {params['objective']} objective, {params['pretrain_max_epochs']} epochs (key {key[:12]})")
        pretrain(config, out, max_words=params["pretrain_max_words"],
                 save_every_words=params["pretrain_save_every_words"])
        write_json(out / "inputs.json", inputs)

    entry = ArtifactCache(cache_root).get_or_create(key, build)
    info = json.loads((entry.path / INFO_FILE).read_text())
    usable = min(epochs, info["epochs_completed"])
    name = checkpoint_name(usable)
    row = info["checkpoints"][name]
    return {
        "objective": params["objective"],
        "loss": params["pretrain_loss"] if params["objective"] != "characters" else None,
        "epochs": usable,
        "words_seen": row["words"],
        "seconds": 0.0 if entry.hit else row["seconds"],
        "run_seconds": info["seconds"],
        "words_per_second": info["words_per_second"],
        "cached": entry.hit,
        "cache_key": key,
        "checkpoint": str(entry.path / name),
    }


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
) -> Dict[str, Any]:
    """Run one trial and return its results (also written to ``out_dir/results.json``).

    ``meta`` is free-form provenance recorded as is (a sweep passes its study, search and trial number).
    """
    from .finetune import METRICS, evaluate_saved, finetune

    experiment_dir, out_dir = Path(experiment_dir), Path(out_dir)
    experiment = load_experiment(experiment_dir)
    params = resolve(experiment["params"], overrides)
    task = experiment["task"]
    corpus_dir = local_corpus(params["corpus_dir"])  # gs://...: a verified local copy
    for name in ("train.spacy", "dev.spacy"):
        if not (corpus_dir / name).exists():
            raise InputError(corpus_dir / name, "prepared corpus file missing (run `lmao data ...` first)")
    vectors = resolve_vectors(params, corpus_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_unfinished(out_dir)  # a retried attempt starts clean, never mixed with the killed one
    results_path = out_dir / RESULTS_FILE
    started = time.perf_counter()
    results: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "experiment": experiment["name"],
        "task": task,
        "status": "running",
        "error": None,
        "params": dict(params),
        "config_overrides": dict(config_overrides or {}),
        "seed": params["seed"],
        "meta": dict(meta or {}),
        "corpus": corpus_info(corpus_dir),
        "metric": METRICS[task],
        "pretraining": {"objective": None, "epochs": 0, "words_seen": 0, "seconds": 0.0,
                        "words_per_second": None, "cached": False, "cache_key": None, "checkpoint": None},
        "epochs": [],
        "best_epoch": None,
        "best_dev_score": None,
        "model_size_bytes": None,
        "inference_words_per_second": None,
        "final_evaluation": bool(final),
        "test_score": None,
        "test_scores": None,
        "data": None,
        "versions": library_versions(),
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "device": "cpu",
        "started_at": _now(),
        "finished_at": None,
        "wall_seconds": None,
        "model_dir": "model-best",
    }

    def save() -> None:
        results["wall_seconds"] = round(time.perf_counter() - started, 3)
        write_json(results_path, results)

    save()
    tracker = make_tracker(experiment["name"], params, out_dir)  # Polyaxon run when an API is configured
    try:
        use_gpu = select_device(gpu)
        results["device"] = f"gpu:{use_gpu}" if use_gpu >= 0 else "cpu"
        init_tok2vec = None
        if params["pretrain_epochs"] > 0:
            results["pretraining"] = pretrained_checkpoint(
                experiment_dir, params, corpus_dir, vectors, cache or str(out_dir.parent / "cache"),
                config_overrides or {}, use_gpu)
            init_tok2vec = Path(results["pretraining"]["checkpoint"])
            save()
        config = build_config(experiment_dir, params, corpus_dir=corpus_dir, vectors=vectors,
                              init_tok2vec=init_tok2vec, overrides=config_overrides)

        def on_epoch(row: Dict[str, Any]) -> None:
            results["epochs"].append(row)
            best = max(results["epochs"], key=lambda r: r["dev_score"])
            results["best_epoch"], results["best_dev_score"] = best["epoch"], best["dev_score"]
            log(f"{experiment['name']}: epoch {row['epoch']} loss {row['train_loss']:.3f} "
                f"dev {results['metric']} {row['dev_score']:.4f} ({row['seconds']:.1f}s)")
            save()
            tracker.log_epoch(row)

        outcome = finetune(config, params, task, out_dir, on_epoch=on_epoch, eval_processes=eval_processes,
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
        results["status"] = "completed"
    except BaseException as err:
        results["status"] = "failed"
        results["error"] = f"{type(err).__name__}: {err}"
        results["traceback"] = traceback.format_exc()
        raise
    finally:
        results["finished_at"] = _now()
        save()
        tracker.finish(results)
        if artifacts:
            publish_trial(out_dir, artifacts, results, save)
    return results


def publish_trial(out_dir: Path, artifacts: str, results: Dict[str, Any], save) -> str:
    """Publish the trial folder to ``ARTIFACTS/<trial name>`` (atomic: readers see all of it or none).

    A re-run of the same trial (a retried job after a spot preemption) must not overwrite the first
    publication: it goes to ``<trial name>-retry-<UTC time>`` instead, and results.json says where.
    """
    from .storage import AlreadyPublishedError, upload_tree

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
