"""Files on local disk: atomic outputs, file hashes, the local cache folder.

Atomic outputs: write to a temporary name beside the target, rename when complete. A reader never sees
half a file or half a folder, and a crash leaves the previous version (or nothing). This is the one
"build in a temporary folder, then rename" helper; the storage and cache modules use it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

PathLike = Union[str, Path]
# The local cache folder (downloads, the mirror of a GCS pretraining cache): $LMAO_CACHE_DIR, else this.
CACHE_DIR_ENV = "LMAO_CACHE_DIR"
DEFAULT_CACHE_DIR = "~/.cache/lmao"


def local_cache_dir() -> Path:
    """``$LMAO_CACHE_DIR``, else ``~/.cache/lmao`` (read when called, so tests can point it elsewhere)."""
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR).expanduser()


def feed_file(digest: Any, path: PathLike) -> Any:
    """Stream a file's bytes into a ``hashlib`` object (1 MiB at a time); returns the object."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest


def file_digest(path: PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (``algorithm``: any ``hashlib`` name, e.g. sha256, md5)."""
    return feed_file(hashlib.new(algorithm), path).hexdigest()


# Files in a folder that say how it was made (timings, hosts) but not what it holds.
NOT_CONTENT = frozenset({"vectors-info.json"})


def path_fingerprint(path: PathLike) -> str:
    """sha256 over a file's bytes, or over a folder's files (relative names and bytes, sorted; the
    ``NOT_CONTENT`` files left out). The one content hash behind every cache key part that names a path
    (a corpus shard, a vectors folder, a pipeline package's ``vocab/``)."""
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        if file.is_file() and file.name not in NOT_CONTENT:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            feed_file(digest, file)
    return digest.hexdigest()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_path(target: PathLike, *, is_dir: bool = False, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it into place only if the block succeeds.

    ``overwrite=False`` (folders only): never replace an existing non-empty ``target``; the rename
    fails instead, the temporary folder is removed and :class:`FileExistsError` names the target
    (publishers use this so a second writer cannot replace the first one's entry).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}."
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    # mkstemp/mkdtemp create private (0600/0700) entries; give the final output the usual umask modes.
    os.chmod(tmp, (0o777 if is_dir else 0o666) & ~_umask())
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    move_into_place(tmp, target, overwrite=overwrite)


def move_into_place(tmp: PathLike, target: PathLike, *, overwrite: bool = True) -> None:
    """Rename a finished file or folder onto ``target`` (same filesystem); ``tmp`` is gone afterwards.

    A folder replaces an existing ``target`` folder when ``overwrite`` (the old one is moved aside, then
    removed); without ``overwrite`` an existing non-empty target raises :class:`FileExistsError`.
    """
    tmp, target = Path(tmp), Path(target)
    try:
        if overwrite and tmp.is_dir() and target.exists():
            old = target.with_name(f".{target.name}.old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        elif overwrite:
            os.replace(tmp, target)
        else:
            os.rename(tmp, target)
    except OSError as err:
        _remove(tmp)
        if not overwrite and target.exists():
            raise FileExistsError(f"{target}: already exists, not overwritten") from err
        raise
    except BaseException:
        _remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(target: PathLike, data: Any) -> None:
    """Write JSON atomically (sorted keys, indented: result files are read by people too)."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def write_text(target: PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
