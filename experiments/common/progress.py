"""Progress on long work: a tqdm bar on a terminal, plain periodic lines otherwise (logs, CI, k8s)."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, Optional, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def is_terminal() -> bool:
    return sys.stderr.isatty()


def progress(items: Iterable[T], *, desc: str, total: Optional[int] = None, unit: str = "it",
             every_seconds: float = 30.0) -> Iterator[T]:
    """Iterate with a progress bar on a TTY, or a ``desc: n/total`` line every ``every_seconds``."""
    if is_terminal():
        yield from tqdm(items, desc=desc, total=total, unit=unit, mininterval=0.5)
        return
    start = last = time.monotonic()
    n = 0
    for n, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= every_seconds:
            last = now
            of = f"/{total}" if total else ""
            print(f"{desc}: {n}{of} {unit} ({n / (now - start):.1f} {unit}/s)", file=sys.stderr, flush=True)


def log(message: str) -> None:
    """One plain progress line (stderr, so stdout stays clean for data)."""
    print(message, file=sys.stderr, flush=True)
