"""CuPy's kernel cache kept in the bucket (experiments/storage/kernel_cache.py), against the local GCS server.

The sync works on files, so it runs here without a GPU: the files are in CuPy's on-disk format (the
SHA-1 of the binary in hex, then the binary). tests/test_gpu.py checks a real GPU trial fills it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from experiments.storage import kernel_cache


def kernel(folder: Path, name: str, payload: bytes) -> bytes:
    data = hashlib.sha1(payload).hexdigest().encode("ascii") + payload
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return data


def test_kernels_travel_between_pods_through_the_bucket(gcs_emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.host)
    bucket = gcs_emulator.new_bucket()
    cache = f"gs://{bucket.name}/lmao/cache"
    first, second = tmp_path / "pod-1", tmp_path / "pod-2"

    # pod 1: nothing in the bucket yet; it compiles two kernels (and leaves a half-written temp file)
    assert kernel_cache.restore(cache, first) == set()
    a = kernel(first, "a1.cubin", b"kernel a")
    b = kernel(first, "b2.cubin", b"kernel b")
    (first / "tmpx9k2").write_bytes(b"half")
    assert kernel_cache.save(cache, set(), first) == 2
    names = sorted(blob.name for blob in bucket.list_blobs())
    assert names == ["lmao/cache/cupy-kernels/a1.cubin", "lmao/cache/cupy-kernels/b2.cubin"]

    # pod 2 starts cold, gets both, compiles a third: only that one goes up
    known = kernel_cache.restore(cache, second)
    assert known == {"a1.cubin", "b2.cubin"}
    assert (second / "a1.cubin").read_bytes() == a and (second / "b2.cubin").read_bytes() == b
    assert not [p for p in second.iterdir() if p.name.startswith("tmp")]
    c = kernel(second, "c3.cubin", b"kernel c")
    assert kernel_cache.save(cache, known, second) == 1

    # pod 1 again: fetches only the new one, leaves its own files alone
    before = (first / "a1.cubin").stat().st_mtime_ns
    assert kernel_cache.restore(cache, first) == {"a1.cubin", "b2.cubin", "c3.cubin"}
    assert (first / "c3.cubin").read_bytes() == c and (first / "a1.cubin").stat().st_mtime_ns == before


def test_only_gs_caches_and_disk_caches_are_synced(tmp_path, monkeypatch):
    kernel(tmp_path / "k", "a1.cubin", b"kernel a")
    assert kernel_cache.restore(str(tmp_path / "cache"), tmp_path / "k") == set()  # a local cache: CuPy's own folder persists
    assert kernel_cache.save(str(tmp_path / "cache"), set(), tmp_path / "k") == 0
    assert not (tmp_path / "cache").exists()
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path / "kc"))
    monkeypatch.delenv("CUPY_CACHE_IN_MEMORY", raising=False)
    assert kernel_cache.local_dir() == tmp_path / "kc"
    monkeypatch.delenv("CUPY_CACHE_DIR")
    assert kernel_cache.local_dir() == Path(os.path.expanduser("~/.cupy/kernel_cache"))  # CuPy's default
    monkeypatch.setenv("CUPY_CACHE_IN_MEMORY", "1")
    assert kernel_cache.local_dir() is None
