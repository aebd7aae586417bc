"""``lmao sweep`` and ``lmao polyaxonfile``: ``experiments.cli`` registers them with :func:`register`
(this module imports nothing from it, so there is no import cycle)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common.cli_base import OVERRIDES, existing_folder
from .common.errors import InputError, check_at_least
from .sweeps.search_space import OPTUNA_SEARCHES, POLYAXON_SEARCHES


def sweep(
    ctx: typer.Context,
    experiment_dir: Path = typer.Argument(..., help="Experiment folder with sweep.yml"),
    search: str = typer.Option("random", "--search", help=f"{' | '.join(OPTUNA_SEARCHES)} (Optuna's samplers)"),
    n_trials: Optional[int] = typer.Option(None, "--n-trials", help="Trials to finish in the study (default: sweep.yml n_trials)"),
    workers: int = typer.Option(1, "--workers", help="Trials run at once by this process"),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (default: sqlite under --runs; postgresql://... for many workers)"),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: EXPERIMENT-SEARCH); re-running continues it"),
    param: Optional[List[str]] = typer.Option(None, "-P", "--param", help="Fix a param for every trial: name=value (repeatable)"),
    runs: Path = typer.Option(Path("runs"), "--runs", help="Runs folder: RUNS/STUDY/trial-XXXX/"),
    cache: Optional[str] = typer.Option(None, "--cache", help="Pretraining cache shared by trials (default: RUNS/cache; or gs://...; none: no sharing)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sampler seed (one worker: reproducible suggestions)"),
    startup_trials: int = typer.Option(5, "--startup-trials", help="tpe: finished trials sampled at random before TPE models them"),
    heartbeat: int = typer.Option(10, "--heartbeat", help="Seconds between worker heartbeats; a trial silent for 3x this is failed and re-queued"),
    kill_grace: float = typer.Option(10.0, "--kill-grace", help="Seconds between SIGTERM and SIGKILL when stopping a trial"),
) -> None:
    """Random or TPE search over EXPERIMENT_DIR/sweep.yml, one `lmao trial` process per trial.

    Extra options after `--` go to every `lmao trial` (e.g. `-- --gpu -1 --eval-processes 1`).
    """
    from .sweeps.search_space import load_search_space
    from .sweeps.sweep import SweepOptions, run_sweep
    from .polyaxon import mark_stopped
    from .training.params import parse_assignments

    # Every option and file is checked before the study or the runs folder is created.
    existing_folder(experiment_dir, "an experiment folder")
    if n_trials is not None:
        check_at_least("--n-trials", n_trials, 1)
    for option, value in (("--workers", workers), ("--heartbeat", heartbeat)):
        check_at_least(option, value, 1)
    check_at_least("--startup-trials", startup_trials, 0)
    if kill_grace < 0:
        raise InputError("--kill-grace", f"must be at least 0, got {kill_grace}")
    load_search_space(experiment_dir)
    options = SweepOptions(
        experiment_dir=experiment_dir, search=search, n_trials=n_trials, workers=workers, storage=storage,
        study=study, fixed=parse_assignments(param), runs=runs, cache=cache, seed=seed,
        startup_trials=startup_trials, heartbeat=heartbeat, kill_grace=kill_grace, trial_args=list(ctx.args),
        on_pruned=mark_stopped,  # the pruned trial's Polyaxon run, when it has one, is marked stopped
    )
    summary = run_sweep(options)
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary["states"].items()))
    typer.echo(f"study {summary['study']}: {states}")
    if "best_value" in summary:
        typer.echo(f"best: trial {summary['best_trial']} = {summary['best_value']:.4f} "
                   f"({summary['best_result_dir']})")


def polyaxonfile(
    experiment_dir: Path = typer.Argument(..., help="Experiment folder with sweep.yml"),
    search: str = typer.Option("random", "--search", help=f"{' | '.join(POLYAXON_SEARCHES)} (Polyaxon's matrix kinds; bayes plays tpe's role) | tpe (our TPE tuner run, runs on CE)"),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: EXPERIMENT_DIR/polyaxonfile.SEARCH.yml)"),
    concurrency: int = typer.Option(4, "--concurrency", help="Matrix runs at once on the cluster"),
    check: bool = typer.Option(False, "--check", help="Exit 1 if the file on disk differs from the generated one"),
    k8s: bool = typer.Option(False, "--k8s", help="Instead: compile the committed file's cluster operations "
                             "(experiments/polyaxon/k8s_manifests.py OPERATIONS) into the Kubernetes objects Polyaxon's "
                             "agent submits on GKE, check them against terraform-gke/, write them as YAML"),
    project_id: str = typer.Option("PROJECT_ID", "--project-id", help="With --k8s: the GCP project"),
) -> None:
    """Generate a Polyaxon v2 polyaxonfile (operation + matrix) from EXPERIMENT_DIR/sweep.yml."""
    if k8s:
        return k8s_objects(experiment_dir, search, out, project_id)
    from .polyaxon import TUNER_SEARCH, polyaxonfile_path, render_polyaxonfile
    from .storage.fileio import write_text

    existing_folder(experiment_dir, "an experiment folder")
    check_at_least("--concurrency", concurrency, 1)
    allowed = [*POLYAXON_SEARCHES, TUNER_SEARCH]  # Polyaxon's matrix kinds, and our TPE tuner run
    if search not in allowed:
        raise InputError("--search", f"expected one of {allowed}, got {search!r}")
    target = out or polyaxonfile_path(experiment_dir, search)
    shown = str(out) if out else f"{experiment_dir.resolve().name}/{target.name}"
    text = render_polyaxonfile(experiment_dir, search, shown, concurrency=concurrency)
    if check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            raise InputError(target, f"out of date: run `lmao polyaxonfile {experiment_dir} --search {search}`")
        typer.echo(f"{target}: up to date")
        return
    write_text(target, text)
    typer.echo(f"wrote {target}")


def k8s_objects(experiment_dir: Path, search: str, out: Optional[Path], project_id: str) -> None:
    """``lmao polyaxonfile EXPERIMENT_DIR --k8s``: the cluster's objects for the committed polyaxonfile."""
    from .polyaxon import OPERATIONS, REPO, check_all, cluster_settings, compile_operation, manifests_yaml
    from .polyaxon import polyaxonfile_path
    from .storage.fileio import write_text

    existing_folder(experiment_dir, "an experiment folder")
    target = polyaxonfile_path(experiment_dir, search).resolve()
    settings = cluster_settings(project_id=project_id)
    compiled = [compile_operation(name, op, settings) for name, op in OPERATIONS.items()
                if (REPO / op.polyaxonfile).resolve() == target]
    if not compiled:
        raise InputError(target, "no cluster operation runs this file (experiments/polyaxon/k8s_manifests.py OPERATIONS)")
    from typer.main import get_command

    # The pods run `python -m experiments`: their entry point is checked against that app's commands.
    problems = check_all(compiled, set(get_command(_ENTRY_POINT_APP).commands))  # type: ignore[attr-defined]
    text = manifests_yaml(compiled)
    if out:
        write_text(out, text)
    else:
        typer.echo(text)
    if problems:
        raise InputError(target, "the compiled objects fail the cluster checks:\n" + "\n".join(problems))
    typer.echo(f"{len(compiled)} operations compiled ({', '.join(c.name for c in compiled)}); checks passed"
               + (f"; objects in {out}" if out else ""), err=not out)


_ENTRY_POINT_APP = typer.Typer()  # replaced by register(): the app `python -m experiments` runs


def register(app: typer.Typer) -> None:
    """Add ``sweep`` and ``polyaxonfile`` to ``app``, the experiments' app (``python -m experiments``; the
    ``lmao`` app includes it); ``--k8s`` checks the pods' entry point against its commands."""
    global _ENTRY_POINT_APP
    _ENTRY_POINT_APP = app
    app.command("sweep", context_settings=OVERRIDES)(sweep)
    app.command("polyaxonfile")(polyaxonfile)
