"""One error type for bad input: it always names the file, the line (when there is one) and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union


class InputError(ValueError):
    """Bad user input, reported as ``file:line: problem``."""

    def __init__(self, path: Union[str, Path], problem: str, line: Optional[int] = None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")
