"""Content-addressed cache of built folders (one entry = e.g. one whole pretraining run).

::

    cache = ArtifactCache("gs://my-bucket/cache")          # or a local folder
    key = cache_key({"corpus": corpus_sha, "width": 96, "epochs": 3, "code": "v2"})
    result = cache.get_or_create(key, build=lambda out: pretrain(..., output_dir=out))
    result.path   # local folder with the entry's files (plus the _COMPLETE manifest)
    result.hit    # False only for the one call that ran ``build``

Guarantees, for local and GCS roots alike:

- **One builder per key.** Concurrent callers never both build: a local root uses a ``filelock`` file
  (released by the OS if the process dies); a GCS root uses a lock object created with
  ``if_generation_match=0``. Everyone else waits, then reuses the entry.
- **No half entries.** ``build`` writes into a temporary folder; a local entry appears by rename, a
  GCS entry by its ``_COMPLETE`` marker (see :mod:`experiments.storage.storage`). A failed build leaves no
  entry and releases the lock.
- **A crashed builder does not block forever (GCS).** The builder refreshes its lock object every
  ``heartbeat_s``; a waiter that sees the lock unchanged for ``stale_after_s`` (or last refreshed that
  long ago) deletes it, with a generation precondition so only that stale lock goes, and competes
  again. If a slow builder was wrongly presumed dead, both may build, but only the first publish wins
  and both callers use that entry.
- GCS entries are mirrored to a local folder (``mirror_dir``, default the local cache folder
  ``$LMAO_CACHE_DIR`` or ``~/.cache/lmao`` (:func:`experiments.storage.fileio.local_cache_dir`), under
  ``gcs/<bucket>/<prefix>/<key>``), downloaded once per machine.

Keys are what :func:`cache_key` returns: the sha256 of the canonical JSON of exactly the inputs given,
so put in everything that changes the result (data hash, settings, code version) and nothing else.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

from filelock import FileLock, Timeout

from . import storage
from .fileio import local_cache_dir
from .storage import MARKER, AlreadyPublishedError, StorageError

logger = logging.getLogger(__name__)
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
LOCK_NAME = "_LOCK"
Build = Callable[[Path], None]


class CacheTimeoutError(StorageError):
    """Waited ``wait_timeout_s`` for another builder without the entry appearing."""


@dataclass(frozen=True)
class CacheResult:
    path: Path  # local folder holding the entry's files and its _COMPLETE manifest
    hit: bool  # True when this call reused an entry instead of building it
    key: str


def _check_json(value: Any, where: str) -> None:
    """Reject what JSON would silently coerce (non-str keys, NaN) so equal keys mean equal inputs."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"cache_key: {where}: key {k!r} is not a string")
            _check_json(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cache_key: {where}: {value} is not a finite number")
    elif not isinstance(value, (str, int, float, bool, type(None))):
        raise ValueError(f"cache_key: {where}: {type(value).__name__} is not plain JSON")


def cache_key(inputs: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON (sorted keys, no spaces) of exactly ``inputs``."""
    _check_json(dict(inputs), "inputs")
    canonical = json.dumps(dict(inputs), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_key(key: str) -> None:
    if not KEY_PATTERN.match(key):
        raise ValueError(f"cache key {key!r}: use cache_key() (letters, digits, . _ -; max 128)")


def _run_build(build: Build, folder: Path) -> None:
    """Run ``build`` on the entry's (temporary) folder; it must not write the marker itself."""
    build(folder)
    if (folder / MARKER).exists():
        raise StorageError(f"{folder}: build wrote {MARKER}, a name the cache reserves")


class _GcsLock:
    """A lock object on GCS: created only if absent, refreshed by a heartbeat, deleted if still ours."""

    def __init__(self, blob: Any, heartbeat_s: float):
        self.blob = blob
        self.heartbeat_s = heartbeat_s
        self.generation: Optional[int] = None
        self.lost = False
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _body(self) -> str:
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return json.dumps({"owner": self.owner, "refreshed": now})

    def acquire(self) -> bool:
        try:
            self.blob.upload_from_string(self._body(), if_generation_match=0)
        except Exception as err:
            if not storage._is_precondition_failed(err):
                raise
            if not self._is_ours():  # else: a retry after our own first attempt created it
                return False
        self.generation = self.blob.generation
        self._thread = threading.Thread(target=self._beat, name="gcs-lock-heartbeat", daemon=True)
        self._thread.start()
        return True

    def _is_ours(self) -> bool:
        with contextlib.suppress(Exception):
            self.blob.reload()
            return json.loads(self.blob.download_as_bytes()).get("owner") == self.owner
        return False

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.blob.upload_from_string(self._body(), if_generation_match=self.generation)
                self.generation = self.blob.generation
            except Exception as err:  # lock broken by a waiter, or GCS unreachable for a while
                logger.warning("cache lock %s: heartbeat failed: %s", self.blob.name, err)
                if storage._is_precondition_failed(err):
                    self.lost = True
                    return

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if not self.lost:
            with contextlib.suppress(Exception):  # gone or taken over: nothing of ours to delete
                self.blob.delete(if_generation_match=self.generation)


class ArtifactCache:
    """Entries keyed by :func:`cache_key` under ``root`` (a local folder or ``gs://bucket/prefix``)."""

    def __init__(
        self,
        root: Union[str, Path],
        *,
        mirror_dir: Optional[Union[str, Path]] = None,
        stale_after_s: float = 600.0,
        heartbeat_s: float = 60.0,
        poll_s: float = 5.0,
        wait_timeout_s: Optional[float] = None,
    ):
        if heartbeat_s * 2 >= stale_after_s:
            raise ValueError("heartbeat_s must be well under stale_after_s (a live lock looks stale)")
        self.root = str(root)
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self.wait_timeout_s = wait_timeout_s
        if storage.is_gs_url(self.root):
            self.gs: Optional[storage.GsUrl] = storage.parse_gs_url(self.root)
            base = Path(mirror_dir) if mirror_dir else local_cache_dir() / "gcs"
            self.local_root = base / self.gs.bucket / self.gs.prefix
        else:
            self.gs = None
            self.local_root = Path(root)

    def location(self, key: str) -> str:
        """Where the entry for ``key`` is published (URL for GCS, folder path otherwise)."""
        _check_key(key)
        return f"{storage.GsUrl(self.gs.bucket, self.gs.key(key))}" if self.gs else str(self.local_root / key)

    def get_or_create(self, key: str, build: Build) -> CacheResult:
        """The entry for ``key``, running ``build(tmp_dir)`` only if nobody has (or is building) it."""
        _check_key(key)
        local = self.local_root / key
        if (local / MARKER).is_file():
            return CacheResult(local, True, key)
        if self.gs is None:
            return self._local_get_or_create(key, build)
        return self._gcs_get_or_create(key, build)

    # local root -----------------------------------------------------------------------------------

    def _local_get_or_create(self, key: str, build: Build) -> CacheResult:
        entry = self.local_root / key
        lock_path = self.local_root / ".locks" / f"{key}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        timeout = -1 if self.wait_timeout_s is None else self.wait_timeout_s
        try:
            with FileLock(str(lock_path), timeout=timeout):
                if (entry / MARKER).is_file():
                    return CacheResult(entry, True, key)
                if entry.exists():
                    raise StorageError(f"{entry}: exists without {MARKER}; not a cache entry, remove it")
                with storage.publishing(entry) as tmp:
                    _run_build(build, tmp)
                    storage.write_marker(tmp)
                return CacheResult(entry, False, key)
        except Timeout as err:
            raise CacheTimeoutError(f"{lock_path}: still locked after {timeout}s") from err

    # GCS root -------------------------------------------------------------------------------------

    def _gcs_get_or_create(self, key: str, build: Build) -> CacheResult:
        url = self.location(key)
        lock = self._lock_blob(key)
        deadline = None if self.wait_timeout_s is None else time.monotonic() + self.wait_timeout_s
        while True:
            if storage.is_complete(url):
                return CacheResult(self._mirror(url, key), True, key)
            gcs_lock = _GcsLock(lock, self.heartbeat_s)
            if gcs_lock.acquire():
                try:
                    return self._build_and_publish(url, key, build)
                finally:
                    gcs_lock.release()
            self._wait_for_builder(url, lock, deadline)

    def _lock_blob(self, key: str) -> Any:
        assert self.gs is not None
        return storage.gcs_client().bucket(self.gs.bucket).blob(self.gs.key(key, LOCK_NAME))

    def _mirror(self, url: str, key: str) -> Path:
        """Download the published entry into the local mirror once (another process may race us)."""
        local = self.local_root / key
        if not (local / MARKER).is_file():
            with contextlib.suppress(AlreadyPublishedError):
                storage.download_tree(url, local)
        if not (local / MARKER).is_file():
            raise StorageError(f"{local}: exists without {MARKER}; remove it to re-download {url}")
        return local

    def _build_and_publish(self, url: str, key: str, build: Build) -> CacheResult:
        if storage.is_complete(url):  # published between our check and our lock
            return CacheResult(self._mirror(url, key), True, key)
        published = False  # by us; else our lock was presumed stale and someone else published first
        with contextlib.suppress(AlreadyPublishedError):  # theirs, or a local process mirrored it meanwhile
            with storage.publishing(self.local_root / key) as built:
                _run_build(build, built)
                manifest = storage.upload_tree(built, url)
                published = True
                storage.write_marker(built, manifest)
        return CacheResult(self._mirror(url, key), not published, key)

    def _wait_for_builder(self, url: str, lock: Any, deadline: Optional[float]) -> None:
        """Return once the entry is published, the lock is gone, or the lock was stale and broken."""
        observed: Optional[int] = None
        since = time.monotonic()
        while not storage.is_complete(url):
            if deadline is not None and time.monotonic() > deadline:
                raise CacheTimeoutError(f"{url}: no entry after waiting {self.wait_timeout_s}s")
            current = lock.bucket.get_blob(lock.name)
            if current is None:
                return
            if current.generation != observed:
                observed, since = current.generation, time.monotonic()
            age = (_dt.datetime.now(_dt.timezone.utc) - current.updated).total_seconds()
            if time.monotonic() - since > self.stale_after_s or age > self.stale_after_s:
                logger.warning("cache lock %s looks stale (%.0fs old): breaking it", lock.name, age)
                with contextlib.suppress(Exception):  # someone else broke or refreshed it first
                    lock.bucket.blob(lock.name).delete(if_generation_match=observed)
                return
            time.sleep(self.poll_s)
