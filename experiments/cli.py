"""The ``lmao`` command line (also ``python -m experiments``), in spaCy's CLI style: typer commands,
``--section.key value`` config overrides, clear one-line errors for bad input.

Heavy imports happen inside the commands so ``lmao --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import InputError

app = typer.Typer(
    name="lmao",
    help="LMAO pretrain-then-finetune experiments with spaCy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Prepare corpora as tokenized spaCy DocBins.", no_args_is_help=True)
vectors_app = typer.Typer(help="Static word vectors for the LMAO objective.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(vectors_app, name="vectors")

OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


def fail(message: str, code: int = 1) -> None:
    """Print one clear error line and exit (no traceback for bad input)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def run_reporting_input_errors(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except InputError as err:
        fail(str(err))
