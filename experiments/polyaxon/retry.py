"""The sandbox's spurious 405, and the one loop that retries it.

haupt sandbox 2.18.0 (1 uvicorn worker) now and then answers a POST with 405 "Method Not Allowed" (allow:
GET, HEAD, OPTIONS) on endpoints that accept POST a second later; its own cron thread logs the same
(haupt/cli/runners/cron.py "Waiting for Polyaxon to be ready..."). Nothing was done, so the POST is tried
again: :func:`retry_405` is the loop every caller uses (the agent's status reports, ``polyaxon run -u``,
approving a run); the tuner's own patience loop (tuner.py ``_call``) retries what :func:`is_spurious_405` says.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, TypeVar

POST_ATTEMPTS = 5
RETRY_DELAY_SECONDS = 1.0

T = TypeVar("T")


def status_of(err: BaseException) -> Optional[int]:
    """The HTTP status of a Polyaxon client error (``ApiException.status``), None when it has none."""
    code = getattr(err, "status", None)
    return code if isinstance(code, int) else None


def is_spurious_405(err: BaseException) -> bool:
    return status_of(err) == 405


def retry_405(call: Callable[[], T], *, attempts: int = POST_ATTEMPTS, delay: float = RETRY_DELAY_SECONDS,
              retry_error: Callable[[BaseException], bool] = is_spurious_405,
              retry_result: Optional[Callable[[Any], bool]] = None) -> T:
    """``call()`` up to ``attempts`` times, ``delay`` seconds apart, while it raises an error ``retry_error``
    accepts (the spurious 405) or returns a result ``retry_result`` accepts (a CLI's output that says 405).
    The last attempt's result is returned, or its error raised, as it is."""
    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        try:
            result = call()
        except Exception as err:  # noqa: BLE001 - polyaxon wraps HTTP and connection errors alike
            if last or not retry_error(err):
                raise
        else:
            if last or retry_result is None or not retry_result(result):
                return result
        time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
