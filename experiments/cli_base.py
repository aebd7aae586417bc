"""What every ``lmao`` command module shares: the app factory and the one error idiom.

Bad input raises :class:`~experiments.errors.InputError` anywhere below a command; the command classes
here print it as one line, ``error: FILE:LINE: problem``, and exit with status 1. Any other exception is
a bug or an environment failure and keeps its traceback. This module imports no command module, so
``experiments.cli``, ``experiments.cli_sweep`` and ``analysis.cli`` all import it without a cycle.
"""

from __future__ import annotations

from typing import Any, Callable

import typer
from typer.core import TyperCommand, TyperGroup

from .errors import InputError

# For commands that take spaCy-style ``--section.key value`` config overrides as extra arguments.
OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


def _reporting_input_errors(invoke: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def wrapped(self: Any, ctx: Any) -> Any:
        try:
            return invoke(self, ctx)
        except InputError as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None

    return wrapped


class Group(TyperGroup):
    """A command group whose commands report :class:`InputError` as one ``error:`` line."""

    invoke = _reporting_input_errors(TyperGroup.invoke)


class Command(TyperCommand):
    """A single command (``python -m analysis``) that reports :class:`InputError` the same way."""

    invoke = _reporting_input_errors(TyperCommand.invoke)


def new_app(**kwargs: Any) -> typer.Typer:
    """A Typer app in this project's style: plain help (flags shown without a value), no completion,
    no pretty tracebacks, the one error idiom."""
    kwargs.setdefault("cls", Group)
    return typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None, **kwargs)
