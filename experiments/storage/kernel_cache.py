"""CuPy's compiled-kernel cache kept in the bucket, so a fresh GPU pod does not compile every kernel again.

On a GPU, CuPy compiles each elementwise/reduction kernel with NVRTC the first time a process uses it
and keeps the binary in a folder: ``CUPY_CACHE_DIR``, default ``~/.cupy/kernel_cache`` (CuPy 14,
``cupy/cuda/_compiler_cache.py`` ``DiskKernelCacheBackend``; the same variable and default in every CuPy
since v4). A GKE trial pod starts with that folder empty: a 1-epoch protocol trial with pretraining
spent 23 s compiling 77 kernels on an H100 (cProfile). The folder cannot be filled when the image is built (the build has no GPU,
and the binaries are compiled for the GPU's architecture), and a folder on the node is lost when the
autoscaler removes the node, so the trial copies it to and from ``<--cache>/cupy-kernels/`` when the
cache is a ``gs://`` URL: restored before the first kernel is compiled, new kernels uploaded at the end.

Sharing one folder between pods and GPU types is what CuPy's cache is built for: a file's name hashes
the kernel source, the compile options, the GPU architecture and the NVRTC version, each file starts
with a SHA-1 of its contents that CuPy checks on load (a torn or foreign file is ignored and compiled
again), and CuPy writes a file under a temporary name, then renames it (``os.replace``). Downloads here
do the same, so a trial never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Set

from ..common.progress import log
from .storage import gcs_client, is_gs_url, parse_gs_url

FOLDER = "cupy-kernels"


def local_dir() -> Optional[Path]:
    """The folder CuPy reads and writes (None when ``CUPY_CACHE_IN_MEMORY=1`` keeps it in memory)."""
    if os.environ.get("CUPY_CACHE_IN_MEMORY") == "1":
        return None
    return Path(os.environ.get("CUPY_CACHE_DIR") or "~/.cupy/kernel_cache").expanduser()


def _kernel_files(folder: Path) -> Set[str]:
    """Cache files in ``folder`` (CuPy's temporary files, ``tmp*``, are half-written: left out)."""
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("tmp")}


def restore(cache: str, folder: Optional[Path] = None, client: Any = None) -> Set[str]:
    """Download the kernels under ``CACHE/cupy-kernels/`` that ``folder`` lacks; return the names the
    folder holds afterwards (what :func:`save` need not upload again)."""
    folder = folder or local_dir()
    if folder is None or not is_gs_url(cache):
        return set()
    gs = parse_gs_url(cache)
    client = client or gcs_client()
    folder.mkdir(parents=True, exist_ok=True)
    present = _kernel_files(folder)
    fetched = 0
    for blob in client.list_blobs(gs.bucket, prefix=gs.key(FOLDER) + "/"):
        name = blob.name.rsplit("/", 1)[-1]
        if not name or name in present or name.startswith("tmp"):
            continue
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="tmp")
        with os.fdopen(fd, "wb") as f:
            blob.download_to_file(f)
        os.replace(tmp, folder / name)
        present.add(name)
        fetched += 1
    log(f"CuPy kernel cache: {fetched} kernels from {cache}/{FOLDER} into {folder} ({len(present)} in all)")
    return present


def save(cache: str, known: Set[str], folder: Optional[Path] = None, client: Any = None) -> int:
    """Upload the kernels compiled since :func:`restore` (names not in ``known``); returns how many."""
    folder = folder or local_dir()
    if folder is None or not is_gs_url(cache):
        return 0
    gs = parse_gs_url(cache)
    bucket = (client or gcs_client()).bucket(gs.bucket)
    new = sorted(_kernel_files(folder) - known)
    for name in new:
        bucket.blob(gs.key(FOLDER, name)).upload_from_filename(str(folder / name))
    if new:
        log(f"CuPy kernel cache: {len(new)} new kernels to {cache}/{FOLDER}")
    return len(new)
