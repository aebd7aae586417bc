"""A real local GCS server for the tests: pytest plugin with the session fixture ``gcs_emulator``.

Use it from any test module (``tests/conftest.py`` loads this plugin)::

    def test_reads_results(gcs_emulator):
        bucket = gcs_emulator.new_bucket()              # fresh, uniquely named bucket
        bucket.blob("runs/t1/results.json").upload_from_string("{}")
        client = gcs_emulator.client()                   # google.cloud.storage.Client on the emulator
        ...                                              # or code that calls storage.Client() itself:
                                                         # STORAGE_EMULATOR_HOST is set for the session

What runs: ``gcp-storage-emulator`` (PyPI) in a child process on a free localhost port, so its HTTP
server never competes with the tests for the GIL and can be killed cleanly. The client library talks
to it over real HTTP (JSON API, multipart and resumable uploads).

Preconditions: the stock ``gcp-storage-emulator`` (checked with 2026.7.19) ignores ``ifGenerationMatch``
and friends, so a create with ``if_generation_match=0`` silently overwrites. Real GCS answers
``412 Precondition Failed``; the atomic publish and the cache lock depend on that. I found no emulator
on PyPI, Debian or npm that implements it (googleapis/storage-testbench and fsouza/fake-gcs-server do,
but ship only from GitHub / Docker Hub, which CI cannot reach). The child process therefore probes the stock server
at start and, only if it ignores preconditions, wraps its object handlers to enforce the documented
GCS rules (``_enforce_preconditions`` below). The emulator serves one request at a time, so the check
and the write are atomic, as on GCS. ``GcsEmulator.precondition_shim`` says whether the wrapper is on.

Run it by hand (prints ``PORT <n> SHIM <0|1>`` and serves until killed)::

    .venv/bin/python tests/gcs_emulator.py [--port 9023]
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
PRECONDITION_PARAMS = (
    "ifGenerationMatch",
    "ifGenerationNotMatch",
    "ifMetagenerationMatch",
    "ifMetagenerationNotMatch",
)
START_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------------------------------
# Server side (runs in the child process)
# --------------------------------------------------------------------------------------------------


def _precondition_failure(query: dict, obj: Optional[dict]) -> Optional[str]:
    """Return why the request's preconditions fail against the live object (None if they hold).

    GCS rules: ``ifGenerationMatch=0`` holds only when no live object exists; every other
    generation or metageneration condition needs a live object to compare with.
    """
    current = {
        "Generation": int(obj["generation"]) if obj else None,
        "Metageneration": int(obj["metageneration"]) if obj else None,
    }
    for name in PRECONDITION_PARAMS:
        if name not in query:
            continue
        wanted = int(query[name][0])
        have = current["Metageneration" if "Metageneration" in name else "Generation"]
        if name == "ifGenerationMatch" and wanted == 0:
            ok = have is None
        elif "NotMatch" in name:
            ok = have is not None and have != wanted
        else:
            ok = have is not None and have == wanted
        if not ok:
            return f"{name}={wanted} but the live object has {have}"
    return None


def _enforce_preconditions() -> None:
    """Wrap the emulator's object handlers so generation preconditions behave as on GCS (412)."""
    from gcp_storage_emulator import server as emu_server
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects

    def object_name(request: Any) -> Optional[str]:
        if request.params and request.params.get("object_id"):
            return request.params["object_id"]
        if request.query.get("name"):
            return request.query["name"][0]
        data = request.data
        if isinstance(data, dict):
            meta = data.get("meta", data)
            if isinstance(meta, dict):
                return meta.get("name")
        return None

    def guarded(handler: Callable, creates: bool) -> Callable:
        """Check preconditions before ``handler``; a missing object stays a 404 unless it creates."""

        def wrapper(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
            if any(p in request.query for p in PRECONDITION_PARAMS):
                name = object_name(request)
                try:
                    obj = storage.get_file_obj(request.params["bucket_name"], name)
                except NotFound:
                    obj = None
                if obj is None and not creates:
                    problem = None  # let the handler answer 404, as GCS does
                else:
                    problem = _precondition_failure(request.query, obj)
                if problem:
                    response.status = HTTPStatus.PRECONDITION_FAILED
                    error = {"code": 412, "message": f"Precondition Failed: {problem}"}
                    error["errors"] = [{"reason": "conditionNotMet", "message": error["message"]}]
                    response.json({"error": error})
                    return None
            return handler(request, response, storage, *args, **kwargs)

        wrapper.__wrapped__ = handler  # type: ignore[attr-defined]
        return wrapper

    targets = {objects.insert, objects.delete, objects.patch, objects.get, objects.download}
    for _regex, methods in emu_server.HANDLERS:
        for method, handler in list(methods.items()):
            if handler in targets:
                methods[method] = guarded(handler, creates=handler is objects.insert)
    # The router falls back to ``objects.insert`` for uploads posted without the /upload prefix.
    objects.insert = guarded(objects.insert, creates=True)


def _stock_enforces_preconditions(base_url: str) -> bool:
    """Probe: create one object twice with ifGenerationMatch=0; GCS refuses the second (412)."""
    url = f"{base_url}/upload/storage/v1/b/probe/o?uploadType=media&name=probe&ifGenerationMatch=0"
    codes = []
    for _ in range(2):
        req = urllib.request.Request(url, data=b"x", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                codes.append(resp.status)
        except urllib.error.HTTPError as err:
            codes.append(err.code)
    return codes[1] == HTTPStatus.PRECONDITION_FAILED


def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Start the emulator, add precondition checks if it lacks them, print the port, serve forever."""
    from http.server import HTTPServer

    from gcp_storage_emulator.server import create_server

    # The emulator is one HTTPServer thread with socketserver's listen backlog of 5. Polyaxon's sidecar
    # (gcsfs, tests/test_cluster_pod.py) opens dozens of connections at once; the kernel drops the ones
    # past the backlog and the clients' TCP retransmission backoff then stalls them for minutes. A deeper
    # backlog queues them instead (still served one at a time).
    HTTPServer.request_queue_size = 256
    server = create_server(host, port, in_memory=True, default_bucket="probe")
    server.start()
    bound = server._api._httpd.server_address[1]  # the port the OS picked for port=0
    shim = not _stock_enforces_preconditions(f"http://{host}:{bound}")
    server.wipe(keep_buckets=False)
    if shim:
        _enforce_preconditions()
    print(f"PORT {bound} SHIM {int(shim)}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------------
# Test side: the fixture
# --------------------------------------------------------------------------------------------------


@dataclass
class GcsEmulator:
    """Handle on the running emulator: ``host`` (http://127.0.0.1:PORT), clients, fresh buckets."""

    host: str
    precondition_shim: bool
    process: subprocess.Popen

    def client(self) -> Any:
        """A ``google.cloud.storage.Client`` bound to the emulator (anonymous credentials)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="lmao-test", credentials=AnonymousCredentials())

    def new_bucket(self, prefix: str = "test") -> Any:
        """Create and return a bucket with a unique name, so tests never see each other's objects."""
        return self.client().create_bucket(f"{prefix}-{uuid.uuid4().hex[:12]}")


def start_emulator(timeout_s: float = START_TIMEOUT_S) -> GcsEmulator:
    """Start the emulator child process and wait until it serves (raises with its log if not).

    Its log goes to a temporary file, not a pipe: a full pipe would block the server.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--port", "0"]
    log = tempfile.NamedTemporaryFile("w+", prefix="gcs-emulator-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait(timeout=10)
        log.seek(0)
        raise RuntimeError(
            f"gcp-storage-emulator did not start within {timeout_s}s ({' '.join(cmd)}): "
            f"{line!r}; log {log.name}:\n{log.read()[-2000:]}"
        )
    _, port, _, shim = line.split()
    return GcsEmulator(host=f"http://127.0.0.1:{port}", precondition_shim=shim == "1", process=proc)


def stop_emulator(emulator: GcsEmulator) -> None:
    emulator.process.terminate()
    try:
        emulator.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        emulator.process.kill()
        emulator.process.wait(timeout=10)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    """Session-wide GCS emulator; sets STORAGE_EMULATOR_HOST (restored after) so plain
    ``storage.Client()`` calls in the code under test reach it."""
    emulator = start_emulator()
    saved = os.environ.get(EMULATOR_ENV)
    os.environ[EMULATOR_ENV] = emulator.host
    try:
        yield emulator
    finally:
        if saved is None:
            os.environ.pop(EMULATOR_ENV, None)
        else:
            os.environ[EMULATOR_ENV] = saved
        stop_emulator(emulator)


def _main() -> None:
    parser = argparse.ArgumentParser(description="Local GCS emulator with GCS precondition rules.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (printed)")
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    _main()
