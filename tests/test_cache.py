"""experiments.cache: one builder per key, no half entries, stale-lock recovery; local and GCS."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from experiments import storage
from experiments.cache import ArtifactCache, CacheResult, CacheTimeoutError, cache_key
from experiments.storage import MARKER

FAST = dict(poll_s=0.05, heartbeat_s=0.1, stale_after_s=1.0)


def slow_build(log: Path, seconds: float = 0.5):
    """A build that takes a while and records each run in ``log`` (one line per build)."""

    def build(out: Path) -> None:
        with log.open("a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(seconds)
        (out / "epoch-1").mkdir()
        (out / "epoch-1" / "model.bin").write_bytes(b"\x00weights" * 1000)
        (out / "log.jsonl").write_text('{"epoch": 1}\n')

    return build


def entry_files(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_cache_key_is_canonical_and_strict():
    a = cache_key({"width": 96, "objective": {"type": "vectors", "loss": "cosine"}})
    b = cache_key({"objective": {"loss": "cosine", "type": "vectors"}, "width": 96})
    assert a == b and len(a) == 64
    assert cache_key({"width": 128}) != cache_key({"width": 96})
    assert cache_key({"width": 96}) != cache_key({"width": "96"})
    with pytest.raises(ValueError, match="inputs.path: PosixPath is not plain JSON"):
        cache_key({"path": Path("/x")})
    with pytest.raises(ValueError, match="not a string"):
        cache_key({"nested": {1: "a"}})
    with pytest.raises(ValueError, match="finite"):
        cache_key({"lr": float("nan")})


def test_bad_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cache key"):
        ArtifactCache(tmp_path).get_or_create("../escape", slow_build(tmp_path / "log"))


# -- local root -----------------------------------------------------------------------------------


def _local_worker(root: str, key: str, log: str, queue) -> None:
    result = ArtifactCache(root).get_or_create(key, slow_build(Path(log)))
    queue.put((str(result.path), result.hit))


def test_local_concurrent_processes_build_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    key, log = cache_key({"t": "local"}), tmp_path / "builds.log"
    procs = [ctx.Process(target=_local_worker, args=(str(tmp_path / "c"), key, str(log), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert len(log.read_text().splitlines()) == 1
    assert sorted(hit for _, hit in results) == [False, True, True]
    assert {path for path, _ in results} == {str(tmp_path / "c" / key)}
    assert "epoch-1/model.bin" in entry_files(tmp_path / "c" / key)


def test_local_failed_build_leaves_nothing_and_unlocks(tmp_path):
    cache = ArtifactCache(tmp_path / "c")
    key = cache_key({"t": "fail"})

    def broken(out: Path) -> None:
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_create(key, broken)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [".locks"]
    result = cache.get_or_create(key, slow_build(tmp_path / "log", 0))
    assert result == CacheResult(tmp_path / "c" / key, False, key)
    assert cache.get_or_create(key, broken).hit  # built entries are reused, build not called


def _hold_lock_then_hang(root: str, key: str) -> None:
    def hang(out: Path) -> None:
        (out / "partial").write_text("half written")
        time.sleep(600)

    ArtifactCache(root).get_or_create(key, hang)


def test_local_crashed_builder_releases_lock(tmp_path):
    """A builder killed mid-build (SIGKILL: no cleanup runs) neither blocks others nor leaves an entry."""
    key, root = cache_key({"t": "crash"}), tmp_path / "c"
    proc = multiprocessing.get_context("fork").Process(target=_hold_lock_then_hang, args=(str(root), key))
    proc.start()
    try:
        deadline = time.monotonic() + 20
        while not list(root.glob(f".{key}.*.tmp/partial")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(root.glob(f".{key}.*.tmp/partial")), "the crashing builder never started"
        with pytest.raises(CacheTimeoutError):  # it really holds the lock while alive
            ArtifactCache(root, wait_timeout_s=0.3).get_or_create(key, slow_build(tmp_path / "log"))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    result = ArtifactCache(root, wait_timeout_s=10).get_or_create(key, slow_build(tmp_path / "log", 0))
    assert not result.hit and "partial" not in entry_files(result.path)


# -- GCS root -------------------------------------------------------------------------------------


def test_gcs_concurrent_writers_one_builds_other_reuses(gcs_emulator, tmp_path):
    """Two machines (own mirrors) ask for one entry at once: exactly one builds, both get its files."""
    bucket = gcs_emulator.new_bucket()
    key, log = cache_key({"t": "gcs-race"}), tmp_path / "builds.log"
    caches = [ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / f"m{i}", **FAST) for i in range(2)]
    barrier = threading.Barrier(2)
    results: dict = {}

    def run(i: int) -> None:
        barrier.wait()
        results[i] = caches[i].get_or_create(key, slow_build(log))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(log.read_text().splitlines()) == 1
    assert sorted(r.hit for r in results.values()) == [False, True]
    files = [entry_files(r.path) for r in results.values()]
    assert files[0] == files[1] and "epoch-1/model.bin" in files[0]
    assert all(r.path.is_relative_to(tmp_path / f"m{i}") for i, r in results.items())
    assert bucket.get_blob(f"cache/{key}/_LOCK") is None  # released after publishing
    assert storage.is_complete(f"gs://{bucket.name}/cache/{key}")
    # a third machine later: plain download, no build
    later = ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / "m3", **FAST)
    assert later.get_or_create(key, slow_build(log)).hit
    assert len(log.read_text().splitlines()) == 1


def test_gcs_stale_lock_is_broken(gcs_emulator, tmp_path):
    """A lock left by a crashed builder (never refreshed) is broken after stale_after_s."""
    bucket = gcs_emulator.new_bucket()
    key = cache_key({"t": "stale"})
    bucket.blob(f"cache/{key}/_LOCK").upload_from_string(json.dumps({"owner": "dead"}), if_generation_match=0)
    cache = ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / "m", **FAST)
    start = time.monotonic()
    result = cache.get_or_create(key, slow_build(tmp_path / "log", 0))
    waited = time.monotonic() - start
    assert not result.hit and FAST["stale_after_s"] <= waited < FAST["stale_after_s"] + 5
    assert bucket.get_blob(f"cache/{key}/_LOCK") is None


def test_gcs_live_lock_is_respected(gcs_emulator, tmp_path):
    """A builder slower than stale_after_s keeps its lock by heartbeat: the waiter does not build."""
    bucket = gcs_emulator.new_bucket()
    key, log = cache_key({"t": "slow"}), tmp_path / "builds.log"
    root = f"gs://{bucket.name}/cache"
    slow = threading.Thread(
        target=lambda: ArtifactCache(root, mirror_dir=tmp_path / "m1", **FAST).get_or_create(
            key, slow_build(log, FAST["stale_after_s"] * 2)
        )
    )
    slow.start()
    while not log.exists():
        time.sleep(0.02)
    result = ArtifactCache(root, mirror_dir=tmp_path / "m2", **FAST).get_or_create(key, slow_build(log, 0))
    slow.join(timeout=30)
    assert result.hit and len(log.read_text().splitlines()) == 1


def test_gcs_half_published_entry_is_not_used(gcs_emulator, tmp_path):
    """Data uploaded without a marker (a builder that died while uploading) is ignored and rebuilt."""
    bucket = gcs_emulator.new_bucket()
    key = cache_key({"t": "half"})
    bucket.blob(f"cache/{key}/data-dead/epoch-1/model.bin").upload_from_string("truncated")
    cache = ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / "m", **FAST)
    result = cache.get_or_create(key, slow_build(tmp_path / "log", 0))
    assert not result.hit
    assert entry_files(result.path)["epoch-1/model.bin"] == b"\x00weights" * 1000
    assert MARKER in entry_files(result.path)


def test_gcs_failed_build_releases_lock(gcs_emulator, tmp_path):
    bucket = gcs_emulator.new_bucket()
    key = cache_key({"t": "gcs-fail"})
    cache = ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / "m", **FAST)

    def broken(out: Path) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_create(key, broken)
    assert bucket.get_blob(f"cache/{key}/_LOCK") is None
    assert not cache.get_or_create(key, slow_build(tmp_path / "log", 0)).hit


def test_gcs_lock_created_by_our_own_retried_request_is_ours(gcs_emulator):
    """The client retries a conditional create whose response was lost: the 412 it then gets is
    for our own lock, which must count as acquired (else we would wait for ourselves)."""
    from experiments.cache import _GcsLock

    bucket = gcs_emulator.new_bucket()
    mine, theirs = _GcsLock(bucket.blob("k/_LOCK"), 60), _GcsLock(bucket.blob("k/_LOCK"), 60)
    bucket.blob("k/_LOCK").upload_from_string(mine._body(), if_generation_match=0)  # "first attempt"
    assert not theirs.acquire()
    assert mine.acquire()
    mine.release()
    assert bucket.get_blob("k/_LOCK") is None
