"""The trial result file, ``<trial dir>/results.json``: the one raw record every table is built from.

Written atomically by ``lmao trial`` after every epoch (``status: "running"``) and at the end
(``"completed"``, or ``"failed"`` with ``error``). A sweep that prunes a trial rewrites ``status`` to
``"pruned"`` and keeps the epochs it had. Scores are fractions in [0, 1] as spaCy reports them.

Schema (version 1)::

    {
      "schema_version": 1,
      "experiment": "lmao-imdb-1k",            # experiment folder name
      "task": "textcat" | "ner",
      "status": "running" | "completed" | "pruned" | "failed",
      "error": null | "message",
      "params": {...},                          # every resolved param, flat (see experiments.training.params)
      "seed": 0,
      "meta": {"study": ..., "search": ..., "trial_number": ...},   # provenance (`lmao trial --meta k=v`)
      "corpus": {"dir": "corpus/imdb-1k", "manifest": {...}},     # what `lmao data` wrote for this corpus
      "vectors": null | {"source": "corpus/vectors-imdb-100k",    # the static vectors the trial read (input
                         "fingerprint": "sha256:...",              # feature or pretraining target): content
                         "info": {...}},                           # hash, and vectors-info.json (how made)
      "metric": "accuracy" | "ents_f",          # what dev_score means
      "pretraining": {
        "objective": null | "vectors" | "characters" | "trigram",   # null = baseline
        "epochs": 0,                            # pretraining epochs used to initialise
        "words_seen": 0,                        # words the checkpoint was trained on
        "seconds": 0.0,                         # pretraining compute spent (0 when cached)
        "words_per_second": null | float,
        "cached": false,                        # true if an existing checkpoint was reused
        "cache_key": null | "sha256...",
        "seed": 0,                              # the pretraining run's seed (pretrain_seed, else the trial's)
        "checkpoint": null | "path or URL"
      },
      "epochs": [                               # one row per fine-tuning epoch
        {"epoch": 1, "train_loss": 0.69, "dev_score": 0.81, "seconds": 12.3,
         "train_words": 230000, "train_words_per_second": 17000.0, "eval_seconds": 3.1,
         "learn_rate": 0.001, "dev_scores": {...all spaCy scores...},
         "spacy_score": 0.80, "steps": 63}      # score_weights sum (what `spacy train` selects by); updates so far
      ],
      "prune": {"epoch": 3, "score": 0.61, "median_of_earlier": 0.72, "earlier_trials": 5,   # only when a
                "pruner": "median", "settings": {...}, "reason": "pruned by the median pruner ..."},  # sweep pruned it
      "best_epoch": 3, "best_dev_score": 0.85,
      "model_size_bytes": 5123456,              # size of the saved best model (tok2vec + head)
      "inference_words_per_second": 30000.0,    # dev-set evaluation speed of the best model
      "final_evaluation": false,                # true only with `lmao trial --final`
      "test_score": null | float, "test_scores": null | {...},
      "data": {"train_docs": 1000, "dev_docs": 10000, "train_words": ..., "dev_words": ...},
      "versions": {"python": ..., "spacy": ..., "thinc": ..., "experiments": ...},
      "git_commit": null | "sha",
      "host": "hostname", "device": "cpu" | "gpu:0",
      "started_at": "ISO-8601", "finished_at": null | "ISO-8601", "wall_seconds": float,
      "model_dir": "model-best"                 # relative to the trial dir
    }

This module owns the file: its name, the schema version, creating a trial's record
(:func:`new_results`), updating it per epoch (:func:`add_epoch`), writing it (:func:`save`), marking a
stopped trial (:func:`mark`), reading it (:func:`read` / :func:`load_results`) and validating it for a
report (:func:`problem`). Every other module goes through these.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..storage.fileio import write_json

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
STATUSES = ("running", "completed", "pruned", "failed")
USABLE = ("completed", "pruned")  # statuses a report reads; running/failed files are partial
REQUIRED_KEYS = ("experiment", "task", "status", "params", "epochs")


def now() -> str:
    """The time stamp every result file uses (UTC, ISO-8601, seconds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def results_path(location: Any) -> Path:
    """``<trial dir>/results.json`` for a trial folder; the path itself for a result file."""
    path = Path(location)
    return path if path.is_file() or path.name == RESULTS_FILE else path / RESULTS_FILE


def cpu_model(default: str = "") -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``default`` or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default or platform.processor() or platform.machine()


def library_versions() -> Dict[str, str]:
    import spacy
    import thinc

    from .. import __version__

    return {
        "python": platform.python_version(),
        "spacy": spacy.__version__,
        "thinc": thinc.__version__,
        "experiments": __version__,
    }


def git_commit(repo_dir: Optional[Path] = None) -> Optional[str]:
    """The commit of the code that ran (``+dirty`` if the tree had changes), or None outside git."""
    cwd = str(repo_dir or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def no_pretraining() -> Dict[str, Any]:
    """The ``pretraining`` block of a baseline trial (or of a trial before its pretraining is known)."""
    return {"objective": None, "epochs": 0, "words_seen": 0, "seconds": 0.0, "words_per_second": None,
            "cached": False, "cache_key": None, "checkpoint": None}


def new_results(*, experiment: str, task: str, metric: str, params: Mapping[str, Any],
                config_overrides: Optional[Mapping[str, Any]] = None, meta: Optional[Mapping[str, str]] = None,
                corpus: Optional[Mapping[str, Any]] = None, vectors: Optional[Mapping[str, Any]] = None,
                final: bool = False) -> Dict[str, Any]:
    """A trial's record as it starts: ``status: running``, no epochs yet."""
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment": experiment,
        "task": task,
        "status": "running",
        "error": None,
        "params": dict(params),
        "config_overrides": dict(config_overrides or {}),
        "seed": params["seed"],
        "meta": dict(meta or {}),
        "corpus": dict(corpus) if corpus is not None else None,
        "vectors": dict(vectors) if vectors is not None else None,
        "metric": metric,
        "pretraining": no_pretraining(),
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
        "started_at": now(),
        "finished_at": None,
        "wall_seconds": None,
        "model_dir": "model-best",
    }


def is_new_best(score: float, best_score: Optional[float]) -> bool:
    """Whether an evaluation becomes the best so far: spaCy's ``model-best`` rule (``score ==
    max(results)``), so a tie goes to the later evaluation. The one owner of that rule: fine-tuning saves
    ``model-best`` by it and :func:`add_epoch` records ``best_epoch`` by it, so the two always agree."""
    return best_score is None or score >= best_score


def add_epoch(results: Dict[str, Any], row: Mapping[str, Any]) -> None:
    """Append one fine-tuning epoch and keep ``best_epoch`` / ``best_dev_score`` in step (:func:`is_new_best`)."""
    results["epochs"].append(dict(row))
    if is_new_best(row["dev_score"], results["best_dev_score"]):
        results["best_epoch"], results["best_dev_score"] = row["epoch"], row["dev_score"]


def finish(results: Dict[str, Any], status: str, error: Optional[str] = None) -> None:
    """Set the final status (and error), and stamp ``finished_at`` if it is not stamped yet."""
    if status not in STATUSES:
        raise ValueError(f"unknown result status {status!r} (expected one of {list(STATUSES)})")
    results["status"] = status
    if error:
        results["error"] = error
    results["finished_at"] = results.get("finished_at") or now()


def save(location: Any, results: Mapping[str, Any]) -> Path:
    """Write the result file atomically (a reader never sees half of it); returns its path."""
    path = results_path(location)
    write_json(path, results)
    return path


def read(location: Any) -> Optional[Dict[str, Any]]:
    """The result file, or None while there is none (or it is not JSON): for polling a running trial."""
    try:
        return json.loads(results_path(location).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def load_results(location: Any) -> Dict[str, Any]:
    """Read a result file (``results.json`` or its folder); errors if it is missing or not JSON."""
    return json.loads(results_path(location).read_text(encoding="utf-8"))


def mark(location: Any, status: str, error: Optional[str] = None, *, prune: Optional[Mapping[str, Any]] = None) -> None:
    """Rewrite a stopped trial's status (``pruned`` / ``failed``) atomically, keeping every epoch it
    finished; a trial that never wrote its file gets a minimal one. ``prune``: why a sweep pruned it."""
    results = read(location) or {"schema_version": SCHEMA_VERSION, "params": {}, "epochs": []}
    finish(results, status, error)
    if prune is not None:
        results["prune"] = dict(prune)
    save(location, results)


def problem(data: Any, safe_name: Any = None) -> Optional[str]:
    """Why a parsed result file cannot be used in a report (None = usable: completed or pruned).

    ``safe_name``: a compiled pattern that ``experiment`` and ``task`` must match in full (they become
    file and folder names in a report).
    """
    if not isinstance(data, dict):
        return "not a JSON object"
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        return f"unsupported schema_version {version!r}"
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        return f"missing keys: {', '.join(missing)}"
    if safe_name is not None:
        for key in ("experiment", "task"):
            if not isinstance(data[key], str) or not safe_name.fullmatch(data[key]):
                return f"bad {key} {data[key]!r} (expected a folder-style name)"
    status = data["status"]
    if status == "running":
        return "partial: trial still running"
    if status == "failed":
        return f"partial: trial failed ({data.get('error') or 'no error message'})"
    if status not in USABLE:
        return f"unknown status {status!r}"
    if not isinstance(data["epochs"], list) or not isinstance(data["params"], dict):
        return "malformed epochs/params"
    if status == "completed" and not isinstance(data.get("best_dev_score"), (int, float)):
        return "completed but no best_dev_score"
    return None


def clear_unfinished(out_dir: Path) -> bool:
    """Start a retried trial clean: if ``out_dir`` holds a result file that did not finish (``running``
    from a killed attempt, e.g. a preempted Spot node, ``failed``, or unreadable), remove everything in
    ``out_dir`` so no model, checkpoint or epoch row of that attempt mixes with the new one. A finished
    trial's folder is left as it is. Returns True when something was removed."""
    import shutil

    if not results_path(out_dir).is_file():
        return False
    data = read(out_dir)
    if isinstance(data, dict) and data.get("status") in USABLE:
        return False
    for child in Path(out_dir).iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return True
