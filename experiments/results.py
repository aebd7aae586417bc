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
      "params": {...},                          # every resolved param, flat (see experiments.params)
      "seed": 0,
      "meta": {"study": ..., "search": ..., "trial_number": ...},   # provenance (`lmao trial --meta k=v`)
      "corpus": {"dir": "corpus/imdb-1k", "manifest": {...}},     # what `lmao data` wrote for this corpus
      "metric": "accuracy" | "ents_f",          # what dev_score means
      "pretraining": {
        "objective": null | "vectors" | "characters" | "trigram",   # null = baseline
        "epochs": 0,                            # pretraining epochs used to initialise
        "words_seen": 0,                        # words the checkpoint was trained on
        "seconds": 0.0,                         # pretraining compute spent (0 when cached)
        "words_per_second": null | float,
        "cached": false,                        # true if an existing checkpoint was reused
        "cache_key": null | "sha256...",
        "checkpoint": null | "path or URL"
      },
      "epochs": [                               # one row per fine-tuning epoch
        {"epoch": 1, "train_loss": 0.69, "dev_score": 0.81, "seconds": 12.3,
         "train_words": 230000, "train_words_per_second": 17000.0, "eval_seconds": 3.1,
         "dev_scores": {...all spaCy scores...}}
      ],
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
"""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
STATUSES = ("running", "completed", "pruned", "failed")


def library_versions() -> Dict[str, str]:
    import spacy
    import thinc

    from . import __version__

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


def load_results(path: Path) -> Dict[str, Any]:
    """Read a result file (``results.json`` or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    return json.loads(path.read_text(encoding="utf-8"))


FINISHED = ("completed", "pruned")


def clear_unfinished(out_dir: Path) -> bool:
    """Start a retried trial clean: if ``out_dir`` holds a ``results.json`` that did not finish
    (``running`` from a killed attempt, e.g. a preempted Spot node, ``failed``, or unreadable), remove
    everything in ``out_dir`` so no model, checkpoint or epoch row of that attempt mixes with the new
    one. A finished trial's folder is left as it is. Returns True when something was removed."""
    import shutil

    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        return False
    try:
        status = json.loads(path.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        status = None
    if status in FINISHED:
        return False
    for child in Path(out_dir).iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return True
