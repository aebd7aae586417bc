"""A local process agent for Polyaxon's own server: `polyaxon run -u` sweeps on one machine, no Kubernetes.

Polyaxon's server (``haupt sandbox``, started by ``tools/dashboard.sh``) turns a matrix into child runs and
queues them as its scheduler would on a cluster; an *agent* then has to start them. On GKE that is the
Kubernetes agent of the Helm chart. Here it is :class:`ProcessAgent`: polyaxon's own sync agent loop
(``polyaxon._runner.agent.sync_agent.BaseSyncAgent``) and polyaxon's own local-process converter
(``polyaxon._local_process``, which compiles a run into its init steps and main container: the code
upload copied into ``<run>/uploads``, the env Polyaxon gives a managed run), with our own executor that
starts each step as a process. Pinned to polyaxon 2.18.0 (pyproject.toml, ``boundary.TESTED_POLYAXON``);
every private Polyaxon name used here (``polyaxon._runner.agent.sync_agent``, ``polyaxon._local_process``, ...)
and by the trial side of the same sweep (tracking.py) is listed, with its use, in ``boundary.PRIVATE``.

Why not polyaxon's own process agent (``polyaxon._local_process.executor.Executor``, 2.18.0): its
``create`` builds a ``docker run`` command line (``process_types.V1Container.get_cmd_args``) and fails with
``AttributeError: 'V1Container' object has no attribute 'image'``; its ``stop`` calls ``.poll()`` on the
list of processes it keeps per run (or on None);
its agent ignores what ``create`` returns, so it never reports a run's end.

What this executor does with a run the server hands out:

- runs the init steps, then the main container's ``command + args`` in its ``workingDir`` with the env
  Polyaxon compiled for it (over this process's env; ``HOME`` is the agent's own folder, never the
  user's, so a trial never finds the CLI's cached matrix run), each step in its own process group;
- reports ``running`` when the main step starts and ``succeeded`` / ``failed`` (with the output's last
  lines as the message) when it ends; every output line also goes to the run's logs (``plxlogs/`` in the
  artifacts store, what ``polyaxon ops logs`` and the UI's Logs tab read);
- stops a run (``polyaxon ops stop``, on the run or its matrix) by SIGTERM to its whole process group,
  SIGKILL after a grace period, and reports it ``stopped``;
- remembers every run it started in ``STATE_DIR/runs/<uuid>.json`` (process group, owner, project). An
  agent stopped with Ctrl-C / SIGTERM stops its running trials and reports them failed. A killed agent's
  trials die with it (``PR_SET_PDEATHSIG``) and the next agent started on the same ``STATE_DIR`` ends
  what is left of their process groups and reports those runs failed before it takes new work. Queued
  runs stay queued on the server, so a restarted agent continues the sweep; finished runs are never
  handed out again.

Cluster-only fields of the component (image, node selector, tolerations, resources) are not used here:
the trial runs in this machine's venv with all its cores.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..storage.fileio import write_json
from ..common.processes import group_alive, stop_group  # noqa: F401  (group_alive: used by tests)
from .boundary import TESTED_POLYAXON, check_polyaxon_version
from .retry import POST_ATTEMPTS, retry_405, status_of  # noqa: F401  (POST_ATTEMPTS: named in messages)

POLYAXON_VERSION = TESTED_POLYAXON
OWNER = "default"  # Polyaxon CE has a single organisation
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_LINES = 20
CLUSTER_ONLY = ("image", "environment.nodeSelector", "environment.tolerations", "container.resources")
PR_SET_PDEATHSIG = 1
# POST_ATTEMPTS (retry.py): how often a POST the sandbox answers with its spurious 405 is tried.
# Matrices whose next runs a tuner run suggests. haupt 2.18.0 (the server of `haupt sandbox` and of the
# Polyaxon 2.18.0 Helm chart alike) builds that tuner as an operation with only `hubRef: bayes-tuner`
# (polyaxon/_operations/tuner.py get_bo_tuner), resolves no hub reference in CE
# (haupt/orchestration/scheduler/resolver.py _collect_hub_refs returns {}), and compiling it fails
# (polyaxon/_polyaxonfile/specs/polyaxonfile.py compose_polyaxonfile: "Collect the Polyaxonfile reference
# before composing its local fields."): the matrix is marked failed at once with "Could not create a tuner".
TUNED_MATRICES = ("bayes", "hyperband", "tpe")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the thread that started it dies (a killed agent)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def set_agent_config(store_path: Path) -> None:
    """The agent config a local server implies: its artifacts store is the sandbox's folder.

    ``haupt sandbox --path DIR`` keeps every run's artifacts in ``DIR/<run uuid>/`` (haupt 2.18.0:
    ``SandboxConfig.set_default_artifacts_store``, a host-path connection named by
    ``get_artifacts_store_name()``); the init step that copies a child's upload reads it from there.
    """
    from polyaxon import settings
    from polyaxon._connections import V1Connection, V1ConnectionKind, V1HostPathConnection
    from polyaxon._env_vars.getters import get_artifacts_store_name
    from polyaxon._schemas.agent import AgentConfig

    store = str(Path(store_path).resolve())
    connection = V1Connection(name=get_artifacts_store_name(), kind=V1ConnectionKind.HOST_PATH,
                              schema_=V1HostPathConnection(host_path=store, mount_path=store))
    settings.set_agent_config(AgentConfig(artifacts_store=connection, connections=[]))


class LocalRun:
    """One child run's processes, log file and status reports."""

    def __init__(self, agent: "ProcessAgent", owner: str, project: str, run_uuid: str, tasks: List[Any]):
        from polyaxon._contexts import paths as ctx_paths

        self.agent, self.owner, self.project, self.uuid, self.tasks = agent, owner, project, run_uuid, tasks
        self.run_path = Path(ctx_paths.CONTEXT_MOUNT_ARTIFACTS_FORMAT.format(run_uuid))
        self.logs_dir = self.run_path / "plxlogs"
        self.proc: Optional[subprocess.Popen] = None
        self.stopping = threading.Event()
        self.tail: List[str] = []
        self.thread = threading.Thread(target=self._run, name=f"run-{run_uuid[:8]}", daemon=True)

    # ---------------------------------------------------------------- state
    @property
    def state_file(self) -> Path:
        return self.agent.state_dir / "runs" / f"{self.uuid}.json"

    def _save_state(self, pgid: Optional[int]) -> None:
        write_json(self.state_file, {"owner": self.owner, "project": self.project, "run_uuid": self.uuid,
                                     "pgid": pgid, "agent_pid": os.getpid()})

    # ---------------------------------------------------------------- status
    def report(self, status: str, message: Optional[str] = None, reason: str = "LocalProcessAgent") -> None:
        try:
            retry_405(lambda: self.agent.client.log_run_status(
                run_owner=self.owner, run_project=self.project, run_uuid=self.uuid, status=status, reason=reason,
                message=message))
        except Exception as err:  # noqa: BLE001 - any refusal: said once, the agent goes on
            code = status_of(err)
            self.agent.say(f"{self.uuid[:8]}: {status} not recorded by the server "
                           f"({f'HTTP {code}' if code else type(err).__name__})")

    # ---------------------------------------------------------------- logs
    def _log(self, container: str, line: str) -> None:
        from traceml.logging import V1Log, V1Logs

        line = line.rstrip("\n")
        self.tail = (self.tail + [line])[-LOG_TAIL_LINES:]
        entry = V1Log(timestamp=_now(), node="process-agent", pod=f"plx-operation-{self.uuid}",
                      container=container, value=line)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.logs_dir / "process-agent.jsonl", "a", encoding="utf-8") as f:
            f.write(V1Logs(logs=[entry]).get_jsonl_events())

    def _upload_logs(self) -> None:
        path = self.logs_dir / "process-agent.jsonl"
        if not path.exists():
            return
        try:
            from polyaxon.client import RunClient

            RunClient(owner=self.owner, project=self.project, run_uuid=self.uuid).upload_artifact(
                filepath=str(path), path="plxlogs", overwrite=True, show_progress=False)
        except Exception as err:
            self.agent.say(f"{self.uuid[:8]}: could not upload logs: {type(err).__name__}: {err}")

    # ---------------------------------------------------------------- processes
    def _env(self, task: Any) -> Dict[str, str]:
        env = dict(self.agent.base_env)
        for var in task.env or []:
            root = var.get_root()
            items = [root] if isinstance(root, tuple) else list(root.items())
            for name, value in items:
                if value is not None:
                    env[str(name)] = str(value)
        return env

    def _start_task(self, task: Any) -> subprocess.Popen:
        argv = [*(task.command or []), *(task.args or [])]
        cwd = task.working_dir or str(self.run_path)
        Path(cwd).mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(argv, cwd=cwd, env=self._env(task), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace",
                                start_new_session=True, preexec_fn=_die_with_parent)

    def start(self) -> None:
        self._save_state(None)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._run_tasks()
        except Exception as err:
            self._log("process-agent", f"agent error: {type(err).__name__}: {err}")
            self.report("failed", f"agent error: {type(err).__name__}: {err}")
        finally:
            self._upload_logs()
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
            self.agent.forget(self.uuid)

    def _run_tasks(self) -> None:
        last = len(self.tasks) - 1
        for index, task in enumerate(self.tasks):
            if self.stopping.is_set():
                break
            name = task.name or f"task-{index}"
            self.proc = self._start_task(task)
            self._save_state(self.proc.pid)
            if index == last:
                self.report("running", "Process started by the local agent")
                self.agent.say(f"{self.uuid[:8]} ({self.project}): running, process group {self.proc.pid}")
            for line in self.proc.stdout:
                self._log(name, line)
            code = self.proc.wait()
            if self.stopping.is_set():
                break
            if code != 0:
                tail = "\n".join(self.tail[-LOG_TAIL_LINES:])
                self.report("failed", f"{name} exited with code {code}:\n{tail}"[-3000:])
                self.agent.say(f"{self.uuid[:8]}: failed ({name} exit code {code})")
                return
        if self.stopping.is_set():
            self.report("stopped", "Stopped by the local agent")
            self.agent.say(f"{self.uuid[:8]}: stopped")
        else:
            self.report("succeeded", "Process exited with code 0")
            self.agent.say(f"{self.uuid[:8]}: succeeded")

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        self.stopping.set()
        proc = self.proc
        if proc is not None:
            stop_group(proc.pid, grace)
        self.thread.join(grace + 30)


def cleaner_paths(content: str) -> List[str]:
    """The folders a batch cleaner operation deletes: its ``polyaxon clean-artifacts ... -sp=PATH`` arguments
    (polyaxon 2.18.0 ``_auxiliaries/cleaner.py`` ``get_batch_cleaner_container``)."""
    import shlex

    operation = json.loads(content) if isinstance(content, str) else content
    container = (((operation or {}).get("component") or {}).get("run") or {}).get("container") or {}
    words: List[str] = []
    for arg in [*(container.get("command") or []), *(container.get("args") or [])]:
        words += shlex.split(str(arg))
    if "clean-artifacts" not in words:
        return []
    paths = []
    for index, word in enumerate(words):
        for flag in ("-sp", "--subpath", "--subpaths"):
            if word.startswith(flag + "="):
                paths.append(word.split("=", 1)[1])
            elif word == flag and index + 1 < len(words):
                paths.append(words[index + 1])
    return paths


def clean_artifacts(content: str, store: Optional[Path] = None, say=print) -> List[Path]:
    """Do what the batch cleaner job ``content`` asks on this machine: remove each deleted run's folder
    (``STORE/<run uuid>``) from the local artifacts store (default: the agent config's, set_agent_config).
    A path that is not a run folder directly in the store is refused, not removed; returns the removed ones."""
    import re
    import shutil

    if store is None:
        from polyaxon import settings

        store = Path(settings.AGENT_CONFIG.artifacts_store.store_path)
    root = Path(store).resolve()
    removed: List[Path] = []
    for raw in cleaner_paths(content):
        path = Path(raw) if Path(raw).is_absolute() else root / raw
        path = path.resolve()
        if path.parent != root or not re.fullmatch(r"[0-9a-f]{32}", path.name):
            say(f"cleaner: not removing {raw} (not a run folder of the artifacts store {root})")
            continue
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _agent_classes():
    """Built lazily: importing polyaxon's agent modules takes seconds."""
    from polyaxon._local_process.executor import Executor
    from polyaxon._runner.agent.sync_agent import BaseSyncAgent
    from polyaxon._sdk.schemas.v1_agent_state_response_agent_state import V1AgentStateResponseAgentState

    class ConvertOnlyExecutor(Executor):
        """Polyaxon's local-process executor for its converters only; processes are :class:`LocalRun`s."""

        def create(self, *args, **kwargs):  # pragma: no cover - the agent never calls it
            raise NotImplementedError("ProcessAgent starts runs itself")

        def list_ops(self, namespace: str = None):
            return []

    class ProcessAgent(BaseSyncAgent):
        EXECUTOR = ConvertOnlyExecutor

        def __init__(self, state_dir: Path, max_interval: Optional[int] = None):
            super().__init__(owner=OWNER, max_interval=max_interval)
            self.state_dir = Path(state_dir)
            self.runs: Dict[str, LocalRun] = {}
            self.lock = threading.Lock()
            self._cron_warned = False
            home = self.state_dir / "home"
            home.mkdir(parents=True, exist_ok=True)
            bin_dir = str(Path(sys.executable).parent)
            self.base_env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1",
                             "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}

        def say(self, message: str) -> None:
            print(f"{_now():%H:%M:%S} agent: {message}", flush=True)

        def forget(self, run_uuid: str) -> None:
            with self.lock:
                self.runs.pop(run_uuid, None)

        # ------------------------------------------------------------ restart
        def recover(self) -> int:
            """End what a previous (killed) agent left running and report those runs failed."""
            found = 0
            for path in sorted((self.state_dir / "runs").glob("*.json")):
                try:
                    info = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    path.unlink()
                    continue
                found += 1
                if info.get("pgid"):
                    stop_group(int(info["pgid"]), grace=2.0)
                if self._is_done(info):  # it ended (the trial reports its own end) before the agent died
                    path.unlink()
                    found -= 1
                    continue
                run = LocalRun(self, info["owner"], info["project"], info["run_uuid"], [])
                run.report("failed", "The local agent running this trial was killed; its processes were ended "
                                     "when the agent restarted")
                self.say(f"{info['run_uuid'][:8]} ({info['project']}): left by a killed agent, marked failed")
                path.unlink()
            return found

        @staticmethod
        def _is_done(info: Dict[str, Any]) -> bool:
            from polyaxon.client import RunClient
            from polyaxon.schemas import LifeCycle

            try:
                client = RunClient(owner=info["owner"], project=info["project"], run_uuid=info["run_uuid"])
                client.refresh_data()
                return LifeCycle.is_done(client.run_data.status)
            except Exception:
                return False

        # ------------------------------------------------------------ the loop's hooks
        def _check_status(self, agent_state):
            # polyaxon 2.18.0 sync_agent.process() turns a failed state poll (the sandbox now and then
            # answers 500 or 405) into an empty V1AgentStateResponse, which base_agent._check_status then
            # compares as `None < LiveState.LIVE`: a TypeError that ends the whole agent. An empty answer
            # says nothing about the agent's state, so wait for the next poll instead.
            if getattr(agent_state, "live_state", None) is None:
                return None
            return super()._check_status(agent_state)

        def process(self, pool):
            # The same failed poll's empty response has no `state`, and polyaxon 2.18.0 sync_agent.start()
            # reads `agent_state.state.full` right after _check_status: an AttributeError that ends the
            # agent and leaves the queue waiting forever (seen on a loaded machine). No state = no work.
            agent_state = super().process(pool)
            if agent_state is not None and agent_state.state is None:
                agent_state.state = V1AgentStateResponseAgentState()
            return agent_state

        def cron(self):
            try:
                return super().cron()
            except Exception as err:  # the sandbox sometimes answers 405 here; the state poll still works
                if not self._cron_warned:
                    self._cron_warned = True
                    self.say(f"cron: HTTP {getattr(err, 'status', type(err).__name__)} (ignored; said once)")
                return None

        def submit_run(self, run_data):
            from polyaxon._env_vars.getters import get_run_info

            owner, project, run_uuid = get_run_info(run_instance=run_data[0])
            tasks = self.prepare_run_resource(owner_name=owner, project_name=project, run_name=run_data[2],
                                              run_uuid=run_uuid, content=run_data[3])
            if not tasks:  # prepare_run_resource already reported the run failed
                return
            with self.lock:
                if run_uuid in self.runs:
                    return
                run = self.runs[run_uuid] = LocalRun(self, owner, project, run_uuid, list(tasks))
            self.say(f"{run_uuid[:8]} ({project}, {run_data[2]}): starting")
            run.start()

        def stop_run(self, run_data):
            from polyaxon._env_vars.getters import get_run_info

            owner, project, run_uuid = get_run_info(run_instance=run_data[0])
            with self.lock:
                run = self.runs.get(run_uuid)
            if run is None:  # not ours (or already over): nothing runs, so it is stopped
                LocalRun(self, owner, project, run_uuid, []).report("stopped", "No process for this run")
                return
            self.say(f"{run_uuid[:8]}: stopping")
            run.stop()

        def check_run(self, run_data):
            from polyaxon._env_vars.getters import get_run_info

            owner, project, run_uuid = get_run_info(run_instance=run_data[0])
            with self.lock:
                known = run_uuid in self.runs
            if not known:
                LocalRun(self, owner, project, run_uuid, []).report("failed", "No process for this run on the "
                                                                              "local agent")

        def apply_run(self, run_data):
            self.submit_run(run_data)

        def delete_run(self, run_data):
            """A deletion the server asks for (haupt 2.18.0 ``get_deleting_runs``). Two kinds come here:

            - a run deleted while it runs (no content): its process group ends, as on a stop (clean_run);
            - the server's batch cleaner job for deleted runs that are done (content: an operation whose
              container runs ``polyaxon clean-artifacts KIND -sp=STORE/UUID ...``): their folders are removed
              from the local artifacts store (:func:`clean_artifacts`).

            polyaxon 2.18.0's own ``BaseSyncAgent.delete_run`` compiles the cleaner job with the local-process
            converter, which refuses it ("Specification with run kind: cleaner is not supported"), logs that
            and deletes nothing (and had it compiled, ``ConvertOnlyExecutor.create`` raises NotImplementedError).
            """
            from polyaxon._env_vars.getters import get_run_info

            if run_data[3]:  # the batch cleaner operation
                removed = clean_artifacts(run_data[3], say=self.say)
                if removed:
                    self.say(f"cleaner: removed the artifacts of {len(removed)} deleted run(s)")
                return
            owner, project, run_uuid = get_run_info(run_instance=run_data[0])
            self.clean_run(run_uuid=run_uuid, run_kind=run_data[1], namespace=run_data[4])

        def clean_run(self, run_uuid: str, run_kind: str, namespace: str = None):
            """A run deleted from the UI/CLI while it runs: end its processes."""
            with self.lock:
                run = self.runs.get(run_uuid)
            if run is not None:
                self.say(f"{run_uuid[:8]}: deleted on the server, ending the trial")
                run.stop()

        def end(self, sleep: Optional[int] = None):
            super().end(sleep)
            with self.lock:
                running = list(self.runs.values())
            for run in running:
                self.say(f"{run.uuid[:8]}: agent stopping, ending the trial")
                run.stopping.set()
                if run.proc is not None:
                    stop_group(run.proc.pid, STOP_GRACE_SECONDS)
                run.thread.join(30)
                run.report("failed", "The local agent was stopped while this trial ran")

    return ProcessAgent


def run_agent(store: Path, state_dir: Path, max_interval: int = 4) -> None:
    """Start the agent loop (blocks; Ctrl-C / SIGTERM ends it and fails its running trials)."""
    check_polyaxon_version()
    from polyaxon import settings

    set_agent_config(store)
    agent_cls = _agent_classes()
    agent = agent_cls(state_dir=state_dir, max_interval=max_interval)
    recovered = agent.recover()
    agent.say(f"polyaxon {POLYAXON_VERSION} process agent on {settings.CLIENT_CONFIG.host}, artifacts store "
              f"{store}, state {state_dir}" + (f"; {recovered} run(s) of a killed agent marked failed"
                                               if recovered else ""))
    agent.say("cluster-only fields are ignored here: " + ", ".join(CLUSTER_ONLY))
    # polyaxon's loop stops on SIGINT only (clipped.utils.workers.sync_exit_context): SIGTERM does the same.
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    agent.start()


# ------------------------------------------------------------------------------------------ launching


def component_inputs(polyaxonfile: Path) -> Dict[str, Dict[str, Any]]:
    doc = yaml_load(polyaxonfile)
    return {i["name"]: i for i in (doc.get("component") or {}).get("inputs") or []}


def yaml_load(path: Path) -> Dict[str, Any]:
    import yaml

    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def check_params(polyaxonfile: Path, assigns: List[str]) -> Dict[str, str]:
    """``-P name=value`` against the component's inputs: known name, value of the input's type."""
    from ..common.errors import InputError

    inputs = component_inputs(polyaxonfile)
    casts = {"int": int, "float": float, "str": str, "bool": None}
    out: Dict[str, str] = {}
    for assign in assigns:
        name, eq, value = assign.partition("=")
        if not eq or not name:
            raise InputError("-P", f"expected name=value, got {assign!r}")
        if name not in inputs:
            raise InputError(polyaxonfile, f"-P {name}: not an input of the component "
                                           f"(inputs: {', '.join(sorted(inputs))})")
        kind = inputs[name].get("type", "str")
        cast = casts.get(kind)
        try:
            if kind == "bool":
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
            elif cast is not None:
                cast(value)
                if kind == "int" and not value.strip().lstrip("-").isdigit():
                    raise ValueError
        except ValueError:
            raise InputError("-P", f"{name}={value}: expected {kind} (the component input's type)") from None
        out[name] = value
    return out


def check_corpus(corpus_dir: str) -> None:
    """A local corpus must be a prepared one; gs:// corpora are checked by the trial when it downloads."""
    from ..data.docbins import require_prepared_corpus
    from ..common.errors import InputError

    if corpus_dir.startswith("gs://"):
        return
    path = Path(corpus_dir)
    if not path.is_absolute():
        raise InputError("-P", f"corpus_dir={corpus_dir}: give an absolute path (a trial runs in its own "
                               "copy of the code, not in this folder)")
    require_prepared_corpus(path, "run `lmao data ...` first, or `make data-imdb-small`")


def check_server(host: str) -> None:
    from ..common.errors import InputError
    from .tracking import api_reachable

    if not api_reachable(host):
        raise InputError(host, "Polyaxon API not reachable (start it with `make dashboard` or "
                               "`make sweep-polyaxon`)")


def launch(polyaxonfile: Path, *, project: str, host: str, out_dir: Path, assigns: List[str],
           runs: Optional[int] = None, iterations: Optional[int] = None, concurrency: Optional[int] = None,
           polyaxon_cli: Optional[str] = None, repo: Optional[Path] = None) -> str:
    """Check everything first, then ``polyaxon run -u`` the (count-adjusted) polyaxonfile from the repo
    root; returns the matrix run's uuid. Bad input raises :class:`InputError` before anything is written
    or created on the server."""
    from ..common.errors import InputError
    from ..storage.fileio import write_text
    from .polyaxonfile import local_variant

    repo = Path(repo or Path(__file__).resolve().parents[2])
    polyaxonfile = Path(polyaxonfile)
    if not polyaxonfile.exists():
        raise InputError(polyaxonfile, "polyaxonfile not found")
    kind = (yaml_load(polyaxonfile).get("matrix") or {}).get("kind")
    if kind in TUNED_MATRICES:
        raise InputError(polyaxonfile, f"Polyaxon CE {POLYAXON_VERSION} cannot run a {kind} matrix: its scheduler "
                                       f"fails to create the tuner run (see TUNED_MATRICES); use a random matrix, or "
                                       f"{polyaxonfile.parent.name}/polyaxonfile.tpe.yml (our TPE tuner) for a "
                                       f"model-based search")
    inputs = component_inputs(polyaxonfile)
    if "matrix" not in yaml_load(polyaxonfile) and "n_trials" in inputs:
        # A tuner run (polyaxonfile.tpe.yml, experiments.polyaxon.tuner): its counts are inputs, not matrix keys.
        counts = []
        for name, key, value in (("--runs", "n_trials", runs), ("--concurrency", "concurrency", concurrency)):
            if value is not None and value < 1:
                raise InputError(name, f"expected a positive whole number, got {value!r}")
            if value is not None:
                counts.append(f"{key}={value}")
        assigns, runs, concurrency = [*counts, *assigns], None, None
    params = check_params(polyaxonfile, assigns)
    defaults = {name: spec.get("value") for name, spec in inputs.items()}
    text = local_variant(polyaxonfile, runs=runs, iterations=iterations, concurrency=concurrency)
    check_corpus(str(params.get("corpus_dir", defaults.get("corpus_dir", ""))))
    check_server(host)
    variant = Path(out_dir) / f"{polyaxonfile.parent.name}.{polyaxonfile.stem.split('.')[-1]}.local.yml"
    write_text(variant, text)
    cli = polyaxon_cli or str(Path(sys.executable).parent / "polyaxon")
    env = {**os.environ, "POLYAXON_HOST": host}
    made = subprocess.run([cli, "project", "create", "--name", project], cwd=repo, env=env,
                          capture_output=True, text=True)
    if made.returncode != 0 and "exist" not in (made.stdout + made.stderr).lower():
        raise InputError(host, f"could not create project {project}: {(made.stdout + made.stderr).strip()[-300:]}")
    argv = [cli, "run", "-u", "-f", str(variant), "-p", project]
    for name, value in params.items():
        argv += ["-P", f"{name}={value}"]

    def refused_405(done: subprocess.CompletedProcess) -> bool:
        # The server's spurious 405 (retry.py) before any run was created: try again.
        output = done.stdout + done.stderr
        return done.returncode != 0 and "A new run was created" not in output and "Status: 405" in output

    done = retry_405(lambda: subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True),
                     retry_result=refused_405)
    output = done.stdout + done.stderr
    print(output.strip())
    import re

    found = re.search(r"@([0-9a-f]{32})", output)
    if found and done.returncode != 0 and "Could not approve run" in output and "Status: 405" in output:
        # The run and its upload exist; only the final approve POST met the spurious 405: approve again.
        if approve(env["POLYAXON_HOST"], project, found.group(1)):
            print(f"approved {found.group(1)} on a later attempt")
            return found.group(1)
    if done.returncode != 0 or not found:
        raise InputError(variant, f"`polyaxon run` failed (exit {done.returncode})")
    return found.group(1)


def approve(host: str, project: str, run_uuid: str) -> bool:
    """Approve a created run (what `polyaxon run -u` does after its upload), retrying the sandbox's 405."""
    from polyaxon import settings
    from polyaxon.client import RunClient

    settings.CLIENT_CONFIG.host = host
    try:  # any error is retried: polyaxon's client_handler wraps the ApiException (and its status)
        retry_405(RunClient(owner=OWNER, project=project, run_uuid=run_uuid).approve, retry_error=lambda err: True)
        return True
    except Exception:  # noqa: BLE001
        return False


def sweep_children(project: str, matrix_uuid: str) -> List[Any]:
    """The matrix's child runs (trials; a bayes matrix's tuner runs too), oldest first."""
    from polyaxon.client import RunClient

    client = RunClient(owner=OWNER, project=project)
    found: List[Any] = []
    offset = 0
    while True:
        page = client.list(query=f"pipeline:{matrix_uuid}", sort="created_at", limit=100, offset=offset)
        results = list(page.results or [])
        found += results
        if len(results) < 100:
            return found
        offset += 100


def wait_sweep(project: str, matrix_uuid: str, timeout: float = 0, poll: float = 5.0) -> Dict[str, int]:
    """Block until the matrix is done, printing each child's status changes; returns status counts."""
    from polyaxon.client import RunClient
    from polyaxon.schemas import LifeCycle

    matrix = RunClient(owner=OWNER, project=project, run_uuid=matrix_uuid)
    seen: Dict[str, str] = {}
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        matrix.refresh_data()
        for run in sweep_children(project, matrix_uuid):
            if seen.get(run.uuid) != run.status:
                seen[run.uuid] = run.status
                score = (run.outputs or {}).get("best_dev_score")
                print(f"{_now():%H:%M:%S} {run.uuid[:8]} {run.name}: {run.status}"
                      + (f" (best_dev_score {score:.4f})" if isinstance(score, (int, float)) else ""), flush=True)
        if LifeCycle.is_done(matrix.run_data.status):
            counts: Dict[str, int] = {}
            for status in seen.values():
                counts[status] = counts.get(status, 0) + 1
            print(f"matrix {matrix_uuid[:8]}: {matrix.run_data.status}; children: "
                  + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), flush=True)
            return counts
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"matrix {matrix_uuid} not done after {timeout:.0f} s")
        time.sleep(poll)


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m experiments.polyaxon.agent agent|launch ...`` (tools/polyaxon_sweep.sh runs both)."""
    import typer

    from ..common.cli_base import new_app

    app = new_app(help="The local Polyaxon process agent and sweep launcher (make sweep-polyaxon).")

    @app.command("agent")
    def agent_command(
        store: Path = typer.Option(..., "--store", help="The server's artifacts folder (haupt sandbox --path)"),
        state: Path = typer.Option(..., "--state", help="The agent's own folder (runs it started, HOME of trials)"),
        max_interval: int = typer.Option(4, "--max-interval", help="Longest wait between polls: 2^(N-3) s"),
    ) -> None:
        """Run the server's queued runs as local processes until Ctrl-C / SIGTERM."""
        from ..common.errors import InputError
        from .tracking import configured_host

        host = configured_host()
        if not host:
            raise InputError("POLYAXON_HOST", "not set: the agent needs the server's URL")
        check_server(host)
        if not os.environ.get("POLYAXON_CONTEXT_ROOT"):
            raise InputError("POLYAXON_CONTEXT_ROOT", "not set: use the server's value (tools/polyaxon_sweep.sh)")
        run_agent(store, state, max_interval=max_interval)

    @app.command("launch")
    def launch_command(
        polyaxonfile: Path = typer.Argument(..., help="A committed polyaxonfile, e.g. lmao-imdb-1k/polyaxonfile.random.yml"),
        project: str = typer.Option(..., "--project", "-p", help="Polyaxon project of the sweep"),
        out_dir: Path = typer.Option(..., "--out-dir", help="Where the count-adjusted polyaxonfile is written"),
        param: Optional[List[str]] = typer.Option(None, "-P", help="Component input name=value (repeatable)"),
        runs: Optional[int] = typer.Option(None, "--runs", help="random: numRuns; bayes: numInitialRuns"),
        iterations: Optional[int] = typer.Option(None, "--iterations", help="bayes: maxIterations"),
        concurrency: Optional[int] = typer.Option(None, "--concurrency", help="children at once"),
    ) -> None:
        """Check the input, then `polyaxon run -u` the polyaxonfile (with these counts) on the server."""
        from ..common.errors import InputError
        from .tracking import configured_host

        host = configured_host()
        if not host:
            raise InputError("POLYAXON_HOST", "not set: the server's URL")
        uuid = launch(polyaxonfile, project=project, host=host, out_dir=out_dir, assigns=list(param or []),
                      runs=runs, iterations=iterations, concurrency=concurrency)
        print(f"MATRIX {uuid}")

    @app.command("wait")
    def wait_command(
        matrix: str = typer.Argument(..., help="The matrix run's uuid (`launch` prints it)"),
        project: str = typer.Option(..., "--project", "-p", help="Polyaxon project of the sweep"),
        timeout: float = typer.Option(0, "--timeout", help="Give up after this many seconds (0: never)"),
    ) -> None:
        """Follow a sweep until its matrix is done; exit 1 when no child succeeded."""
        counts = wait_sweep(project, matrix, timeout=timeout)
        if not counts.get("succeeded"):
            raise typer.Exit(1)

    app(args=argv, prog_name="python -m experiments.polyaxon.agent")


if __name__ == "__main__":
    main()
