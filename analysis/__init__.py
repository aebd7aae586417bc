"""Report code: comparison tables and plots built from raw trial result files (``results.json``).

``analysis.load`` gathers result files from local folders, an Optuna study, a GCS prefix or Polyaxon runs
into pandas tables; ``analysis.tables`` and ``analysis.plots`` turn them into markdown/CSV tables and PNG
plots; ``analysis.report`` writes everything (plus a manifest of the raw files behind each output) into
``analysis/results/`` and the experiment folders' READMEs. Entry points: ``lmao report``,
``python -m analysis`` and ``make report``.
"""

from .load import Loaded, load_all  # noqa: F401
from .report import build_report  # noqa: F401
