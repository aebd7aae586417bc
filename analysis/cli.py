"""``lmao report``: gather result files from every source given, write the report, say what happened."""

from __future__ import annotations

import sys
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
    echo_error: Optional[Callable[[str], None]] = None,
) -> int:
    """Load, report, print messages; the exit code: 0 when a report was written, 1 (with one ``error:``
    line on stderr, nothing written) when a runs folder given does not exist or no trial results were
    found at all."""
    echo_error = echo_error or (lambda line: print(line, file=sys.stderr))
    runs = list(runs)
    default = not (runs or storage or gcs or polyaxon_projects)
    if default:
        runs = [DEFAULT_RUNS]
    missing = [str(r) for r in runs if not Path(r).exists()]
    if missing:
        hint = " (no source given: pass a runs folder, --storage, --gcs or --polyaxon-project)" if default else ""
        echo_error(f"error: runs folder not found: {', '.join(missing)}{hint}")
        return 1
    inputs: List[str] = [str(r) for r in runs]
    inputs += [f"optuna:{storage}" + (f" (study {study})" if study else " (all studies)")] if storage else []
    inputs += list(gcs) + [f"polyaxon:{p}" for p in polyaxon_projects]
    t0 = time.perf_counter()
    loaded = load_all(runs, storage=storage, study=study, gcs=gcs, polyaxon_projects=polyaxon_projects)
    result = build_report(loaded, Path(out), readme_root=readme_root, top_k=top_k, inputs=inputs,
                          plots=plots)
    for message in result.messages:
        echo(message)
    if result.empty:
        echo_error(f"error: {result.error}")
        return 1
    echo(f"done in {time.perf_counter() - t0:.1f} s")
    return 0
