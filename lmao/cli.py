"""The ``lmao`` command line: the experiments' commands (:mod:`experiments.cli`) plus the ones that need
``analysis`` (``campaign``, ``report``, ``frontier``), under the same names and flags. Heavy imports happen
inside the commands so ``lmao --help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from analysis.cli import frontier, report
from experiments import cli as experiments_cli
from experiments.common.cli_base import OVERRIDES, new_app
from experiments.common.errors import InputError, check_at_least

app = new_app(name="lmao", help=experiments_cli.app.info.help, no_args_is_help=True)
_commands = new_app()  # the commands added here, before they join `app` in _assemble


@_commands.command("campaign", context_settings=OVERRIDES)
def campaign(
    ctx: typer.Context,
    design: Path = typer.Argument(..., help="Campaign design (YAML): experiment, runs folder, seeds, settings"),
    only: Optional[List[str]] = typer.Option(None, "--only", help="Run only these settings (repeatable)"),
    seed: Optional[List[int]] = typer.Option(None, "--seed", help="Run only these seeds (repeatable)"),
    cache: Optional[str] = typer.Option(None, "--cache", help="Pretraining cache: folder or gs:// (default: RUNS/cache)"),
    max_trials: int = typer.Option(0, "--max-trials", help="Stop after running this many trials (0 = all)"),
    summary_only: bool = typer.Option(False, "--summary", help="Only print the summary of the finished trials"),
    as_markdown: bool = typer.Option(False, "--markdown", help="Print the summary as a markdown table"),
    also: Optional[List[Path]] = typer.Option(
        None, "--also", help="With --summary: add these designs' rows after DESIGN's (repeatable; --only filters all)"),
    readme: Optional[Path] = typer.Option(
        None, "--readme", help="Also write the markdown summary into this README, between the --block markers"),
    block: str = typer.Option("campaign", "--block", help="README block: <!-- BLOCK:start --> ... <!-- BLOCK:end -->"),
) -> None:
    """Run a fixed design of trials (settings x seeds), skipping finished ones; extra options go to each trial."""
    from analysis.campaign import markdown, summary
    from analysis.report import update_readme
    from experiments.sweeps.campaign import load_design, run_campaign

    check_at_least("--max-trials", max_trials, 0, "0 = all")
    plan = load_design(design)
    if also and not summary_only:
        raise InputError("--also", "only goes with --summary (a campaign runs one design)")
    counts = {"failed": 0}
    if not summary_only:
        counts = run_campaign(plan, only=only or (), seeds=seed or (), cache=cache, extra=ctx.args, max_trials=max_trials)
        typer.echo(f"campaign {design}: {counts['completed']} run, {counts['skipped']} already done, "
                   f"{counts['failed']} failed")
    table = summary(plan, *map(load_design, also or ()), only=only or ())
    typer.echo("no finished trials yet" if table.empty else markdown(table) if as_markdown else table.to_string())
    if readme is not None:
        if table.empty:
            raise InputError(design, f"no finished trials to write into {readme}")
        message = update_readme(readme, markdown(table), block=block)
        if message.startswith("skipped"):
            raise InputError(readme, message.split(": ", 1)[1])
        typer.echo(message)
    if counts["failed"]:
        raise typer.Exit(1)


_commands.command("report")(report)  # defined in analysis.cli (also `python -m analysis`)
_commands.command("frontier")(frontier)  # analysis.cli: the size-accuracy frontier of IMDB-style campaigns


def _assemble(app: typer.Typer) -> None:
    """The experiments' command groups and commands, with ``campaign``, ``report`` and ``frontier`` after
    ``trial`` (the order of ``lmao --help``)."""
    app.registered_groups.extend(experiments_cli.app.registered_groups)
    extra = _commands.registered_commands
    for info in experiments_cli.app.registered_commands:
        app.registered_commands.append(info)
        if info.name == "trial":
            app.registered_commands.extend(extra)


_assemble(app)
