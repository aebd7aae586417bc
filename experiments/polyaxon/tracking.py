"""Track a trial as a Polyaxon run when a Polyaxon API is there; do nothing otherwise.

The trial calls three things and never needs to know whether tracking is on::

    tracker = make_tracker(experiment, params, out_dir)
    tracker.log_epoch(row)        # after every fine-tuning epoch
    tracker.finish(results)       # at the end (completed or failed)

- On the cluster (``POLYAXON_IS_MANAGED=true``, set by Polyaxon) the run already exists: we attach to
  it and log metrics, outputs and the result file.
- Locally, when ``POLYAXON_HOST`` (or the CLI's ``polyaxon config set --host``) names a reachable API,
  e.g. ``make dashboard``, the trial becomes a non-managed run in project ``<experiment>`` (owner
  ``POLYAXON_OWNER``, default ``default``), with the params as inputs.
- ``LMAO_TRACKING=0`` turns tracking off. A tracking error never fails the trial: it is reported once
  and tracking stops.

The run's uuid is written to ``OUT_DIR/polyaxon.json`` so a sweep can mark a pruned trial's run stopped.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..storage.fileio import write_json
from ..training.results import RESULTS_FILE

RUN_FILE = "polyaxon.json"
RESULT_METRIC = "best_dev_score"


# The runs list's columns: Polyaxon's UI has no server-side default, but reads them from the page URL
# (``?search=`` base64 of ``{"columns": "a,b,..."}``, haupt 2.18.0 UI bundle; ``in.``/``out.`` are a run's
# inputs/outputs). Open this link, or pick the same columns with the table's "columns hidden" button.
RUNS_COLUMNS = ("name", "started_at", "duration", "out.epoch", "out.dev_score", "out." + RESULT_METRIC,
                "out.best_epoch", "in.pretrain_epochs", "in.objective", "in.width", "in.depth", "in.learn_rate")


def runs_page_url(host: str, project: str, owner: str = "default") -> str:
    """The dashboard's runs list of ``project`` with the columns a sweep is monitored by."""
    import base64
    import urllib.parse

    spec = json.dumps({"columns": ",".join(RUNS_COLUMNS)}, separators=(",", ":"))
    search = urllib.parse.quote(base64.b64encode(spec.encode()).decode(), safe="")
    return f"{host.rstrip('/')}/ui/{owner}/{project}/runs?search={search}"


class NoTracker:
    """Tracking is off: every call is a no-op."""

    enabled = False

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        pass

    def finish(self, results: Mapping[str, Any]) -> None:
        pass


def _warn(message: str) -> None:
    print(f"tracking: {message}", file=sys.stderr, flush=True)


def is_managed() -> bool:
    return os.environ.get("POLYAXON_IS_MANAGED", "").lower() in ("1", "true")


def configured_host() -> Optional[str]:
    """``POLYAXON_HOST``, else the host saved by ``polyaxon config set --host``, else None."""
    host = os.environ.get("POLYAXON_HOST")
    if host:
        return host.rstrip("/")
    path = Path.home() / ".polyaxon" / ".client"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    host = data.get("host") if isinstance(data, dict) else None
    return str(host).rstrip("/") if host else None


def api_reachable(host: str, timeout: float = 3.0) -> bool:
    """A cheap health check so a stale config never slows down or fails a trial."""
    try:
        with urllib.request.urlopen(f"{host}/healthz", timeout=timeout) as response:
            return response.status < 500
    except (urllib.error.URLError, OSError, ValueError):
        return False


def numeric_metrics(row: Mapping[str, Any]) -> Dict[str, float]:
    """The numbers of an epoch row (incl. ``dev_scores``), as valid Polyaxon metric names."""
    out: Dict[str, float] = {}
    flat = dict(row)
    for name, value in (row.get("dev_scores") or {}).items():
        flat.setdefault(f"dev_{name}", value)
    for name, value in flat.items():
        if name in ("epoch", "dev_scores") or name.startswith("dev_token_") or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out["".join(c if c.isalnum() or c in "_-" else "_" for c in name)] = float(value)
    return out


class PolyaxonTracker:
    """A Polyaxon run for one trial (``polyaxon.tracking``); failures disable it instead of raising."""

    enabled = True

    def __init__(self, experiment: str, params: Mapping[str, Any], out_dir: Path, managed: bool):
        from polyaxon import tracking

        self.tracking = tracking
        self.out_dir = Path(out_dir)
        self.managed = managed
        self.best: Optional[float] = None
        if managed:
            # A local process agent (experiments.polyaxon.agent) sets POLYAXON_HAS_PROCESS_SIDECAR: the
            # artifacts sidecar is then a thread of this process, which dies on its resources file (see
            # below); on a cluster the sidecar is its own container and resources are collected as usual.
            in_process = bool(os.environ.get("POLYAXON_HAS_PROCESS_SIDECAR"))
            if not in_process and managed_api_blocked():  # a pod with Polyaxon's sidecar container (GKE)
                init_managed_offline(tracking)
            else:
                tracking.init(track_code=False, track_env=False, track_logs=False,
                              **({"collect_resources": False} if in_process else {}))
        else:
            owner = os.environ.get("POLYAXON_OWNER", "default")
            ensure_project(owner, experiment)
            name = f"{self.out_dir.parent.name}-{self.out_dir.name}"[:128]
            # collect_resources=False: polyaxon 2.18's artifacts sidecar reads the CPU/memory events file
            # with pandas and its thread dies (EmptyDataError) when it reads it before the first row;
            # the run's later artifacts (results.json) then never upload. Seen with the sandbox.
            tracking.init(owner=owner, project=experiment, name=name, is_new=True, is_offline=False,
                          track_code=False, track_env=False, track_logs=False, collect_resources=False,
                          tags=[experiment, "trial"])
            tracking.log_inputs(**{k: v for k, v in params.items() if isinstance(v, (int, float, str, bool))})
        run = tracking.TRACKING_RUN
        _robust_sidecar(run)
        write_json(self.out_dir / RUN_FILE, {"owner": run.owner, "project": run.project,
                                             "run_uuid": run.run_uuid, "managed": managed})

    def _safely(self, what: str, func, *args, **kwargs) -> None:
        if not self.enabled:
            return
        try:
            func(*args, **kwargs)
        except Exception as err:  # tracking must never fail a trial
            self.enabled = False
            _warn(f"{what} failed ({type(err).__name__}: {err}); tracking stopped for this trial")

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        self._safely("log_epoch", self.tracking.log_metrics, step=int(row["epoch"]), **numeric_metrics(row))
        # Also as outputs, so the runs list can show a running trial's progress (see runs_page_url).
        self.best = max(self.best, float(row["dev_score"])) if self.best is not None else float(row["dev_score"])
        self._safely("log_epoch", self.tracking.log_outputs, epoch=int(row["epoch"]),
                     dev_score=float(row["dev_score"]), **{RESULT_METRIC: self.best})

    def finish(self, results: Mapping[str, Any]) -> None:
        self._safely("finish", self._finish, results)

    def _finish(self, results: Mapping[str, Any]) -> None:
        tracking = self.tracking
        outputs = {key: results.get(key) for key in ("best_epoch", "model_size_bytes",
                                                     "inference_words_per_second", "test_score")}
        outputs[RESULT_METRIC] = results.get("best_dev_score")
        outputs["status"] = results.get("status")
        tracking.log_outputs(**{k: v for k, v in outputs.items() if v is not None})
        path = self.out_dir / RESULTS_FILE
        if path.exists():
            tracking.log_artifact(str(path), name="results", kind="file")
        _closable_sidecar(tracking.TRACKING_RUN)
        if self.managed:
            restamp_outputs(self.out_dir)
        if results.get("status") == "failed":
            # log_failed ends the run itself (polyaxon 2.18: RunClient._log_end_status calls end()).
            tracking.TRACKING_RUN.log_failed(reason="TrialFailed", message=str(results.get("error"))[:500])
        else:
            tracking.end()


def _closable_sidecar(run: Any, timeout: float = 60.0) -> None:
    """Make ending a run safe when its artifacts sidecar thread has died.

    In polyaxon 2.18 ``end()`` closes the sidecar twice (``_end`` calls ``log_succeeded``, which calls
    ``end()`` again), and ``SidecarThread.close`` is a blocking ``put`` on a 1-slot queue plus ``join``.
    When the thread has died (its periodic upload raised on an API error, seen with the sandbox under
    load), nothing drains the queue and the second close blocks forever, hanging the trial. Closing
    without blocking loses nothing: ``end()`` syncs artifacts and summaries itself after the close.
    """
    sidecar = getattr(run, "_sidecar", None)
    if sidecar is None or not hasattr(sidecar, "_queue"):
        return

    def close() -> None:
        try:
            sidecar._queue.put_nowait(sidecar._shutdown_signal)
        except queue.Full:
            pass
        sidecar.join(timeout)

    sidecar.close = close


# The artifacts watcher race. polyaxon 2.18.0's artifacts sync walks the run folder, then stats each file it
# listed (polyaxon/_fs/watcher.py, FSWatcher.sync -> _sync_path -> clipped path_last_modified -> os.stat),
# uploads new/changed files and deletes from the store the files that disappeared. Our atomic writes
# (experiments.storage.fileio.atomic_path: `.results.json.XXXX.tmp` renamed onto results.json, `.model-best.XXXX.tmp`
# folders renamed onto model-best) create and remove such temporary entries inside the watched outputs
# folder all the time. A temporary file renamed between the walk and the stat raises FileNotFoundError; one
# that was uploaded and then renamed away is deleted from the store, which the sandbox's streams API
# answers with 400 "Artifact could not be deleted".
# - In-process sidecar (polyaxon/_sidecar/processor.py, SidecarThread: used by a managed run under the
#   local process agent, and by a run tracked from a workstation): nothing catches either error, the thread
#   dies, and nothing after it (the final results.json, model-last) reaches the artifacts store. Fixed here
#   (_robust_sidecar): the watcher never lists our temporary entries and treats a file that vanished after
#   the walk as deleted; a round that still fails (an API error) is retried on the next round from the
#   watcher's state before it, instead of ending the thread.
# - Sidecar container on GKE (polyaxon/_sidecar/container/__init__.py, monitor -> sync_artifacts): the same
#   watcher, but the round's exception is caught and logged, and failed deletions are ignored
#   (polyaxon/_sidecar/container/monitors/artifacts.py, return_exceptions=True), so the sidecar lives on.
#   The round is lost, though: a file first seen in that round is recorded with its mtime but not uploaded,
#   and later rounds skip it as unchanged (current_ts > data.ts is false). So a managed trial's last act
#   re-stamps its outputs' mtimes (restamp_outputs): the sidecar's final round, after the trial exits,
#   uploads every output file. (Temporary entries may still be copied to the bucket and removed later.)


def is_temporary(relpath: str) -> bool:
    """An entry of experiments.storage.fileio.atomic_path in progress (``.NAME.XXXX.tmp``) or inside one."""
    return any(part.startswith(".") and part.endswith(".tmp") for part in Path(relpath).parts)


def _robust_sidecar(run: Any) -> None:
    """Apply the fixes above to the run's in-process sidecar (no-op when it has none)."""
    sidecar = getattr(run, "_sidecar", None)
    watcher = getattr(sidecar, "_fw", None)
    if watcher is None or not hasattr(sidecar, "_process"):
        return
    from polyaxon._fs.watcher import FSWatcher

    if type(watcher) is FSWatcher:
        object.__setattr__(watcher, "__class__", _temp_aware_watcher())
    original = sidecar._process
    warned = []

    def process() -> None:
        fw = sidecar._fw
        files, dirs = dict(fw.files_mp), dict(fw.dirs_mp)
        try:
            original()
        except Exception as err:  # retried next round (every flush_secs) and on close
            fw.file_mapping, fw.dir_mapping = files, dirs
            if not warned:
                warned.append(err)
                _warn(f"artifacts sync failed ({type(err).__name__}: {str(err)[:200]}); retrying")

    sidecar._process = process


_WATCHER_CLASS = None


def _temp_aware_watcher():
    global _WATCHER_CLASS
    if _WATCHER_CLASS is None:
        from polyaxon._fs.watcher import FSWatcher

        class TempAwareFSWatcher(FSWatcher):
            """polyaxon 2.18.0's FSWatcher, minus our temporary entries and vanished files."""

            def sync_file(self, path: str, base_path: str):
                if not is_temporary(path):
                    super().sync_file(path, base_path)

            def sync_dir(self, path: str, base_path: str):
                if not is_temporary(path):
                    super().sync_dir(path, base_path)

            def _sync_path(self, path: str, base_path: str, mapping: Dict) -> Dict:
                try:
                    return super()._sync_path(path, base_path, mapping)
                except FileNotFoundError:  # removed since the walk: left marked for removal
                    return mapping

        _WATCHER_CLASS = TempAwareFSWatcher
    return _WATCHER_CLASS


def restamp_outputs(out_dir: Path) -> None:
    """Touch every file of a managed trial's outputs so the sidecar's last sync uploads all of them."""
    for path in Path(out_dir).rglob("*"):
        try:
            if path.is_file() and not path.name.endswith(".tmp"):
                os.utime(path)
        except OSError:
            pass


def ensure_project(owner: str, project: str) -> None:
    """Create the experiment's Polyaxon project on first use (a sandbox starts empty)."""
    from polyaxon.client import ProjectClient

    client = ProjectClient(owner=owner, project=project)
    try:
        client.refresh_data()
    except Exception:
        try:
            client.create(data={"name": project, "description": f"LMAO experiment {project}"})
        except Exception as err:  # created concurrently by another trial is fine
            if "exist" not in str(err).lower() and "409" not in str(err):
                raise


# A managed run on GKE cannot reach Polyaxon's API: terraform-gke's NetworkPolicy lets only Polyaxon's own
# pods connect to it (unless polyaxon_runs_reach_api), and Dataplane V2 drops the packets, so a call would
# hang until TCP gives up. polyaxon 2.18.0's managed ``tracking.init`` starts with an API call
# (traceml/tracking/run.py: ``refresh_data`` when ``CLIENT_CONFIG.is_managed``) and raises, which left
# the trial untracked: no metrics, no outputs. The API is probed first (3 s); when it does not answer, the
# run is tracked offline into its own artifacts folder (``/plx-context/artifacts/<run uuid>``): metric
# events under ``events/``, outputs in ``run.plx.json``, which the pod's sidecar uploads to the store with
# the trial's outputs (tests/test_cluster_pod.py runs this with Polyaxon's own sidecar).
API_PROBE_SECONDS = 3.0


def managed_api_blocked() -> bool:
    """True when this managed run's POLYAXON_HOST does not answer (the cluster's NetworkPolicy)."""
    host = os.environ.get("POLYAXON_HOST", "").rstrip("/")
    return bool(host) and not api_reachable(host, timeout=API_PROBE_SECONDS)


def init_managed_offline(tracking: Any) -> None:
    """Attach to the managed run offline: same owner/project/uuid, events written into its artifacts folder."""
    from polyaxon._contexts import paths as ctx_paths
    from polyaxon._env_vars.getters import get_run_info

    owner, project, run_uuid = get_run_info()
    tracking.init(owner=owner, project=project, run_uuid=run_uuid, is_offline=True, track_code=False,
                  track_env=False, track_logs=False, collect_resources=False,
                  artifacts_path=ctx_paths.CONTEXT_MOUNT_ARTIFACTS_FORMAT.format(run_uuid))
    _warn(f"Polyaxon API {os.environ.get('POLYAXON_HOST')} not reachable from this pod: metrics and outputs "
          f"are written to the run's artifacts for the sidecar to upload")


def make_tracker(experiment: str, params: Mapping[str, Any], out_dir: Path):
    """A Polyaxon tracker when an API is configured and reachable (or the run is managed), else a no-op."""
    if os.environ.get("LMAO_TRACKING", "1").lower() in ("0", "false", "off", "no"):
        return NoTracker()
    managed = is_managed()
    if not managed:
        host = configured_host()
        if not host:
            return NoTracker()
        if not api_reachable(host):
            _warn(f"Polyaxon API at {host} is not reachable; not tracking (start it with `make dashboard`)")
            return NoTracker()
        os.environ["POLYAXON_HOST"] = host
    from .boundary import check_polyaxon_version

    check_polyaxon_version()  # before a run is tracked: another Polyaxon may lack the private names we patch
    try:
        return PolyaxonTracker(experiment, params, Path(out_dir), managed)
    except Exception as err:
        _warn(f"could not start a Polyaxon run ({type(err).__name__}: {err}); not tracking")
        return NoTracker()


# Runs of a project that hold no trial by design: Polyaxon's pipelines (a matrix, the TPE tuner's batches,
# a DAG, a schedule; polyaxon 2.18.0 V1RunKind.has_pipeline) and our TPE tuner job (tuner.py tags it TUNER_TAG).
PIPELINE_KINDS = ("dag", "matrix", "schedule", "tuner")
TUNER_TAG = "tuner"


def not_a_trial(run: Any) -> Optional[str]:
    """What a listed Polyaxon run (``V1Run``) is when it holds no trial result ("matrix", "tuner", ...); None for
    a run that may (a trial)."""
    kind = getattr(run, "kind", None)
    kind = str(getattr(kind, "value", kind) or "")
    if kind in PIPELINE_KINDS:
        return kind
    if TUNER_TAG in (getattr(run, "tags", None) or []):
        return "tuner"
    return None


def mark_stopped(out_dir: Path, status: str, message: str) -> bool:
    """Mark a killed trial's Polyaxon run stopped/failed (the trial cannot); False when untracked."""
    path = Path(out_dir) / RUN_FILE
    if not path.exists() or not configured_host():
        return False
    try:
        from polyaxon.client import RunClient

        info = json.loads(path.read_text(encoding="utf-8"))
        client = RunClient(owner=info["owner"], project=info["project"], run_uuid=info["run_uuid"])
        if status == "pruned":
            client.log_stopped(message=message)
        else:
            client.log_failed(reason="TrialKilled", message=message)
        return True
    except Exception as err:
        _warn(f"could not update the Polyaxon run of {out_dir} ({type(err).__name__}: {err})")
        return False
