"""A TPE tuner that runs as a Polyaxon operation and launches the trials as Polyaxon runs.

Polyaxon CE 2.18.0 cannot run its own bayes/hyperopt/hyperband matrices (its scheduler builds their tuner
from the component hub, which CE does not resolve: see ``agent.TUNED_MATRICES``). This module is
the tuner instead, in the pattern of Kubeflow Katib's suggestion service: ``polyaxon run -u -f
EXPERIMENT/polyaxonfile.tpe.yml`` starts one run, the tuner, whose container runs
``python -m experiments.polyaxon.tuner run``. It

- holds an Optuna study (``TPESampler(constant_liar=True, n_startup_trials=...)``, the ``sweep.yml``
  pruner) in an RDB: SQLite by default, PostgreSQL when ``storage`` is given;
- asks the study for as many trials as there are free slots (``concurrency``) and launches them together
  as one Polyaxon ``mapping`` matrix of the same trial component the random matrix runs (``trial_file``),
  with the tuner's code upload, so each batch's trials are that matrix's pipeline children in the
  dashboard (CE's API cannot make a run another run's pipeline child: haupt 2.18.0
  ``OperationCreateSerializer.create`` passes no ``pipeline_id``; only the scheduler sets it, for the
  children of a matrix or a DAG). Batches and trials carry the tag ``tuner-<uuid8>``;
- reads each trial's per-epoch ``dev_score`` metric from Polyaxon, reports it to the study, and stops a
  trial through Polyaxon's API when the pruner says so; tells the study the final ``best_dev_score``
  read from the trial's ``outputs/results.json`` in the artifacts store (trials need no API access);
- ends with the best params (``outputs/best.json``, the tuner's outputs) and a report of the project.

Restart: every Optuna trial records its batch's name and uuid and its Polyaxon run (user attrs). A
restarted tuner re-attaches the study's running trials to their runs (a batch that was asked but never
created is created then, under the same name, never twice), never re-runs a finished one, and tells a
trial whose run failed (a killed agent, a crash) as failed. The SQLite study lives outside the run's
artifacts folder (a sidecar must never copy it mid-write); after each change a consistent copy goes to
``outputs/optuna.sqlite3`` and to the artifacts store, from which a tuner restarted on a fresh pod
restores it.

Polyaxon names used (polyaxon 2.18.0): ``polyaxon.client.RunClient`` (``create``, ``upload_artifacts_dir``,
``approve``, ``list``, ``get_metrics``, ``get_artifact``, ``get_statuses``, ``stop``, ``log_outputs``,
``upload_artifact``, ``download_artifact``), ``polyaxon._env_vars.getters.get_run_info``,
``polyaxon._constants.metadata.META_UPLOAD_ARTIFACTS``, ``polyaxon.schemas.LifeCycle`` / ``V1RunPending``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..common.errors import InputError
from .retry import is_spurious_405, status_of
from .tracking import RUNS_COLUMNS, TUNER_TAG  # the tuner run's tag: tracking.not_a_trial reads no trial from it

OWNER = "default"  # Polyaxon CE has a single organisation
STUDY_FILE = "optuna.sqlite3"
BEST_FILE = "best.json"
RESULT_METRIC = "best_dev_score"
# The trial's per-epoch metric (experiments.polyaxon.tracking logs every epoch row's numbers as metrics).
EPOCH_METRIC = "dev_score"
# How long the tuner keeps trying an API that does not answer before it fails with one line.
API_PATIENCE_SECONDS = 120.0
RESULTS_SYNC_SECONDS = 60.0
DEFAULT_STARTUP_TRIALS = 10
TUNER_CPU = "500m"
TUNER_MEMORY = "1Gi"
# The NetworkPolicy of terraform-gke lets pods with this label reach Polyaxon's API (trials have none).
TUNER_LABEL = {"lmao/role": "tuner"}


def _now() -> str:
    return f"{dt.datetime.now(dt.timezone.utc):%H:%M:%S}"


def say(message: str) -> None:
    print(f"{_now()} tuner: {message}", flush=True)


# ------------------------------------------------------------------------------------------ the file


def build_tuner_polyaxonfile(space: Any, trial_doc: Mapping[str, Any], *, sweep_file: str, trial_file: str,
                             concurrency: int = 4) -> Dict[str, Any]:
    """The tuner operation: a job running :func:`main` with the sweep's settings and the trial component's
    non-searched inputs (image, pool, corpus, cache, budget, fixed params), which it passes on to every
    trial. It runs on the CPU pool with a small request: it trains nothing."""
    trial_inputs = [dict(i) for i in trial_doc["component"]["inputs"] if i["name"] not in space.params]
    settings = [
        _input("n_trials", "int", space.n_trials, "trials to finish (complete, pruned or failed)"),
        _input("concurrency", "int", concurrency, "trials running at once"),
        _input("startup_trials", "int", min(DEFAULT_STARTUP_TRIALS, max(1, space.n_trials // 5)),
               "trials sampled at random before TPE models the results"),
        _input("seed", "int", 0, "TPE's seed"),
        _input("poll", "float", 5.0, "seconds between the tuner's looks at its running trials"),
        _input("storage", "str", "", "Optuna storage URL (default: SQLite kept with the tuner's outputs)"),
        _input("study", "str", "", "study name (default: EXPERIMENT-tpe-TUNER_UUID); an existing one resumes"),
        _input("sweep_file", "str", sweep_file, "search space, direction and pruner (in the upload)"),
        _input("trial_file", "str", trial_file, "polyaxonfile whose component each trial runs"),
    ]
    names = [i["name"] for i in settings + trial_inputs]
    args = ["exec", "python", "-m", "experiments.polyaxon.tuner", "run",
            "--outputs", "{{ globals.run_outputs_path }}"]
    for item in settings:
        args.append(f"--{item['name'].replace('_', '-')}='{{{{ {item['name']} }}}}'")
    for item in trial_inputs:
        args.append(f"-P {item['name']}='{{{{ {item['name']} }}}}'")
    assert len(set(names)) == len(names)
    experiment = space.experiment
    return {
        "kind": "operation",
        "name": f"{experiment}-tpe",
        "description": f"TPE search over {experiment}/sweep.yml ({space.n_trials} trials): a tuner run "
                       "that launches the trials as Polyaxon runs",
        "tags": [experiment, "sweep", "tpe", TUNER_TAG],
        "component": {
            "kind": "component",
            "name": "lmao-tpe-tuner",
            "description": "Optuna TPE study (ask/tell); each batch of trials is a mapping matrix of lmao-trial",
            "tags": [experiment, TUNER_TAG],
            "inputs": settings + trial_inputs,
            "outputs": [{"name": RESULT_METRIC, "type": "float", "isOptional": True,
                         "description": "the best trial's best_dev_score"}],
            # A tuner whose pod dies runs again and resumes its study (module docstring).
            "termination": {"maxRetries": 3},
            # No auto-resume: with it, a run whose store folder holds files (the tuner's upload) is
            # initialised by `polyaxon initializer fswatch` (polyaxon 2.18.0 _runner/converter/init/store.py
            # cp_mount_args), a command the CLI registers only inside Polyaxon's init image, not in the
            # venv the local process agent runs. The upload is copied by the init step below instead, and
            # a restarted tuner restores its study itself (Tuner.restore_study_file).
            "plugins": {"autoResume": False},
            "run": {
                "kind": "job",
                # The code `polyaxon run -u` uploaded, into the working dir (store path UUID/uploads).
                "init": [{"artifacts": {"dirs": ["{{ globals.uuid }}/uploads"]}}],
                "environment": {
                    "labels": dict(TUNER_LABEL),
                    "nodeSelector": {"lmao/pool": "cpu"},
                    "tolerations": [{"key": "lmao/pool", "operator": "Equal", "value": "cpu",
                                     "effect": "NoSchedule"}],
                },
                "container": {
                    "image": "{{ image }}",
                    "workingDir": "{{ globals.run_artifacts_path }}/uploads",
                    "command": ["bash", "-c"],
                    "args": [" ".join(args)],
                    "resources": {"requests": {"cpu": TUNER_CPU, "memory": TUNER_MEMORY},
                                  "limits": {"memory": TUNER_MEMORY}},
                },
            },
        },
    }


def _input(name: str, type_name: str, value: Any, description: str) -> Dict[str, Any]:
    return {"name": name, "type": type_name, "value": value, "isOptional": True, "description": description}


# ------------------------------------------------------------------------------------------ the tuner


@dataclass
class TunerOptions:
    sweep_file: Path
    trial_file: Path
    outputs: Path
    n_trials: int
    concurrency: int = 4
    startup_trials: int = DEFAULT_STARTUP_TRIALS
    seed: Optional[int] = 0
    storage: str = ""
    study: str = ""
    inputs: Dict[str, str] = field(default_factory=dict)  # the trials' fixed component inputs (-P)
    upload_dir: Path = Path(".")
    work_dir: Optional[Path] = None
    poll_seconds: float = 5.0
    report: bool = True


def read_trial_component(trial_file: Path) -> Dict[str, Any]:
    """The trial polyaxonfile (as committed): its ``component`` is what every trial runs."""
    import yaml

    if not Path(trial_file).is_file():
        raise InputError(trial_file, "trial polyaxonfile not found")
    doc = yaml.safe_load(Path(trial_file).read_text(encoding="utf-8")) or {}
    if not isinstance(doc.get("component"), dict) or not doc["component"].get("inputs"):
        raise InputError(trial_file, "expected an operation with a `component` that has inputs")
    return doc


def check_space_against_component(space: Any, component: Mapping[str, Any], sweep_file: Path,
                                  trial_file: Path) -> None:
    """Every searched and fixed param of the sweep file must be an input of the trial component."""
    inputs = {i["name"] for i in component["inputs"]}
    for name in [*space.params, *space.fixed]:
        if name not in inputs:
            raise InputError(sweep_file, f"{name}: not an input of the trial component in {trial_file} "
                                         f"(inputs: {', '.join(sorted(inputs))})")


class ApiDown(InputError):
    """The Polyaxon API did not answer for ``API_PATIENCE_SECONDS``."""


class Tuner:
    """One tuner run: the study, its batches and the loop that drives them."""

    def __init__(self, options: TunerOptions, api_patience: float = API_PATIENCE_SECONDS):
        from polyaxon._env_vars.getters import get_run_info

        from ..sweeps.search_space import load_search_space

        self.options = options
        self.space = load_search_space(options.sweep_file)
        self.trial_doc = read_trial_component(options.trial_file)
        check_space_against_component(self.space, self.trial_doc["component"], options.sweep_file,
                                      options.trial_file)
        self.inputs = self._check_inputs(options.inputs)
        try:
            self.owner, self.project, self.uuid = get_run_info()
        except Exception:  # noqa: BLE001 - polyaxon raises its own error when the env is not a run's
            raise InputError("POLYAXON_RUN_INSTANCE", "not set: the tuner runs as a Polyaxon run "
                                                      "(polyaxon run -u -f EXPERIMENT/polyaxonfile.tpe.yml)") from None
        self.experiment = self._trial_experiment()
        self.tag = f"tuner-{self.uuid[:8]}"
        self.study_name = options.study or f"{self.experiment}-tpe-{self.uuid}"
        self.work_dir = Path(options.work_dir or Path.home() / ".cache" / "lmao-tuner" / self.uuid)
        self.outputs = Path(options.outputs)
        self.stopping: Dict[int, int] = {}  # trial number -> epoch at which it was pruned (stop requested)
        self.last_ok = time.monotonic()
        self.api_patience = api_patience

    # ------------------------------------------------------------ checks
    def _check_inputs(self, given: Mapping[str, str]) -> Dict[str, Any]:
        """The trials' fixed inputs: names of the component, not searched; typed as the component says."""
        inputs = {i["name"]: i for i in self.trial_doc["component"]["inputs"]}
        casts = {"int": int, "float": float, "str": str}
        out: Dict[str, Any] = dict(self.space.fixed)  # -P overrides the sweep file's `fixed`, as in `lmao sweep`
        for name, value in given.items():
            if name not in inputs:
                raise InputError("-P", f"{name}: not an input of the trial component in {self.options.trial_file}")
            if name in self.space.params:
                raise InputError("-P", f"{name}: searched by {self.options.sweep_file}; fix it there instead")
            kind = inputs[name].get("type", "str")
            try:
                out[name] = (value.lower() in ("1", "true")) if kind == "bool" else casts.get(kind, str)(value)
            except ValueError:
                raise InputError("-P", f"{name}={value}: expected {kind} (the trial component input's type)") from None
        return out

    def _trial_experiment(self) -> str:
        """The experiment folder the trial component runs (``lmao trial EXPERIMENT``), for names and tags."""
        tags = self.trial_doc["component"].get("tags") or []
        return str(tags[0]) if tags else self.space.experiment

    # ------------------------------------------------------------ API calls
    def _call(self, what: str, func, *args, **kwargs):
        """Call the API; retry while it does not answer, fail with one line after ``API_PATIENCE_SECONDS``."""
        delay = 1.0
        while True:
            try:
                value = func(*args, **kwargs)
                self.last_ok = time.monotonic()
                return value
            except Exception as err:  # noqa: BLE001 - polyaxon wraps HTTP and connection errors alike
                code = status_of(err)
                # A refusal is an answer: only no answer, a 5xx or the sandbox's spurious 405 (see
                # retry.py) is tried again.
                if code is not None and 400 <= code < 500 and not is_spurious_405(err):
                    raise
                if time.monotonic() - self.last_ok > self.api_patience:
                    from polyaxon import settings

                    raise ApiDown(settings.CLIENT_CONFIG.host or "POLYAXON_HOST",
                                  f"Polyaxon API not reachable for {self.api_patience:.0f} s ({what}: "
                                  f"{f'HTTP {code}' if code else type(err).__name__})") from None
                time.sleep(delay)
                delay = min(delay * 2, 15.0)

    def client(self, run_uuid: Optional[str] = None) -> Any:
        import logging

        from polyaxon.client import RunClient

        # polyaxon 2.18.0 logs every failed call with its client config on the "polyaxon.cli" logger
        # (_client/decorators/errors.py handle_client_error), even when it raises; _call says it once.
        logging.getLogger("polyaxon.cli").setLevel(logging.CRITICAL)

        # manual_exceptions_handling: errors are raised to _call, not logged with a traceback by the client.
        return RunClient(owner=self.owner, project=self.project, run_uuid=run_uuid, manual_exceptions_handling=True)

    # ------------------------------------------------------------ study
    def shown_storage(self) -> str:
        """The storage URL for logs and errors, its password masked (SQLAlchemy's own rendering)."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.storage_url()).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - not a URL SQLAlchemy can parse: say only its scheme
            return self.storage_url().split(":", 1)[0] + "://..."

    def storage_url(self) -> str:
        return self.options.storage or f"sqlite:///{(self.work_dir / STUDY_FILE).resolve()}"

    def restore_study_file(self) -> None:
        """SQLite: a tuner restarted on a fresh machine takes the last copy from its outputs or the store."""
        if self.options.storage:
            return
        live = self.work_dir / STUDY_FILE
        if live.exists():
            return
        self.work_dir.mkdir(parents=True, exist_ok=True)
        copy = self.outputs / STUDY_FILE
        source = f"the last copy in the outputs ({copy})"
        if copy.exists():
            shutil.copyfile(copy, live)
        else:
            source = f"the last copy in the artifacts store (outputs/{STUDY_FILE})"
            with contextlib.suppress(Exception):  # a first start: nothing in the store
                found = self.client(self.uuid).download_artifact(path=f"outputs/{STUDY_FILE}",
                                                                 path_to=str(self.work_dir / "restore"), force=True)
                if found and Path(found).is_file():
                    shutil.move(str(found), str(live))
        if live.exists():
            say(f"study restored from {source}")

    def snapshot_study(self) -> None:
        """A consistent copy of the SQLite study in the outputs (renamed into place) and the store."""
        if self.options.storage:
            return
        from ..storage.fileio import atomic_path

        self.outputs.mkdir(parents=True, exist_ok=True)
        target = self.outputs / STUDY_FILE
        with atomic_path(target) as tmp:
            source = sqlite3.connect(str(self.work_dir / STUDY_FILE))
            dest = sqlite3.connect(str(tmp))
            try:
                source.backup(dest)
            finally:
                dest.close()
                source.close()
        with contextlib.suppress(Exception):  # the sidecar (cluster) or the next snapshot uploads it too
            self.client(self.uuid).upload_artifact(filepath=str(target), path="outputs", overwrite=True,
                                                   show_progress=False)

    def open_study(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.restore_study_file()
        url = self.storage_url()
        engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine)
        except Exception as err:  # noqa: BLE001 - SQLAlchemy's errors for a bad URL or an unreachable DB
            raise InputError("--storage", f"cannot open {self.shown_storage()}: {type(err).__name__}: "
                                          f"{str(err).splitlines()[0][:200]}") from None
        sampler = optuna.samplers.TPESampler(seed=self.options.seed, n_startup_trials=self.options.startup_trials,
                                             constant_liar=True)
        study = optuna.create_study(study_name=self.study_name, storage=storage, direction=self.space.direction,
                                    sampler=sampler, pruner=self.space.pruner.build(), load_if_exists=True)
        fingerprint = self.space.fingerprint(self.inputs)
        recorded = study.user_attrs.get("space_fingerprint")
        if recorded is None:
            for key, value in {"experiment": self.experiment, "search": "tpe", "space_fingerprint": fingerprint,
                               "fixed": self.inputs, "metric": self.space.metric, "n_trials": self.options.n_trials,
                               "tuner": self.uuid, "project": f"{self.owner}/{self.project}"}.items():
                study.set_user_attr(key, value)
        elif recorded != fingerprint:
            raise InputError(self.options.sweep_file, f"study {self.study_name!r} was run with another search "
                                                      "space or other fixed params; use a new study name")
        return study

    # ------------------------------------------------------------ batches
    def batch_name(self, index: int) -> str:
        return f"{self.experiment}-tpe-{self.uuid[:8]}-b{index:03d}"

    def batch_operation(self, index: int, values: List[Dict[str, Any]]) -> Dict[str, Any]:
        """One batch of suggestions: a mapping matrix over the trial component (as committed)."""
        return {
            "version": 1.1,
            "kind": "operation",
            "name": self.batch_name(index),
            "description": f"TPE batch {index} of tuner {self.uuid[:8]} ({len(values)} trials)",
            "tags": [self.experiment, "sweep", "tpe", self.tag],
            "matrix": {"kind": "mapping", "concurrency": len(values), "values": values},
            "params": {name: {"value": value} for name, value in self.inputs.items()},
            "component": self.trial_doc["component"],
        }

    def find_batch(self, name: str) -> Optional[str]:
        """A batch created before a restart, by its name (its children share it but have a pipeline).
        By name, not tag: the sandbox's SQLite database answers no ``tags:`` query (haupt 2.18.0)."""
        runs = self._call("read batches", self.client().list, query=f"name:{name}", limit=100)
        found = [r for r in (runs.results or []) if r.name == name and not r.pipeline]
        return found[0].uuid if found else None

    def create_batch(self, index: int, values: List[Dict[str, Any]]) -> str:
        """``polyaxon run -u`` by API: create pending upload, upload the tuner's code, approve."""
        from polyaxon._constants.metadata import META_UPLOAD_ARTIFACTS
        from polyaxon.schemas import V1RunPending

        client = self.client()
        try:
            run = self._call("create a batch", client.create, name=self.batch_name(index),
                             tags=[self.experiment, "sweep", "tpe", self.tag],
                             content=self.batch_operation(index, values),
                             meta_info={META_UPLOAD_ARTIFACTS: "uploads"}, pending=V1RunPending.UPLOAD)
        except ApiDown:
            raise
        except Exception as err:  # noqa: BLE001 - the server refused the operation (HTTP 4xx)
            body = str(getattr(err, "body", "") or err).replace("\n", " ")
            raise InputError(self.options.trial_file, f"the server refused batch {index}: {body[:300]}") from None
        batch = self.client(run.uuid)
        self._call("upload the code", batch.upload_artifacts_dir, dirpath=str(self.options.upload_dir),
                   path="uploads", overwrite=True, relative_to=str(self.options.upload_dir))
        self._call("approve a batch", batch.approve)
        return run.uuid

    # ------------------------------------------------------------ trials
    def launch(self, study: Any, count: int) -> None:
        """Ask ``count`` trials and launch them as one batch (the batch is recorded before it is created)."""
        index = int(study.user_attrs.get("batches", 0))
        study.set_user_attr("batches", index + 1)
        trials = []
        for _ in range(count):
            trial = study.ask()
            self.space.sample(trial)
            trial.set_user_attr("batch", index)
            trial.set_user_attr("batch_name", self.batch_name(index))
            trials.append(trial)
        self.snapshot_study()
        numbers = {t.number for t in trials}
        self.ensure_batch(study, index, [t for t in study.get_trials(deepcopy=False) if t.number in numbers])

    def ensure_batch(self, study: Any, index: int, frozen: List[Any]) -> str:
        """Find (restart) or create the batch of these trials; record its uuid on each of them."""
        from optuna.trial import Trial

        name = self.batch_name(index)
        uuid = self.find_batch(name)
        if uuid is None:
            uuid = self.create_batch(index, [dict(t.params) for t in frozen])
            say(f"batch {name} ({uuid[:8]}): trials {', '.join(str(t.number) for t in frozen)} launched")
        else:
            say(f"batch {name} ({uuid[:8]}): found after a restart, re-attached")
        for t in frozen:
            Trial(study, t._trial_id).set_user_attr("batch_uuid", uuid)
        self.snapshot_study()
        return uuid

    def children(self, batch_uuid: str) -> List[Any]:
        page = self._call("read children", self.client().list, query=f"pipeline:{batch_uuid}", limit=100)
        return list(page.results or [])

    @staticmethod
    def same_params(params: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
        for name, value in params.items():
            other = (inputs or {}).get(name)
            if isinstance(value, float) or isinstance(other, float):
                try:
                    if not math.isclose(float(value), float(other), rel_tol=1e-9, abs_tol=0.0):
                        return False
                except (TypeError, ValueError):
                    return False
            elif str(value) != str(other):
                return False
        return True

    def attach(self, study: Any, frozen: Any) -> Optional[Any]:
        """The Polyaxon run of a running trial (recorded, or found among its batch's children)."""
        from optuna.trial import Trial

        uuid = frozen.user_attrs.get("run_uuid")
        batch = frozen.user_attrs.get("batch_uuid")
        if batch is None:  # asked, but the tuner died before it created the batch: create it now
            index = int(frozen.user_attrs["batch"])
            siblings = [t for t in study.get_trials(deepcopy=False)
                        if t.user_attrs.get("batch") == index and t.state.name == "RUNNING"]
            self.ensure_batch(study, index, siblings)
            return None
        for run in self.children(batch):
            if (uuid and run.uuid == uuid) or (not uuid and self.same_params(frozen.params, run.inputs)):
                if not uuid:
                    Trial(study, frozen._trial_id).set_user_attr("run_uuid", run.uuid)
                    say(f"trial {frozen.number}: run {run.uuid[:8]} ({run.name})")
                return run
        self.check_batch(study, frozen, batch)
        return None  # the scheduler has not created it yet

    def check_batch(self, study: Any, frozen: Any, batch_uuid: str) -> None:
        """A trial with no run yet: its batch is still pending its upload (the tuner died during it:
        upload and approve again), or has ended without creating it (told failed, with the batch's reason)."""
        from optuna.trial import Trial, TrialState
        from polyaxon.schemas import LifeCycle

        client = self.client(batch_uuid)
        self._call("read a batch", client.refresh_data)
        data = client.run_data
        if data.pending == "upload":
            say(f"batch {data.name} ({batch_uuid[:8]}): its upload did not finish; uploading again")
            self._call("upload the code", client.upload_artifacts_dir, dirpath=str(self.options.upload_dir),
                       path="uploads", overwrite=True, relative_to=str(self.options.upload_dir))
            self._call("approve a batch", client.approve)
        elif LifeCycle.is_done(data.status) and not self.children(batch_uuid):
            error = self.failure_line(batch_uuid, data.status)
            Trial(study, frozen._trial_id).set_user_attr("error", f"batch {data.status}: {error}")
            study.tell(frozen.number, state=TrialState.FAIL)
            say(f"trial {frozen.number} failed: its batch {data.name} ({batch_uuid[:8]}) {data.status}: {error}")

    def epochs(self, run_uuid: str) -> List[Tuple[int, float]]:
        """The trial's per-epoch dev scores logged so far (Polyaxon's metric events)."""
        try:
            metrics = self.client(run_uuid).get_metrics(names=[EPOCH_METRIC], force=True)
        except Exception:  # noqa: BLE001 - no events file before the first epoch
            return []
        data = (metrics.get(EPOCH_METRIC) or {}).get("data") or {}
        steps, values = data.get("step") or [], data.get("metric") or []
        return sorted((int(s), float(v)) for s, v in zip(steps, values) if v is not None)

    def read_results(self, run_uuid: str) -> Dict[str, Any]:
        """The trial's ``outputs/results.json`` as the artifacts store has it now (force: never the streams
        service's cached copy of an earlier read)."""
        target = self.work_dir / "results" / run_uuid
        try:
            path = self._call("read results", self.client(run_uuid).download_artifact,
                              path="outputs/results.json", path_to=str(target), force=True)
            return json.loads(Path(path).read_text(encoding="utf-8"))
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def final_score(self, run_uuid: str) -> Tuple[Optional[float], Optional[str], Dict[str, Any]]:
        """``best_dev_score`` from the trial's ``outputs/results.json`` in the artifacts store. A run can be
        reported succeeded a moment before its last sync lands (seen on the local server: the file still
        said ``running``), so an unfinished file is read again for up to ``RESULTS_SYNC_SECONDS``."""
        deadline = time.monotonic() + RESULTS_SYNC_SECONDS
        while True:
            try:
                results = self.read_results(run_uuid)
            except ApiDown:
                raise
            except Exception as err:  # noqa: BLE001 - missing (HTTP 404) or not JSON
                results = {"status": None, "error": f"no readable outputs/results.json in the artifacts store "
                                                    f"({type(err).__name__})"}
            if results.get("status") in ("completed", "failed", "pruned") or time.monotonic() > deadline:
                break
            time.sleep(2.0)
        score = results.get(RESULT_METRIC)
        if results.get("status") != "completed" or score is None:
            return None, results.get("error") or f"results.json says {results.get('status')}", results
        return float(score), None, results

    def failure_line(self, run_uuid: str, status: str) -> str:
        """One line: the trial's own ``error: ...`` from its status messages, else the last message."""
        try:
            _, conditions = self.client(run_uuid).get_statuses()
        except Exception:  # noqa: BLE001
            conditions = []
        messages = [c.message for c in conditions or [] if getattr(c, "message", None)]
        for message in reversed(messages):
            errors = [line for line in message.splitlines() if line.startswith("error: ")]
            if errors:
                return errors[-1][len("error: "):]
        return (messages[-1].splitlines()[0] if messages else f"run {status}")[:300]

    def follow(self, study: Any, frozen: Any) -> bool:
        """One look at a running trial: report new epochs, prune, or tell its end. True when it ended."""
        from optuna.trial import Trial, TrialState
        from polyaxon.schemas import LifeCycle

        run = self.attach(study, frozen)
        if run is None:
            return False
        trial = Trial(study, frozen._trial_id)
        done = LifeCycle.is_done(run.status)
        pruned_at = frozen.user_attrs.get("pruned_at")
        if pruned_at is not None and not done and frozen.number not in self.stopping:
            # Pruned by a tuner that died before its stop reached the server (or before it was carried out).
            self.stopping[frozen.number] = pruned_at
            self._call("stop a run", self.client(run.uuid).stop)
        if pruned_at is None:
            for step, value in self.epochs(run.uuid):
                if step in frozen.intermediate_values:
                    continue
                trial.report(value, step)
                frozen.intermediate_values[step] = value
                if not done and trial.should_prune():
                    trial.set_user_attr("pruned_at", step)
                    pruned_at = self.stopping[frozen.number] = step
                    say(f"trial {frozen.number} ({run.uuid[:8]}): pruned after epoch {step} "
                        f"(dev {self.space.metric} {value:.4f}); stopping its run")
                    self._call("stop a run", self.client(run.uuid).stop)
                    break
        if not done:
            return False
        if pruned_at is not None and run.status == "succeeded":
            # Metric events arrive in flushes (every 10 s from a trial's sidecar): the epochs that decided
            # the pruning can come as the trial finishes, and then the stop lands on a finished run.
            # The trial ran to its end, so it is told as complete.
            say(f"trial {frozen.number}: finished before its stop took effect; told as complete")
            trial.set_user_attr("pruned_at", None)
            pruned_at = None
        if pruned_at is not None:
            study.tell(frozen.number, state=TrialState.PRUNED)
            say(f"trial {frozen.number}: pruned (run {run.status})")
        elif run.status == "succeeded":
            score, error, results = self.final_score(run.uuid)
            for row in results.get("epochs") or []:  # epochs whose metric events came too late to be read
                if int(row["epoch"]) not in frozen.intermediate_values and row.get("dev_score") is not None:
                    trial.report(float(row["dev_score"]), int(row["epoch"]))
            if score is None:
                trial.set_user_attr("error", error)
                study.tell(frozen.number, state=TrialState.FAIL)
                say(f"trial {frozen.number} failed: {error}")
            else:
                study.tell(frozen.number, score)
                say(f"trial {frozen.number}: {RESULT_METRIC} {score:.4f}{self._best(study)}")
        else:
            error = self.failure_line(run.uuid, run.status)
            trial.set_user_attr("error", error)
            study.tell(frozen.number, state=TrialState.FAIL)
            say(f"trial {frozen.number} ({run.uuid[:8]}) {run.status}: {error}")
        return True

    @staticmethod
    def _best(study: Any) -> str:
        try:
            return f"; best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            return ""

    # ------------------------------------------------------------ the loop
    def run(self) -> Dict[str, Any]:
        from optuna.trial import TrialState

        study = self.open_study()
        trials = study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        say(f"study {self.study_name} ({self.shown_storage()}): {len(trials) - len(running)} of "
            f"{self.options.n_trials} trials done, {len(running)} running; TPE with {self.options.startup_trials} "
            f"start-up trials, {self.options.concurrency} at a time; trials tagged {self.tag}")
        while True:
            trials = study.get_trials(deepcopy=False)
            running = [t for t in trials if t.state == TrialState.RUNNING]
            changed = False
            for frozen in running:
                changed |= self.follow(study, frozen)
            trials = study.get_trials(deepcopy=False)
            running = [t for t in trials if t.state == TrialState.RUNNING]
            free = min(self.options.concurrency - len(running), self.options.n_trials - len(trials))
            if free > 0:
                self.launch(study, free)
                changed = True
            elif not running:
                break
            if changed:
                self.snapshot_study()
            time.sleep(self.options.poll_seconds)
        return self.finish(study)

    def finish(self, study: Any) -> Dict[str, Any]:
        """The best params (outputs/best.json, the tuner's outputs) and the project's report."""
        from optuna.trial import TrialState

        from ..storage.fileio import write_json

        states: Dict[str, int] = {}
        for t in study.get_trials(deepcopy=False):
            states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
        summary: Dict[str, Any] = {"study": self.study_name, "states": states, "tuner": self.uuid}
        try:
            best = study.best_trial
            summary.update(best_value=best.value, best_trial=best.number, best_params=best.params,
                           best_run=best.user_attrs.get("run_uuid"))
        except ValueError:
            pass
        write_json(self.outputs / BEST_FILE, summary)
        self.snapshot_study()
        outputs = {"states": json.dumps(states)}
        if "best_value" in summary:
            outputs.update({RESULT_METRIC: summary["best_value"], "best_trial": summary["best_trial"],
                            "best_run": summary["best_run"] or "", "best_params": json.dumps(summary["best_params"])})
        with contextlib.suppress(Exception):
            self.client(self.uuid).log_outputs(async_req=False, **outputs)
            self.client(self.uuid).upload_artifact(filepath=str(self.outputs / BEST_FILE), path="outputs",
                                                   overwrite=True, show_progress=False)
        say(f"study {self.study_name}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
        if "best_value" in summary:
            say(f"best: trial {summary['best_trial']} = {summary['best_value']:.4f} "
                f"(run {summary['best_run']}), params {json.dumps(summary['best_params'])}")
        if self.options.report:
            self.report()
        if not (states.get("complete") or states.get("pruned")):
            causes = [t.user_attrs.get("error", "unknown error")
                      for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))]
            cause = max(set(causes), key=causes.count) if causes else "no trial ran"
            raise InputError(self.options.sweep_file, f"all {len(causes)} trials failed, "
                                                      f"{causes.count(cause)} with: {cause}")
        return summary

    def report(self) -> None:
        """``lmao report --polyaxon-project`` of the project into the tuner's outputs (and its log)."""
        out = self.outputs / "report"
        done = subprocess.run([sys.executable, "-m", "lmao", "report", "--polyaxon-project",
                               f"{self.owner}/{self.project}", "--out", str(out), "--no-readmes", "--no-plots"],
                              capture_output=True, text=True)
        print(done.stdout.strip(), flush=True)
        if done.returncode != 0:
            say(f"report failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
            return
        for table in sorted(out.glob("*.md")):
            print(table.read_text(encoding="utf-8"), flush=True)
        with contextlib.suppress(Exception):
            self.client(self.uuid).upload_artifacts_dir(dirpath=str(out), path="outputs/report", overwrite=True,
                                                        relative_to=str(out))


# ------------------------------------------------------------------------------------------ following


def trials_page_url(host: str, project: str, tuner_uuid: str, owner: str = OWNER) -> str:
    """The dashboard's runs list of one tuner's trials (each with its batch, score and main inputs): the
    UI reads the query and the columns from the page URL's ``search`` (see tracking.runs_page_url)."""
    import base64
    import urllib.parse

    columns = ["name", "status", "pipeline", *(c for c in RUNS_COLUMNS if c != "name")]
    spec = {"query": f"name:%-tpe-{tuner_uuid[:8]}-b%, kind:job", "columns": ",".join(columns),
            "sort": "created_at"}
    search = base64.b64encode(json.dumps(spec, separators=(",", ":")).encode()).decode()
    return f"{host.rstrip('/')}/ui/{owner}/{project}/runs?search={urllib.parse.quote(search, safe='')}"


def tuner_trials(project: str, tuner_uuid: str) -> List[Any]:
    """Every trial run the tuner launched (children of its batches), oldest first."""
    from polyaxon.client import RunClient

    client = RunClient(owner=OWNER, project=project)
    runs = client.list(query=f"name:%-tpe-{tuner_uuid[:8]}-b%", sort="created_at", limit=1000).results or []
    return [r for r in runs if r.pipeline]  # the batches' children (a batch itself has no pipeline)


def wait_tuner(project: str, tuner_uuid: str, timeout: float = 0, poll: float = 5.0) -> Dict[str, int]:
    """Block until the tuner is done, printing each trial's status changes; returns the trials' counts."""
    from polyaxon.client import RunClient
    from polyaxon.schemas import LifeCycle

    tuner = RunClient(owner=OWNER, project=project, run_uuid=tuner_uuid)
    seen: Dict[str, str] = {}
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        tuner.refresh_data()
        for run in tuner_trials(project, tuner_uuid):
            if seen.get(run.uuid) != run.status:
                seen[run.uuid] = run.status
                score = (run.outputs or {}).get(RESULT_METRIC)
                print(f"{_now()} {run.uuid[:8]} {run.name}: {run.status}"
                      + (f" ({RESULT_METRIC} {score:.4f})" if isinstance(score, (int, float)) else ""), flush=True)
        if LifeCycle.is_done(tuner.run_data.status):
            counts: Dict[str, int] = {}
            for status in seen.values():
                counts[status] = counts.get(status, 0) + 1
            outputs = tuner.run_data.outputs or {}
            best = outputs.get(RESULT_METRIC)
            print(f"tuner {tuner_uuid[:8]}: {tuner.run_data.status}; trials: "
                  + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                  + (f"; best {RESULT_METRIC} {best:.4f} with {outputs.get('best_params')}"
                     if isinstance(best, (int, float)) else ""), flush=True)
            return {"tuner_" + str(tuner.run_data.status): 1, **counts}
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"tuner {tuner_uuid} not done after {timeout:.0f} s")
        time.sleep(poll)


# ------------------------------------------------------------------------------------------ CLI


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m experiments.polyaxon.tuner run|wait ...``."""
    import typer

    from ..common.cli_base import new_app

    app = new_app(help="The TPE tuner that runs as a Polyaxon operation (polyaxonfile.tpe.yml).")

    @app.command("run")
    def run_command(
        outputs: Path = typer.Option(..., "--outputs", help="The tuner run's outputs folder"),
        n_trials: int = typer.Option(..., "--n-trials", help="Trials to finish (complete, pruned or failed)"),
        concurrency: int = typer.Option(4, "--concurrency", help="Trials running at once"),
        startup_trials: int = typer.Option(DEFAULT_STARTUP_TRIALS, "--startup-trials",
                                           help="Finished trials sampled at random before TPE models them"),
        seed: str = typer.Option("0", "--seed", help="TPE's seed ('' or None: none)"),
        storage: str = typer.Option("", "--storage", help="Optuna storage URL (default: SQLite, see the module)"),
        study: str = typer.Option("", "--study", help="Study name (default EXPERIMENT-tpe-TUNER_UUID)"),
        sweep_file: Path = typer.Option(..., "--sweep-file", help="sweep.yml: space, direction, pruner"),
        trial_file: Path = typer.Option(..., "--trial-file", help="Polyaxonfile whose component each trial runs"),
        param: Optional[List[str]] = typer.Option(None, "-P", help="A trial component input name=value (repeatable)"),
        poll: float = typer.Option(5.0, "--poll", help="Seconds between looks at the running trials"),
        api_patience: float = typer.Option(API_PATIENCE_SECONDS, "--api-patience",
                                           help="Seconds without an answer from the API before the tuner fails"),
        work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Where the SQLite study lives "
                                                "(default ~/.cache/lmao-tuner/TUNER_UUID)"),
    ) -> None:
        """Run the study: launch the trials as Polyaxon runs, prune, tell, report."""
        from ..common.errors import check_at_least
        from .boundary import check_polyaxon_version

        check_at_least("--n-trials", n_trials, 1)
        check_at_least("--concurrency", concurrency, 1)
        check_at_least("--startup-trials", startup_trials, 0)
        inputs: Dict[str, str] = {}
        for assign in param or []:
            name, eq, value = assign.partition("=")
            if not eq or not name:
                raise InputError("-P", f"expected name=value, got {assign!r}")
            inputs[name] = value
        seed_value = None if seed.strip() in ("", "None", "none") else int(seed)
        options = TunerOptions(sweep_file=sweep_file, trial_file=trial_file, outputs=outputs, n_trials=n_trials,
                               concurrency=concurrency, startup_trials=startup_trials, seed=seed_value,
                               storage=storage.strip(), study=study.strip(), inputs=inputs, upload_dir=Path.cwd(),
                               work_dir=work_dir, poll_seconds=poll)
        check_polyaxon_version()
        Tuner(options, api_patience=api_patience).run()

    @app.command("wait")
    def wait_command(
        tuner: str = typer.Argument(..., help="The tuner run's uuid (`launch` prints it)"),
        project: str = typer.Option(..., "--project", "-p", help="Polyaxon project of the sweep"),
        timeout: float = typer.Option(0, "--timeout", help="Give up after this many seconds (0: never)"),
    ) -> None:
        """Follow a TPE sweep until its tuner is done; exit 1 unless the tuner succeeded."""
        from polyaxon import settings

        print(f"trials: {trials_page_url(settings.CLIENT_CONFIG.host, project, tuner)}", flush=True)
        counts = wait_tuner(project, tuner, timeout=timeout)
        if not counts.get("tuner_succeeded"):
            raise typer.Exit(1)

    app(args=argv, prog_name="python -m experiments.polyaxon.tuner")


if __name__ == "__main__":
    main()
