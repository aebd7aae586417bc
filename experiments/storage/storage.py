"""Trial outputs and caches on GCS (``gs://bucket/prefix``) or a local folder, published atomically.

An *entry* is a folder of files published as a unit. Readers trust an entry only once its marker
``_COMPLETE`` exists; the marker holds the manifest (every file with size and sha256). Publishing never
overwrites a published entry:

- **GCS**: the files go under a fresh data folder ``<prefix>/data-<time>-<id>/``, then the marker
  ``<prefix>/_COMPLETE`` is created with ``if_generation_match=0`` (GCS refuses it with 412 when it
  exists). The loser of a race deletes its own data folder and gets :class:`AlreadyPublishedError`;
  the winner's files were never touched. Readers follow the marker to its data folder.
- **local path**: the files are copied to a temporary folder beside the target, the marker is written
  last, and the folder is renamed onto the target (``rename`` fails when the target is a non-empty
  folder, so a second publisher cannot overwrite either).

A downloaded or local entry is a plain folder with the entry's files plus the ``_COMPLETE`` manifest.

Credentials are Google's defaults (Workload Identity on GKE, ``gcloud auth application-default login``
on a laptop); ``STORAGE_EMULATOR_HOST`` points the client at an emulator (the tests do this).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Iterator, List, Optional, Union

from ..common.errors import InputError
from .fileio import atomic_path, file_digest, local_cache_dir

PathLike = Union[str, Path]
GS_SCHEME = "gs://"
MARKER = "_COMPLETE"
MANIFEST_VERSION = 1
# A published GCS entry's files sit in ENTRY/data-<UTC time>-<8 hex>/ (see the module doc); this pattern
# finds ENTRY and the file's path inside the entry in an object name.
DATA_FOLDER = "data-{stamp}-{id}"
_DATA_PATH = re.compile(r"^(?:(?P<entry>.+)/)?" + DATA_FOLDER.format(stamp=r"\d{8}T\d{6}", id="[0-9a-f]{8}")
                        + "/(?P<rel>.+)$")


class StorageError(RuntimeError):
    """An entry that cannot be read or written as asked; the message names the location."""


class AlreadyPublishedError(StorageError):
    """The entry was already published (by someone else): nothing of ours replaced it."""


class IncompleteEntryError(StorageError):
    """No ``_COMPLETE`` marker: the entry is missing or still being written; do not use it."""


@dataclass(frozen=True)
class GsUrl:
    """A parsed ``gs://bucket/prefix`` (prefix without leading or trailing slash, may be empty)."""

    bucket: str
    prefix: str

    def key(self, *parts: str) -> str:
        """Object name under the prefix: ``key("a", "b.json")`` -> ``prefix/a/b.json``."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def __str__(self) -> str:
        return f"{GS_SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{GS_SCHEME}{self.bucket}"


def is_gs_url(url: PathLike) -> bool:
    return isinstance(url, str) and url.startswith(GS_SCHEME)


def parse_gs_url(url: str) -> GsUrl:
    """Split ``gs://bucket/some/prefix`` (the one parser of these URLs); raises InputError (a ValueError)
    naming the URL when it is not one."""
    if not is_gs_url(url):
        raise InputError(str(url), "not a GCS URL (expected gs://bucket/prefix)")
    bucket, _, prefix = url[len(GS_SCHEME) :].partition("/")
    if not bucket or any(c in bucket for c in " /\\"):
        raise InputError(url, "missing or invalid bucket name")
    prefix = prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise InputError(url, "prefix has empty, '.' or '..' segments")
    return GsUrl(bucket, prefix)


@functools.lru_cache(maxsize=None)
def _cached_client(emulator: Optional[str]) -> Any:
    from google.cloud import storage

    if emulator:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="emulator", credentials=AnonymousCredentials())
    return storage.Client()


def gcs_client() -> Any:
    """A shared ``google.cloud.storage.Client`` (one per emulator host, honours STORAGE_EMULATOR_HOST)."""
    return _cached_client(os.environ.get("STORAGE_EMULATOR_HOST"))


# --------------------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------------------


def _local_files(local_dir: Path) -> List[str]:
    """Relative POSIX paths of the regular files under ``local_dir`` (sorted, marker excluded)."""
    if not local_dir.is_dir():
        raise StorageError(f"{local_dir}: not a folder")
    files = []
    for path in sorted(local_dir.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(local_dir).as_posix()
        if rel != MARKER:
            files.append(rel)
    return files


def build_manifest(local_dir: Path, data: Optional[str] = None) -> Dict[str, Any]:
    """The marker's content for ``local_dir``: every file with size and sha256, who and when."""
    files = {
        rel: {"size": (local_dir / rel).stat().st_size, "sha256": file_digest(local_dir / rel)}
        for rel in _local_files(local_dir)
    }
    manifest: Dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "files": files,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
    }
    if data is not None:
        manifest["data"] = data
    return manifest


def _parse_manifest(text: Union[str, bytes], where: str) -> Dict[str, Any]:
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as err:
        raise StorageError(f"{where}:{err.lineno}: invalid manifest JSON ({err.msg})") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise StorageError(f"{where}: manifest has no 'files' mapping")
    for rel in manifest["files"]:
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or ".." in parts or not parts:
            raise StorageError(f"{where}: unsafe file name in manifest: {rel!r}")
    return manifest


def _verify_files(local_dir: Path, manifest: Dict[str, Any], where: str) -> None:
    for rel, meta in manifest["files"].items():
        path = local_dir / rel
        if not path.is_file():
            raise StorageError(f"{where}: {rel} is listed in the manifest but missing")
        if path.stat().st_size != meta["size"] or file_digest(path) != meta["sha256"]:
            raise StorageError(f"{where}: {rel} does not match its manifest size/sha256")


# --------------------------------------------------------------------------------------------------
# Local folders
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def publishing(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` that becomes ``target`` when the block succeeds; never
    replaces an existing entry (:class:`AlreadyPublishedError`, and the temporary folder is removed)."""
    try:
        with atomic_path(target, is_dir=True, overwrite=False) as tmp:
            yield tmp
    except FileExistsError as err:
        raise AlreadyPublishedError(f"{target}: already exists, not overwritten") from err


def write_marker(folder: Path, manifest: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Write the ``_COMPLETE`` manifest (built from ``folder`` unless given) into ``folder``."""
    manifest = manifest or build_manifest(folder)
    (folder / MARKER).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _publish_local(local_dir: Path, target: Path) -> Dict[str, Any]:
    if (target / MARKER).exists():
        raise AlreadyPublishedError(f"{target}: already published, not overwritten")
    with publishing(target) as tmp:
        for rel in _local_files(local_dir):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(local_dir / rel, tmp / rel)
        manifest = write_marker(tmp)
    return manifest


# --------------------------------------------------------------------------------------------------
# GCS
# --------------------------------------------------------------------------------------------------


def _is_precondition_failed(err: Exception) -> bool:
    from google.api_core import exceptions

    return isinstance(err, exceptions.PreconditionFailed)


def read_manifest(url: PathLike) -> Dict[str, Any]:
    """The manifest of a published entry; raises IncompleteEntryError if it is not (yet) complete."""
    if is_gs_url(url):
        from google.api_core import exceptions

        gs = parse_gs_url(str(url))
        blob = gcs_client().bucket(gs.bucket).blob(gs.key(MARKER))
        try:
            text = blob.download_as_bytes()
        except exceptions.NotFound as err:
            raise IncompleteEntryError(f"{url}: no {MARKER} marker (missing or incomplete)") from err
        return _parse_manifest(text, f"{url}/{MARKER}")
    marker = Path(url) / MARKER
    if not marker.is_file():
        raise IncompleteEntryError(f"{url}: no {MARKER} marker (missing or incomplete)")
    return _parse_manifest(marker.read_text(encoding="utf-8"), str(marker))


def is_complete(url: PathLike) -> bool:
    """True when the entry at ``url`` has its ``_COMPLETE`` marker (and so may be read)."""
    try:
        read_manifest(url)
    except IncompleteEntryError:
        return False
    return True


def _publish_gcs(local_dir: Path, gs: GsUrl) -> Dict[str, Any]:
    bucket = gcs_client().bucket(gs.bucket)
    marker = bucket.blob(gs.key(MARKER))
    if marker.exists():
        raise AlreadyPublishedError(f"{gs}: already published, not overwritten")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    data = DATA_FOLDER.format(stamp=stamp, id=uuid.uuid4().hex[:8])
    manifest = build_manifest(local_dir, data=data)
    uploaded = []
    try:
        for rel in manifest["files"]:
            blob = bucket.blob(gs.key(data, rel))
            blob.upload_from_filename(str(local_dir / rel), if_generation_match=0)
            uploaded.append(blob)
        body = json.dumps(manifest, indent=2, sort_keys=True)
        marker.upload_from_string(body, content_type="application/json", if_generation_match=0)
    except Exception as err:
        if _is_precondition_failed(err) and _marker_names(marker, data):
            return manifest  # a retried request whose first attempt had already created our marker
        for blob in uploaded:  # our own, uniquely named data: nobody else references it
            with contextlib.suppress(Exception):
                blob.delete()
        if _is_precondition_failed(err):
            raise AlreadyPublishedError(f"{gs}: published by someone else first") from err
        raise
    return manifest


def _marker_names(marker: Any, data: str) -> bool:
    """True if the existing marker points at our data folder (so the entry is ours)."""
    with contextlib.suppress(Exception):
        return json.loads(marker.download_as_bytes()).get("data") == data
    return False


def _download_gcs(gs: GsUrl, manifest: Dict[str, Any], tmp: Path) -> None:
    bucket = gcs_client().bucket(gs.bucket)
    data = manifest.get("data", "")
    for rel in manifest["files"]:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        bucket.blob(gs.key(data, rel)).download_to_filename(str(tmp / rel))


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def upload_tree(local_dir: PathLike, url: PathLike) -> Dict[str, Any]:
    """Publish the files under ``local_dir`` as one entry at ``url`` (gs://bucket/prefix or a path).

    Returns the manifest. Raises AlreadyPublishedError when an entry is already there (or another
    publisher wins the race), leaving that entry untouched.
    """
    local = Path(local_dir)
    if is_gs_url(url):
        _local_files(local)  # fail early with a clear message if local_dir is not a folder
        return _publish_gcs(local, parse_gs_url(str(url)))
    return _publish_local(local, Path(url))


def download_tree(url: PathLike, local_dir: PathLike) -> Dict[str, Any]:
    """Copy the published entry at ``url`` into ``local_dir`` (which must not exist or be empty).

    Only complete entries are read (IncompleteEntryError otherwise); every file is checked against
    the manifest, and ``local_dir`` appears all at once (temporary folder, then rename).
    """
    target = Path(local_dir)
    manifest = read_manifest(url)
    with publishing(target) as tmp:
        if is_gs_url(url):
            _download_gcs(parse_gs_url(str(url)), manifest, tmp)
        else:
            for rel in manifest["files"]:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(url) / rel, tmp / rel)
        _verify_files(tmp, manifest, str(url))
        write_marker(tmp, manifest)
    return manifest


def list_complete(url: PathLike) -> Iterator[str]:
    """URLs (or paths) of the complete entries anywhere under ``url``, e.g. all trials of a sweep."""
    if is_gs_url(url):
        gs = parse_gs_url(str(url))
        prefix = gs.key() + "/" if gs.prefix else ""
        for blob in gcs_client().list_blobs(gs.bucket, prefix=prefix):
            if blob.name == MARKER or blob.name.endswith("/" + MARKER):
                yield f"{GS_SCHEME}{gs.bucket}/{blob.name[: -len(MARKER)].rstrip('/')}".rstrip("/")
        return
    for marker in sorted(Path(url).rglob(MARKER)):
        if not any(part.startswith(".") for part in marker.relative_to(url).parts):
            yield str(marker.parent)


@dataclass(frozen=True)
class StoredFile:
    """One object found under a ``gs://`` prefix, and where it is in the layout above."""

    bucket: str
    name: str  # the object holding the bytes
    logical: str  # the name a reader means: ENTRY/file for a file of a published entry, else ``name``
    complete: bool  # False for a file of a published entry whose marker is missing (unfinished, abandoned)

    @property
    def url(self) -> str:
        return f"{GS_SCHEME}{self.bucket}/{self.name}"


def find_files(url: str, filename: str, client: Any = None) -> List[StoredFile]:
    """Every object called ``filename`` anywhere under ``gs://bucket/prefix``, sorted by object name:
    plain objects as they are, files of published entries under their entry's name (with or without
    its marker: see :attr:`StoredFile.complete`)."""
    gs = parse_gs_url(url)
    client = client or gcs_client()
    names = {blob.name for blob in client.list_blobs(gs.bucket, prefix=gs.key() + "/" if gs.prefix else None)}
    found = []
    for name in sorted(n for n in names if n == filename or n.endswith("/" + filename)):
        published = _DATA_PATH.match(name)
        if published is None:
            found.append(StoredFile(gs.bucket, name, name, True))
            continue
        entry = GsUrl(gs.bucket, published.group("entry") or "")
        found.append(StoredFile(gs.bucket, name, entry.key(published.group("rel")), entry.key(MARKER) in names))
    return found


def read_bytes(url: str, client: Any = None) -> bytes:
    """The bytes of one ``gs://bucket/object``."""
    gs = parse_gs_url(url)
    return (client or gcs_client()).bucket(gs.bucket).blob(gs.prefix).download_as_bytes()


def file_url(url: str, rel: str) -> str:
    """The object that holds file ``rel`` of the folder at ``gs://...``: inside the data folder when the
    folder is a published entry, else ``url/rel`` (a plain folder, e.g. Polyaxon's artifacts)."""
    gs = parse_gs_url(url)
    try:
        data = read_manifest(url).get("data", "")
    except IncompleteEntryError:
        data = ""
    return f"{GS_SCHEME}{gs.bucket}/{gs.key(data, rel)}"


# --------------------------------------------------------------------------------------------------
# Prepared corpora on GCS
# --------------------------------------------------------------------------------------------------


def local_corpus(corpus_dir: PathLike, mirror_root: Optional[PathLike] = None) -> Path:
    """The local folder of a prepared corpus: ``corpus_dir`` itself, or for ``gs://bucket/prefix`` a
    verified local copy of the entry published there (``lmao data upload``).

    The copy lives under ``<mirror_root>/corpus/<bucket>/<prefix>/<manifest sha256[:16]>`` (default
    root ``$LMAO_CACHE_DIR`` or ``~/.cache/lmao``, the pretraining cache's mirror): downloaded once per
    machine, every file checked against the entry's manifest (size and sha256), and renamed into place
    whole, so trials sharing a node never read half a corpus. A copy already there is reused only if its
    manifest is the one published now. A prefix without a ``_COMPLETE`` marker is an error that says
    how to publish one.
    """
    if not is_gs_url(corpus_dir):
        return Path(corpus_dir)
    gs = parse_gs_url(str(corpus_dir))
    try:
        manifest = read_manifest(str(gs))
    except IncompleteEntryError as err:
        from ..common.errors import InputError

        raise InputError(f"{gs}/{MARKER}", f"not a published corpus (marker missing); publish the prepared "
                                          f"folder with `lmao data upload CORPUS_DIR {gs}`") from err
    digest = hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()[:16]
    root = Path(mirror_root) if mirror_root is not None else local_cache_dir()
    target = root / "corpus" / gs.bucket / (gs.prefix or "_root") / digest
    if not (target / MARKER).is_file():
        try:
            download_tree(str(gs), target)
        except AlreadyPublishedError:
            pass  # another trial on this machine finished the same download first: use its copy
    local = _parse_manifest((target / MARKER).read_text(encoding="utf-8"), str(target / MARKER))
    if local["files"] != manifest["files"]:
        raise StorageError(f"{target}: local copy does not match {gs}/{MARKER}; delete the folder and retry")
    return target
