"""What every ``lmao`` command module shares: the app factory and the one error idiom.

Bad input raises :class:`~experiments.common.errors.InputError` anywhere below a command; the command classes
here print it as one line, ``error: FILE:LINE: problem``, and exit with status 1. So do click's own
usage errors (a value of the wrong type, a missing argument: ``error: --n-train: 'x' is not a valid
integer``) and a missing or unwritable path the user gave (``error: PATH: No such file or directory``).
Any other exception is a bug or an environment failure and keeps its traceback. This module imports no command module, so
``experiments.cli``, ``experiments.cli_sweep`` and ``analysis.cli`` all import it without a cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NoReturn

import typer
from typer import _click as click  # typer 0.29 bundles its own click (typer/_click); its exceptions are these
from typer.core import TyperCommand, TyperGroup

from .errors import InputError

# For commands that take spaCy-style ``--section.key value`` config overrides as extra arguments.
OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


# OSErrors that name a path the user gave: one line. (Others, e.g. a full disk, keep their traceback.)
PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def _fail(line: str) -> NoReturn:
    typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def usage_error_line(err: click.UsageError) -> str:
    """A click usage error as ``WHERE: problem``: the option or argument (else the command), then click's
    message (typer 0.29 ``typer/_click/exceptions.py``: ``BadParameter.message``, ``format_message``)."""
    param = getattr(err, "param", None)
    if (isinstance(err, click.exceptions.BadParameter) and not isinstance(err, click.exceptions.MissingParameter)
            and param is not None):
        where = "/".join(param.opts) if param.param_type_name == "option" else str(param.name).upper()
        message = err.message
    else:
        where = err.ctx.command_path if err.ctx is not None else "lmao"
        message = err.format_message()
    return f"{where}: {message[:1].lower()}{message[1:].rstrip('.')}"


def _reporting_input_errors(invoke: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def wrapped(self: Any, ctx: Any) -> Any:
        try:
            return invoke(self, ctx)
        except InputError as err:
            _fail(str(err))
        except click.exceptions.NoArgsIsHelpError:  # `lmao data`: the help text, as click shows it
            raise
        except click.exceptions.UsageError as err:  # raised here for a subcommand's arguments
            _fail(usage_error_line(err))
        except PATH_ERRORS as err:
            if err.filename is None:
                raise
            _fail(f"{err.filename}: {err.strerror}")

    return wrapped


class Group(TyperGroup):
    """A command group whose commands report :class:`InputError` as one ``error:`` line."""

    invoke = _reporting_input_errors(TyperGroup.invoke)


class Command(TyperCommand):
    """A single command (``python -m analysis``) that reports :class:`InputError` the same way."""

    invoke = _reporting_input_errors(TyperCommand.invoke)


def existing_folder(path: Path, what: str) -> Path:
    """``path`` when it is a folder, else an :class:`InputError` naming it."""
    if not path.exists():
        raise InputError(path, f"{what} not found")
    if not path.is_dir():
        raise InputError(path, f"expected {what}, found a file")
    return path


def new_app(**kwargs: Any) -> typer.Typer:
    """A Typer app in this project's style: plain help (flags shown without a value), no completion,
    no pretty tracebacks, the one error idiom."""
    kwargs.setdefault("cls", Group)
    return typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None, **kwargs)
