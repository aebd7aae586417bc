"""Pytest plugin: real local services for the sweep tests, started once per session.

- ``postgres_url``: a PostgreSQL server (Debian package ``postgresql``; ``.ci/run`` installs it) in a
  temporary data folder on a free localhost port, run as the ``postgres`` user when we are root.
  Where no PostgreSQL can start it skips, saying why; in CI (``CI=true``) that is a failure, as for every
  real service and tool the tests use (:func:`unavailable`).
- ``polyaxon_sandbox``: Polyaxon's own local server (``haupt sandbox``, SQLite + local artifacts) from
  ``.venv-dashboard`` (``make dashboard-venv``), started by ``tools/dashboard.sh`` exactly as
  ``make dashboard`` starts it (web UI served offline), with ``HOME`` pointed at a temporary folder so
  neither the server nor the client touches the user's ``~/.polyaxon``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
HAUPT = REPO / ".venv-dashboard" / "bin" / "haupt"
DASHBOARD_SH = REPO / "tools" / "dashboard.sh"


def in_ci() -> bool:
    """CI runs ``.ci/run`` with ``CI=true``; it installs every service and tool the tests use."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def unavailable(reason: str) -> None:
    """A real service or tool the test needs is missing or does not start: skip on a developer's machine
    (saying why), fail in CI, where ``.ci/run`` installs it and a skip would hide a broken set-up."""
    if in_ci():
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.3) -> None:
    """Poll ``predicate`` until it is true; an AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_bin(name: str) -> Optional[str]:
    """Debian keeps the server binaries under /usr/lib/postgresql/<version>/bin, off PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


def as_postgres(command: List[str]) -> List[str]:
    """initdb refuses to run as root: drop to the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        unavailable("PostgreSQL is not installed (apt-get install postgresql; .ci/run does this as root)")
    root = Path(tempfile.mkdtemp(prefix="lmao-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    init = subprocess.run(as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]),
                          capture_output=True, text=True)
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"PostgreSQL cannot start here: initdb failed: {init.stderr.strip()[-500:]}")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off"
    start = subprocess.run(as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60",
                                        "start"]), capture_output=True, text=True)
    if start.returncode != 0:
        detail = log.read_text()[-500:] if log.exists() else start.stderr
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"PostgreSQL cannot start here: {detail.strip()}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not up after {timeout:.0f}s")


@pytest.fixture(scope="session")
def polyaxon_sandbox(tmp_path_factory) -> Iterator[Dict[str, str]]:
    """``{"host": url, "home": HOME for clients}``; the server's artifacts live under that home."""
    if not HAUPT.exists():
        unavailable(f"{HAUPT} missing: run `make dashboard-venv` (make test does)")
    home = tmp_path_factory.mktemp("polyaxon-home")
    port = free_port()
    log = open(home / "sandbox.log", "wb")
    env = {**os.environ, "HOME": str(home)}
    env.pop("POLYAXON_HOST", None)
    # The same start line as `make dashboard` (UI served offline, data and HOME in one folder).
    proc = subprocess.Popen(["bash", str(DASHBOARD_SH), str(home), str(port)],
                            cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    host = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{host}/healthz", proc, timeout=180)
        yield {"host": host, "home": str(home)}
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()
