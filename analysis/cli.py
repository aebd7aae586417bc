"""``lmao report`` (also ``python -m analysis``): gather result files from every source given, write the
report, say what happened. Heavy imports (pandas, scipy, matplotlib) happen inside, so ``lmao --help``
stays fast."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import typer

from experiments.common.errors import InputError

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
    echo_error: Optional[Callable[[str], None]] = None,
) -> int:
    """Load, report, print messages; the exit code: 0 when a report was written, 1 (with one ``error:``
    line on stderr, nothing written) when a runs folder given does not exist or no trial results were
    found at all.

    ``out`` defaults to ``analysis/results``; ``top_k`` to :data:`analysis.stats.TOP_K`."""
    from .load import load_all
    from .report import REPO_ROOT, build_report
    from .stats import TOP_K

    echo_error = echo_error or (lambda line: print(line, file=sys.stderr))
    runs = list(runs)
    default = not (runs or storage or gcs or polyaxon_projects)
    if default:
        runs = [DEFAULT_RUNS]
    missing = [str(r) for r in runs if not Path(r).exists()]
    if missing:
        hint = " (no source given: pass a runs folder, --storage, --gcs or --polyaxon-project)" if default else ""
        more = f" (and {', '.join(missing[1:])})" if len(missing) > 1 else ""
        echo_error(f"error: {missing[0]}: runs folder not found{more}{hint}")
        return 1
    inputs: List[str] = [str(r) for r in runs]
    inputs += [f"optuna:{storage}" + (f" (study {study})" if study else " (all studies)")] if storage else []
    inputs += list(gcs) + [f"polyaxon:{p}" for p in polyaxon_projects]
    t0 = time.perf_counter()
    loaded = load_all(runs, storage=storage, study=study, gcs=gcs, polyaxon_projects=polyaxon_projects)
    result = build_report(loaded, Path(out or REPO_ROOT / "analysis" / "results"), readme_root=readme_root,
                          top_k=top_k or TOP_K, inputs=inputs, plots=plots)
    for message in result.messages:
        echo(message)
    if result.empty:
        echo_error(f"error: {result.error}")
        return 1
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
    from experiments.storage.storage import parse_gs_url

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


def frontier(
    runs: List[Path] = typer.Argument(..., help="Runs folders (campaigns) holding IMDB-style trials' results.json"),
    out: Path = typer.Option(Path("analysis/results"), "--out", help="Folder for frontier.md / .csv / .png"),
    readme: Optional[Path] = typer.Option(None, "--readme", help="Write the headline into this README's --block"),
    block: str = typer.Option("frontier", "--block", help="README block for the headline: <!-- BLOCK:start -->"),
    table_readme: Optional[Path] = typer.Option(None, "--table-readme", help="Write the table and plot into this README"),
    table_block: str = typer.Option("frontier", "--table-block", help="README block for the table"),
    speeds: Optional[Path] = typer.Option(None, "--speeds", help="Side-by-side inference speeds (make frontier-speed's CSV) for the speed axis and column"),
    stock: List[Path] = typer.Option([], "--stock", help="make stock-check's folder (seed-N/results.json): spacy train's own stock-config anchor (repeatable)"),
) -> None:
    """Best accuracy at each model size and what LMAO pretraining buys there: table, Pareto plot, headline."""
    from .frontier import frontier_report

    for message in frontier_report(runs, out, readme=readme, block=block, table_readme=table_readme,
                                   table_block=table_block, speeds=speeds, stock=stock):
        typer.echo(message)
