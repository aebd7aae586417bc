"""Everything in ``experiments`` that touches Polyaxon, in one package.

What it owns:

- ``polyaxonfile``: the polyaxonfiles generated from an experiment's ``sweep.yml`` (``lmao polyaxonfile``);
- ``agent``: the local process agent and sweep launcher (``make sweep-polyaxon``,
  ``python -m experiments.polyaxon.agent``);
- ``tuner``: the TPE tuner run of ``polyaxonfile.tpe.yml`` (``python -m experiments.polyaxon.tuner``);
- ``k8s_manifests`` / ``k8s_checks``: the Kubernetes objects Polyaxon would submit on GKE, and their checks
  (``lmao polyaxonfile --k8s``);
- ``tracking``: a trial tracked as a Polyaxon run when an API is there;
- ``boundary``: the Polyaxon version this package was tested with (:data:`boundary.TESTED_POLYAXON`), the
  version check run before the agent, the tuner or a tracked run starts, and the table of every private
  Polyaxon name (``polyaxon._...``) the package subclasses, patches or calls (tests/test_polyaxon_boundary.py
  keeps that table complete and true for the installed Polyaxon).

Nothing else imports Polyaxon's internals, and other packages import this one only through the names
below, loaded on first use (:func:`__getattr__`), so importing this package costs nothing and imports no
Polyaxon. Besides Polyaxon itself (``polyaxon``, ``traceml``, ``hypertune``, ``kubernetes``):

May import: ``experiments.common``, ``experiments.storage``, ``experiments.data``, ``experiments.training``,
``experiments.sweeps``.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

# The public surface: name -> module of this package that defines it.
_EXPORTS: Dict[str, str] = {
    # tracking (trial.py, sweep.py)
    "make_tracker": "tracking",
    "mark_stopped": "tracking",
    "NoTracker": "tracking",
    "runs_page_url": "tracking",
    "not_a_trial": "tracking",  # analysis.load.read_polyaxon
    # polyaxonfiles (cli_sweep.py)
    "TUNER_SEARCH": "polyaxonfile",
    "polyaxonfile_path": "polyaxonfile",
    "render_polyaxonfile": "polyaxonfile",
    # cluster objects (cli_sweep.py)
    "check_all": "k8s_checks",
    "OPERATIONS": "k8s_manifests",
    "REPO": "k8s_manifests",
    "cluster_settings": "k8s_manifests",
    "compile_operation": "k8s_manifests",
    "manifests_yaml": "k8s_manifests",
    # the boundary
    "TESTED_POLYAXON": "boundary",
    "check_polyaxon_version": "boundary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
