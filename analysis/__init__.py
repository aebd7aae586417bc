"""Report code: comparison tables and plots built from raw trial result files (``results.json``).

``analysis.load`` gathers result files from local folders, an Optuna study, a GCS prefix or Polyaxon runs
into pandas tables; ``analysis.tables`` and ``analysis.plots`` turn them into markdown/CSV tables and PNG
plots; ``analysis.report`` writes everything (plus a manifest of the raw files behind each output) into
``analysis/results/`` and the experiment folders' READMEs. Entry points: ``lmao report``,
``python -m analysis`` and ``make report``. ``analysis.frontier`` (``lmao frontier``) answers "the best
accuracy at each model size, and what LMAO pretraining buys there" from IMDB-style campaigns;
``analysis.sizes`` estimates a campaign design's model sizes before training; ``analysis.campaign`` is
``lmao campaign --summary``'s table. ``analysis`` reads what ``experiments`` writes and is never imported by it.

May import: ``experiments.common``, ``experiments.storage``, ``experiments.data``, ``experiments.training``,
``experiments.sweeps``, ``experiments.polyaxon`` (which Polyaxon runs hold no trial, to read Polyaxon runs).
"""

from typing import Any

# Imported on first use (PEP 562), so `lmao --help` and `lmao report --help` do not load pandas.
_EXPORTS = {"Loaded": "load", "load_all": "load", "build_report": "report"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
