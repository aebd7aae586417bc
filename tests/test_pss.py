"""Peak PSS of a process tree: shared copy-on-write pages count once, not once per process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# benchmarks/ is a folder of scripts, not a package: load the module from its file.
_spec = importlib.util.spec_from_file_location("pss", Path(__file__).resolve().parents[1] / "benchmarks" / "pss.py")
pss = sys.modules["pss"] = importlib.util.module_from_spec(_spec)  # registered first: dataclasses look it up
_spec.loader.exec_module(pss)
memory_kb, process_tree, run_measured = pss.memory_kb, pss.process_tree, pss.run_measured

pytestmark = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")

# A parent touches 200 MiB, forks two children that only read it (shared copy-on-write) and hold it
# for a moment: RSS summed over the 3 processes is about 600 MiB, PSS summed about 200 MiB.
FORKER = """
import os, time
data = bytearray(200 * 2**20)
for i in range(0, len(data), 4096):
    data[i] = 1
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        total = sum(data[::4096])  # read only: the pages stay shared
        time.sleep(2.5)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
"""


def test_peak_pss_counts_shared_pages_once():
    code, _, peak = run_measured([sys.executable, "-c", FORKER], interval=0.2)
    assert code == 0 and peak.samples >= 3
    assert peak.processes == 3 == len(peak.by_process)
    assert sum(pss for _, pss, _ in peak.by_process) == peak.pss_bytes
    mib = 2**20
    assert 190 * mib < peak.pss_bytes < 330 * mib  # the 200 MiB once, plus 3 interpreters
    assert peak.rss_bytes > 580 * mib  # RSS counts the shared buffer in each process


def test_process_tree_and_memory_of_this_process():
    import os

    assert process_tree(os.getpid())[0] == os.getpid()
    pss, rss = memory_kb(os.getpid())
    assert 0 < pss <= rss
    assert memory_kb(2**22 + 12345) is None  # no such process
