"""One error type for bad input: it always names the file, the line (when there is one) and the problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional, Union


class InputError(ValueError):
    """Bad user input, reported as ``file:line: problem`` (on one line: a multi-line problem, e.g. a
    library's message, is joined)."""

    def __init__(self, path: Union[str, Path], problem: str, line: Optional[int] = None):
        self.path = str(path)
        self.line = line
        self.problem = problem = re.sub(r"\s*\n\s*", " ", str(problem).strip())
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


def check_at_least(name: str, value: int, low: int, meaning: str = "") -> None:
    """An :class:`InputError` naming the option or param ``name`` when ``value < low``."""
    if value < low:
        extra = f" ({meaning})" if meaning else ""
        raise InputError(name, f"must be at least {low}{extra}, got {value}")


def read_user_text(path: Union[str, Path]) -> str:
    """A text file the user supplied (a YAML or config file), as UTF-8; an :class:`InputError` naming
    the file, and the line for bytes that are not UTF-8, otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(path, f"not UTF-8 text ({err.reason})", data.count(b"\n", 0, err.start) + 1) from None


def read_user_yaml(path: Union[str, Path]) -> Any:
    """A YAML file the user supplied (``defaults.yml``, ``sweep.yml``, a campaign design), parsed; bad
    bytes or bad YAML are an :class:`InputError` naming the file and the line."""
    import yaml

    try:
        return yaml.safe_load(read_user_text(path))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise InputError(path, f"not valid YAML ({getattr(err, 'problem', None) or err})",
                         None if mark is None else mark.line + 1) from None
