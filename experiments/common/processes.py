"""Stopping a child's whole process group: the one place that knows how (SIGTERM, a grace period, SIGKILL).

A trial runs in its own process group (``start_new_session=True``), so stopping it reaches its worker
processes too. The local sweep (experiments/sweep.py) stops the trials it started; the Polyaxon process
agent (experiments/polyaxon/agent.py) stops the runs it started, and the process groups a killed agent left.
A trial started by the sweep or a campaign dies with the process that started it (``die_with_parent``),
so killing ``lmao campaign`` or a sweep worker leaves no trial running on its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from typing import List, Optional

KILL_WAIT_SECONDS = 5.0  # after SIGKILL, how long to wait for the group (or its leader) to be gone


def die_with_parent() -> List[str]:
    """The prefix that runs a command under ``setpriv --pdeathsig KILL`` (util-linux), so it is killed when
    the process that started it dies; empty where there is no ``setpriv`` (not Linux)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv and sys.platform.startswith("linux") else []


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is left (a process of another user counts as alive)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, grace: float, *, leader: Optional[subprocess.Popen] = None,
               kill_wait: float = KILL_WAIT_SECONDS) -> None:
    """SIGTERM process group ``pgid``, SIGKILL what is left after ``grace`` seconds.

    With ``leader`` (our child, the group's leader) it waits for that process to end (and reaps it);
    without, until no process of the group is left (a group another process started)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            if leader is None:
                return
        if leader is not None:
            try:
                leader.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not group_alive(pgid):
                return
            time.sleep(0.1)


def stop_process(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process group ``proc`` leads, SIGKILL it after ``grace`` seconds; ``proc`` is reaped."""
    stop_group(proc.pid, grace, leader=proc, kill_wait=30.0)
