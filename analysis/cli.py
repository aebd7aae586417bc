"""``lmao report``: gather result files from every source given, write the report, say what happened."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from .load import load_all
from .report import REPO_ROOT, build_report
from .stats import TOP_K

DEFAULT_RUNS = "runs"


def run_report(
    runs: Sequence[str] = (),
    *,
    study: Optional[str] = None,
    storage: Optional[str] = None,
    gcs: Sequence[str] = (),
    polyaxon_projects: Sequence[str] = (),
    out: Path = REPO_ROOT / "analysis" / "results",
    readme_root: Optional[Path] = REPO_ROOT,
    top_k: int = TOP_K,
    plots: bool = True,
    echo: Callable[[str], None] = print,
) -> int:
    """Load, report, print messages; exit code 0 (also when there are no runs, which is said clearly)."""
    runs = list(runs)
    if not (runs or storage or gcs or polyaxon_projects):
        runs = [DEFAULT_RUNS]
    inputs: List[str] = [str(r) for r in runs]
    inputs += [f"optuna:{storage}" + (f" (study {study})" if study else " (all studies)")] if storage else []
    inputs += list(gcs) + [f"polyaxon:{p}" for p in polyaxon_projects]
    t0 = time.perf_counter()
    loaded = load_all(runs, storage=storage, study=study, gcs=gcs, polyaxon_projects=polyaxon_projects)
    result = build_report(loaded, Path(out), readme_root=readme_root, top_k=top_k, inputs=inputs,
                          plots=plots)
    for message in result.messages:
        echo(message)
    if not result.empty:
        echo(f"done in {time.perf_counter() - t0:.1f} s")
    return 0
