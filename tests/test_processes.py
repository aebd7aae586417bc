"""experiments/processes.py: the one way the sweep and the Polyaxon agent stop a process group."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from experiments.common.processes import group_alive, stop_group, stop_process

# A leader that ignores SIGTERM, with a child in its group that does too.
STUBBORN = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)']); print('up', flush=True); "
            "time.sleep(120)")


def _start(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout.readline().strip() == "up"
    return proc


def test_stop_process_terms_then_kills_the_group_and_reaps_the_leader():
    proc = _start(STUBBORN)
    started = time.monotonic()
    stop_process(proc, grace=0.5)
    assert proc.returncode == -9 and time.monotonic() - started < 20
    deadline = time.monotonic() + 10
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not group_alive(proc.pid)


def test_stop_group_of_a_group_we_did_not_start_waits_until_it_is_gone():
    proc = _start(STUBBORN)
    done = []
    thread = threading.Thread(target=lambda: done.append(proc.wait()), daemon=True)
    thread.start()
    stop_group(proc.pid, grace=0.5)
    assert not group_alive(proc.pid)
    thread.join(10)
    assert done == [-9]
    stop_group(proc.pid, grace=0.5)  # a group that is gone: nothing to do, no error


def test_a_leader_that_ends_on_sigterm_is_not_killed():
    proc = _start("import time; print('up', flush=True); time.sleep(120)")
    stop_process(proc, grace=10)
    assert proc.returncode == -15


def test_a_child_started_with_die_with_parent_dies_when_its_parent_is_killed():
    """What `lmao campaign` and a sweep worker do with each trial: kill them and no trial runs on alone."""
    import os
    import signal

    from experiments.common.processes import die_with_parent

    if not die_with_parent():
        import pytest

        pytest.skip("no setpriv here")
    child = "import os, time; print(os.getpid(), flush=True); time.sleep(120)"
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; "
         f"subprocess.call({die_with_parent()!r} + [sys.executable, '-c', {child!r}])"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGTERM)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the child outlived its killed parent")
