"""Download a file once, with a progress bar and a checksum, into a local cache folder."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Optional

from tqdm import tqdm

from ..storage.fileio import atomic_path, file_digest, local_cache_dir


def download(url: str, *, checksum: Optional[str] = None, cache_dir: Optional[Path] = None) -> Path:
    """Fetch ``url`` into ``cache_dir`` (default: the local cache folder, ``$LMAO_CACHE_DIR`` or
    ``~/.cache/lmao``), reused when already there and the checksum matches.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``. A mismatch removes nothing that was good
    before: the download goes to a temporary name and only a verified file is moved into place.
    """
    target = Path(cache_dir or local_cache_dir()) / Path(url.split("?")[0]).name
    algorithm, _, expected = (checksum or "").partition(":")
    if target.exists() and (not checksum or file_digest(target, algorithm) == expected):
        return target
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(url) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        if checksum:
            actual = file_digest(tmp, algorithm)
            if actual != expected:
                raise ValueError(f"{url}: checksum mismatch ({algorithm} {actual}, expected {expected})")
    return target
