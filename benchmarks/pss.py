"""Peak memory of a process tree, as PSS: what a trial (parent + forked evaluation workers) really costs.

RSS counts a page in every process that maps it, so forked workers that share the parent's weights
copy-on-write look as if each held its own copy. PSS (proportional set size) divides each shared page
between the processes that map it, so the PSS of all processes adds up to the memory they use together.
Linux only: sampled from ``/proc/<pid>/smaps_rollup`` (``smaps`` on older kernels).

    python benchmarks/pss.py -- lmao trial lmao-imdb-1k --out runs/x ...   # prints the peaks at the end
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

PROC = Path("/proc")


def _children_map() -> Dict[int, List[int]]:
    children: Dict[int, List[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(root: int) -> List[int]:
    """``root`` and all its descendants (those alive now)."""
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def memory_kb(pid: int) -> Optional[Tuple[int, int]]:
    """(PSS, RSS) of one process in kB, or None when it is gone or unreadable."""
    for name in ("smaps_rollup", "smaps"):
        try:
            text = (PROC / str(pid) / name).read_text()
        except FileNotFoundError:
            continue
        except (ProcessLookupError, PermissionError, OSError):
            return None
        pss = rss = 0
        for line in text.splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
            elif line.startswith("Rss:"):
                rss += int(line.split()[1])
        return pss, rss
    return None


@dataclass
class Peak:
    pss_bytes: int = 0  # the largest PSS summed over the tree at one sample
    rss_bytes: int = 0  # RSS summed over the tree at that same sample (counts shared pages repeatedly)
    processes: int = 0  # processes in the tree at that sample
    samples: int = 0
    by_process: List[Tuple[int, int, int]] = field(default_factory=list)  # (pid, PSS, RSS) bytes at the peak

    def describe(self) -> str:
        each = ", ".join(f"{pss / 2**30:.2f}" for _, pss, _ in self.by_process)
        return (f"peak PSS {self.pss_bytes / 2**30:.2f} GiB summed over {self.processes} processes "
                f"[{each}] (their RSS summed: {self.rss_bytes / 2**30:.2f} GiB; {self.samples} samples)")


class PssSampler:
    """Samples a process tree's summed PSS every ``interval`` seconds in a thread; ``peak`` is the max."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        self.root, self.interval = root, interval
        self.peak = Peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        each = []
        for pid in process_tree(self.root):
            got = memory_kb(pid)
            if got is not None:
                each.append((pid, got[0] * 1024, got[1] * 1024))
        self.peak.samples += 1
        pss = sum(p for _, p, _ in each)
        if pss > self.peak.pss_bytes:
            self.peak.pss_bytes, self.peak.rss_bytes = pss, sum(r for _, _, r in each)
            self.peak.processes, self.peak.by_process = len(each), each

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(cmd: Sequence[str], *, interval: float = 0.5, **kwargs) -> Tuple[int, float, Peak]:
    """Run ``cmd``; return (exit code, wall seconds, peak PSS of it and its descendants)."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], **kwargs)
    with PssSampler(proc.pid, interval) as sampler:
        code = proc.wait()
    return code, time.perf_counter() - start, sampler.peak


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python benchmarks/pss.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if not (PROC / str(os.getpid()) / "smaps_rollup").exists() and not (PROC / "self" / "smaps").exists():
        print("error: PSS needs Linux /proc/<pid>/smaps", file=sys.stderr)
        return 2
    code, wall, peak = run_measured(args)
    print(f"{' '.join(args)}: exit {code}, {wall:.1f} s wall, {peak.describe()}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
