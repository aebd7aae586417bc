"""``lmao report`` (also ``python -m analysis``): gather result files from every source given, write the
report, say what happened. Heavy imports (pandas, scipy, matplotlib) happen inside, so ``lmao --help``
stays fast."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import typer

from experiments.errors import InputError

DEFAULT_RUNS = "runs"


def run_report(
    runs: Sequence[str] = (),
    *,
    study: Optional[str] = None,
    storage: Optional[str] = None,
    gcs: Sequence[str] = (),
    polyaxon_projects: Sequence[str] = (),
    out: Optional[Path] = None,
    readme_root: Optional[Path] = None,
    top_k: Optional[int] = None,
    plots: bool = True,
    echo: Callable[[str], None] = print,
) -> int:
    """Load, report, print messages; exit code 0 (also when there are no runs, which is said clearly).

    ``out`` defaults to ``analysis/results``; ``top_k`` to :data:`analysis.stats.TOP_K`."""
    from .load import load_all
    from .report import REPO_ROOT, build_report
    from .stats import TOP_K

    runs = list(runs)
    if not (runs or storage or gcs or polyaxon_projects):
        runs = [DEFAULT_RUNS]
    inputs: List[str] = [str(r) for r in runs]
    inputs += [f"optuna:{storage}" + (f" (study {study})" if study else " (all studies)")] if storage else []
    inputs += list(gcs) + [f"polyaxon:{p}" for p in polyaxon_projects]
    t0 = time.perf_counter()
    loaded = load_all(runs, storage=storage, study=study, gcs=gcs, polyaxon_projects=polyaxon_projects)
    result = build_report(loaded, Path(out or REPO_ROOT / "analysis" / "results"), readme_root=readme_root,
                          top_k=top_k or TOP_K, inputs=inputs, plots=plots)
    for message in result.messages:
        echo(message)
    if not result.empty:
        echo(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def report(
    runs: Optional[List[str]] = typer.Argument(None, help="Runs folders or result files (default: runs/ when no source is given)"),
    study: Optional[str] = typer.Option(None, "--study", help="Optuna study name (default: every study in --storage)"),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (sqlite:///..., postgresql://...)"),
    gcs: Optional[List[str]] = typer.Option(None, "--gcs", help="gs://bucket/prefix holding */results.json (repeatable)"),
    polyaxon_project: Optional[List[str]] = typer.Option(None, "--polyaxon-project", help="Polyaxon owner/project (repeatable)"),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: analysis/results)"),
    top_k: int = typer.Option(5, "--top-k", help="Trials in the mean/CI sample when the best config has no seed repeats"),
    no_readmes: bool = typer.Option(False, "--no-readmes", help="Do not update the experiment folders' READMEs"),
    no_plots: bool = typer.Option(False, "--no-plots", help="Tables only (faster; plots from earlier runs are removed)"),
) -> None:
    """Comparison tables and plots from raw trial results, into analysis/results/ and the experiment READMEs."""
    from experiments.storage import parse_gs_url

    from .report import REPO_ROOT

    if top_k < 1:
        raise InputError("--top-k", f"must be at least 1, got {top_k}")
    for url in gcs or []:
        parse_gs_url(url)  # an InputError naming the URL when it is not gs://bucket/prefix
    code = run_report(
        runs or [], study=study, storage=storage, gcs=gcs or [], polyaxon_projects=polyaxon_project or [],
        out=out, readme_root=None if no_readmes else REPO_ROOT, top_k=top_k, plots=not no_plots,
        echo=typer.echo,
    )
    raise typer.Exit(code)
