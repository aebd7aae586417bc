"""Local sweeps: an Optuna study over an experiment's ``sweep.yml``, one ``lmao trial`` process per trial.

- Storage: SQLite under the runs folder by default (``RUNS/optuna.sqlite3``); a PostgreSQL URL lets many
  workers on many machines share one study. Each trial writes ``RUNS/<study>/trial-XXXX/`` and records it
  as the Optuna user attr ``result_dir`` (the report reads it).
- Each trial is its own process (a crash or OOM fails that trial, not the sweep); it dies with its worker
  (parent-death signal) so a killed worker leaves no orphan.
- Pruning: the worker polls the trial's ``results.json`` (rewritten after every epoch), reports each
  epoch's ``dev_score`` as an intermediate value, and stops a hopeless trial (SIGTERM, then SIGKILL);
  its result file keeps the epochs and says ``pruned``.
- Resume: the same command continues the study until ``n_trials`` trials finished (complete or pruned).
  A worker killed mid-trial stops heart-beating; once its trial is stale the next worker marks it failed
  (study and result file) and re-queues its params; a finished trial is never run again.
"""

from __future__ import annotations

import collections
import contextlib
import os
import statistics
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from ..common.errors import InputError
from ..common.processes import die_with_parent, stop_process  # noqa: F401  (stop_process: also imported from here)
from ..common.progress import is_terminal, log
from ..training import results as result_file
from ..training.params import coerce_all
from .search_space import SearchSpace, check_search, load_search_space
from .trial_command import trial_args

STORAGE_FILE = "optuna.sqlite3"
TRIAL_LOG = "trial.log"


def last_error_line(log_file: Path) -> Optional[str]:
    """The one-line ``error: ...`` a trial printed for bad input before it wrote any result file."""
    try:
        lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return next((line[len("error: "):] for line in reversed(lines) if line.startswith("error: ")), None)


class TrialFailed(RuntimeError):
    """The trial process failed (its result file says why); the sweep goes on."""


class SweepFailed(InputError):
    """Every trial of a sweep failed: one error line naming the most common cause."""


@dataclass
class SweepOptions:
    experiment_dir: Path
    search: str = "random"
    n_trials: Optional[int] = None
    workers: int = 1
    storage: Optional[str] = None
    study: Optional[str] = None
    fixed: Dict[str, Any] = field(default_factory=dict)
    runs: Path = Path("runs")
    cache: Optional[str] = None
    seed: Optional[int] = None
    startup_trials: int = 5
    heartbeat: int = 10
    poll_seconds: float = 0.5
    kill_grace: float = 10.0
    trial_args: List[str] = field(default_factory=list)
    # Called as on_pruned(result_dir, "pruned", message) once a pruned trial's process is stopped: the
    # `lmao sweep` command passes experiments.polyaxon.mark_stopped (its Polyaxon run is marked stopped).
    on_pruned: Optional[Callable[[Path, str, str], Any]] = None


def trial_dir(study_dir: Path, number: int) -> Path:
    return study_dir / f"trial-{number:04d}"


def default_storage(runs: Path) -> str:
    return f"sqlite:///{(Path(runs) / STORAGE_FILE).resolve()}"


def make_storage(url: str, heartbeat: int, on_stale) -> Any:
    """An RDB storage with heartbeats: a silent worker's trial is failed and handed to ``on_stale``."""
    import optuna

    engine_kwargs: Dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 120}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(
        url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
        heartbeat_stale_trial_callback=on_stale,
    )


def make_sampler(search: str, seed: Optional[int], startup_trials: int = 5) -> Any:
    """The Optuna sampler for ``--search`` (see ``search_space.SEARCHES`` for the vocabulary).
    ``startup_trials``: TPE samples at random until that many trials finished (``n_startup_trials``)."""
    import optuna

    check_search(search, "optuna")
    if search == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
    return optuna.samplers.RandomSampler(seed=seed)


def stale_callback(study_dir: Path):
    """Mark a dead worker's trial failed in its result file, then re-queue its params (Optuna's retry)."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    retry = RetryHeartbeatStaleTrialCallback(max_retry=3)

    def on_stale(study: Any, frozen: Any) -> None:
        result_dir = Path(frozen.user_attrs.get("result_dir") or trial_dir(study_dir, frozen.number))
        results = result_file.read(result_dir)
        # The folder may be on the dead worker's machine: mark it only where this worker can see it.
        if result_dir.is_dir() and (results is None or results.get("status") == "running"):
            result_file.mark(result_dir, "failed", "worker lost (no heartbeat); params re-queued as a new trial")
        log(f"sweep: trial {frozen.number} lost its worker; re-queued")
        retry(study, frozen)

    return on_stale


class Sweep:
    """One worker of a study: runs trials until the study has its budget of finished trials."""

    def __init__(self, options: SweepOptions):
        self.options = options
        self.experiment_dir = Path(options.experiment_dir)
        self.space: SearchSpace = load_search_space(self.experiment_dir)
        self.fixed = self._fixed_params(options.fixed)
        self.n_trials = options.n_trials or self.space.n_trials
        self.study_name = options.study or f"{self.space.experiment}-{options.search}"
        self.runs = Path(options.runs)
        self.study_dir = self.runs / self.study_name
        # "none": every trial pretrains for itself, in its own folder (what the cache saves, measured).
        self.cache = options.cache or str((self.runs / "cache").resolve())
        self.stop_event = threading.Event()
        self.bar: Any = None
        self.lock = threading.Lock()

    def _fixed_params(self, overrides: Mapping[str, Any]) -> Dict[str, Any]:
        return {**self.space.fixed, **coerce_all(overrides, "-P")}

    # --- study -----------------------------------------------------------------------------------
    def open_study(self) -> Any:
        import optuna

        # ERROR: a failed trial is one line from on_trial_end, not Optuna's warning with a traceback
        # (the trial's own traceback is in its log file).
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.runs.mkdir(parents=True, exist_ok=True)
        self.study_dir.mkdir(parents=True, exist_ok=True)
        url = self.options.storage or default_storage(self.runs)
        storage = make_storage(url, self.options.heartbeat, stale_callback(self.study_dir))
        seed = self.options.seed
        study = optuna.create_study(
            study_name=self.study_name, storage=storage, direction=self.space.direction,
            sampler=make_sampler(self.options.search, seed, self.options.startup_trials),
            pruner=self.space.pruner.build(),
            load_if_exists=True,
        )
        self._check_or_record(study)
        return study

    def _check_or_record(self, study: Any) -> None:
        """A study keeps one search space and one search method; resuming with others is an error."""
        fingerprint = self.space.fingerprint(self.fixed)
        attrs = study.user_attrs
        if "space_fingerprint" not in attrs:
            for key, value in {
                "experiment": self.space.experiment, "experiment_dir": str(self.experiment_dir.resolve()),
                "search": self.options.search, "space_fingerprint": fingerprint, "fixed": self.fixed,
                "metric": self.space.metric, "n_trials": self.n_trials, "runs": str(self.runs.resolve()),
            }.items():
                study.set_user_attr(key, value)
            return
        if attrs["space_fingerprint"] != fingerprint:
            raise InputError(self.space.path, f"study {self.study_name!r} was run with another search space "
                             "or other fixed -P params; use a new --study name")
        if attrs.get("search") != self.options.search:
            raise InputError("--search", f"study {self.study_name!r} uses --search {attrs.get('search')}, "
                             f"not {self.options.search}; use a new --study name")

    @staticmethod
    def finished_count(study: Any) -> int:
        from optuna.trial import TrialState

        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))

    # --- one trial -------------------------------------------------------------------------------
    def objective(self, trial: Any) -> float:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        result_dir = trial_dir(self.study_dir, trial.number)
        trial.set_user_attr("result_dir", str(result_dir.resolve()))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        params = self.space.sample(trial, self.fixed)
        frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
        retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
        if retried is not None:
            adopted = self._adopt_finished(trial, retried)
            if adopted is not None:
                return adopted
        return self.run_trial_process(trial, params, result_dir)

    def _adopt_finished(self, trial: Any, original: int) -> Optional[float]:
        """A retried trial whose original finished before its worker died: reuse it, do not rerun it."""
        original_dir = trial_dir(self.study_dir, original)
        results = result_file.read(original_dir)
        if not results or results.get("status") != "completed" or results.get("best_dev_score") is None:
            return None
        trial.set_user_attr("result_dir", str(original_dir.resolve()))
        trial.set_user_attr("adopted_from_trial", original)
        for row in results.get("epochs", []):
            trial.report(float(row["dev_score"]), step=int(row["epoch"]))
        return float(results["best_dev_score"])

    def trial_command(self, params: Mapping[str, Any], result_dir: Path, trial_number: int) -> List[str]:
        # Provenance in results.json itself, so a report from the files alone knows the study and method.
        meta = {"study": self.study_name, "search": self.options.search, "trial_number": trial_number}
        return [*die_with_parent(), sys.executable, "-m", "experiments",
                *trial_args(self.experiment_dir, result_dir, params=params, cache=self.trial_cache(result_dir),
                            meta=meta, extra=self.options.trial_args)]

    def trial_cache(self, result_dir: Path) -> str:
        return str(result_dir / "cache") if self.cache.lower() == "none" else self.cache

    def run_trial_process(self, trial: Any, params: Mapping[str, Any], result_dir: Path) -> float:
        import optuna

        result_dir.mkdir(parents=True, exist_ok=True)
        command = self.trial_command(params, result_dir, trial.number)
        with open(result_dir / TRIAL_LOG, "ab") as out:
            header = f"# lmao sweep: study {self.study_name} trial {trial.number} started by " \
                     f"{socket.gethostname()}:{os.getpid()} at {result_file.now()}\n# {' '.join(command)}\n"
            out.write(header.encode())
            out.flush()
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "LMAO_SWEEP_STUDY": self.study_name})
        try:
            pruned_at = self._watch(trial, proc, result_dir)
        except KeyboardInterrupt:
            stop_process(proc, self.options.kill_grace)
            result_file.mark(result_dir, "failed", "sweep interrupted; params re-queued")
            trial.study.enqueue_trial(trial.params)
            raise
        finally:
            if proc.poll() is None:
                stop_process(proc, self.options.kill_grace)
        if pruned_at is not None:
            prune = self.prune_reason(trial, pruned_at)
            message = prune["reason"]
            result_file.mark(result_dir, "pruned", None, prune=prune)
            if self.options.on_pruned is not None:
                self.options.on_pruned(result_dir, "pruned", message)
            raise optuna.TrialPruned(message)
        return self._outcome(trial, proc.returncode, result_dir)

    def prune_reason(self, trial: Any, epoch: int) -> Dict[str, Any]:
        """Why a trial was stopped, for its results.json: its score against the other trials at that epoch."""
        from optuna.trial import TrialState

        frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
        score = frozen.intermediate_values.get(epoch)
        others = [t.intermediate_values[epoch] for t in trial.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)) if epoch in t.intermediate_values]
        pruner = self.space.pruner
        median = float(statistics.median(others)) if others else None
        reason = f"pruned by the {pruner.kind} pruner after epoch {epoch}: dev {self.space.metric} {score:.4f}"
        if median is not None:
            reason += f", median of {len(others)} earlier trials at that epoch {median:.4f}"
        return {"epoch": epoch, "score": score, "median_of_earlier": median, "earlier_trials": len(others),
                "pruner": pruner.kind, "settings": dict(pruner.settings), "reason": reason}

    def _watch(self, trial: Any, proc: subprocess.Popen, result_dir: Path) -> Optional[int]:
        """Report new epochs until the process ends; return the epoch at which to prune, if any."""
        reported = 0
        while True:
            done = proc.poll() is not None
            results = result_file.read(result_dir) or {}
            for row in results.get("epochs", [])[reported:]:
                reported += 1
                trial.report(float(row["dev_score"]), step=int(row["epoch"]))
                if not done and trial.should_prune():
                    stop_process(proc, self.options.kill_grace)
                    return int(row["epoch"])
            if done:
                return None
            if self.stop_event.is_set():
                raise KeyboardInterrupt
            time.sleep(self.options.poll_seconds)

    def _outcome(self, trial: Any, returncode: int, result_dir: Path) -> float:
        results = result_file.read(result_dir) or {}
        if returncode == 0 and results.get("status") == "completed" and results.get("best_dev_score") is not None:
            return float(results["best_dev_score"])
        error = results.get("error") or last_error_line(result_dir / TRIAL_LOG) or \
            f"trial process exited with code {returncode} (see {TRIAL_LOG})"
        if results.get("status") != "failed":
            result_file.mark(result_dir, "failed", error)
        trial.set_user_attr("error", error.splitlines()[0] if error else error)
        raise TrialFailed(f"{result_dir}: {error}")

    # --- the loop --------------------------------------------------------------------------------
    def on_trial_end(self, study: Any, frozen: Any) -> None:
        value = "" if frozen.value is None else f" {frozen.value:.4f}"
        if frozen.user_attrs.get("error"):
            value += f": {frozen.user_attrs['error']}"
        try:
            best = f"; best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = ""
        with self.lock:
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix_str(best.lstrip("; "))
            else:
                log(f"sweep {self.study_name}: trial {frozen.number} {frozen.state.name.lower()}{value}{best}")

    def run(self) -> Dict[str, Any]:
        import optuna
        from optuna.study import MaxTrialsCallback
        from optuna.trial import TrialState

        study = self.open_study()
        done = self.finished_count(study)
        remaining = self.n_trials - done
        log(f"sweep {self.study_name}: {done}/{self.n_trials} trials finished; results in {self.study_dir}")
        if remaining > 0:
            # Stop once finished + in-flight trials (any worker) reach the budget: no overshoot.
            budget = MaxTrialsCallback(self.n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                              TrialState.RUNNING))
            self._optimize(study, remaining, [budget, self.on_trial_end])
        summary = self.summary(study)
        if summary["states"] and not (summary["states"].get("complete") or summary["states"].get("pruned")):
            causes = collections.Counter(t.user_attrs.get("error", "unknown error")
                                         for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
            cause, count = causes.most_common(1)[0]
            others = f" ({len(causes) - 1} other errors: see each trial's {TRIAL_LOG})" if len(causes) > 1 else ""
            raise SweepFailed(self.study_dir, f"all {sum(causes.values())} trials failed, {count} with: {cause}{others}")
        return summary

    def _optimize(self, study: Any, remaining: int, callbacks: List[Any]) -> None:
        from tqdm import tqdm

        previous = signal.getsignal(signal.SIGTERM)
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            signal.signal(signal.SIGTERM, self._on_sigterm)
        if is_terminal():
            self.bar = tqdm(total=self.n_trials, initial=self.n_trials - remaining, desc=self.study_name,
                            unit="trial")
        try:
            study.optimize(self.objective, n_trials=remaining, n_jobs=max(1, self.options.workers),
                           catch=(TrialFailed,), callbacks=callbacks)
        except KeyboardInterrupt:
            self.stop_event.set()
            raise
        finally:
            if self.bar is not None:
                self.bar.close()
            if in_main:
                signal.signal(signal.SIGTERM, previous)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stop_event.set()
        raise KeyboardInterrupt

    def summary(self, study: Any) -> Dict[str, Any]:
        states: Dict[str, int] = {}
        for t in study.get_trials(deepcopy=False):
            states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
        out: Dict[str, Any] = {"study": self.study_name, "states": states, "runs": str(self.study_dir)}
        with contextlib.suppress(ValueError):
            best = study.best_trial
            out.update(best_value=best.value, best_trial=best.number, best_params=best.params,
                       best_result_dir=best.user_attrs.get("result_dir"))
        return out


def run_sweep(options: SweepOptions) -> Dict[str, Any]:
    """Run (or continue) a sweep; returns a summary with the best trial."""
    check_search(options.search, "optuna")
    if options.workers < 1:
        raise InputError("--workers", f"expected at least 1, got {options.workers}")
    if options.startup_trials < 0:
        raise InputError("--startup-trials", f"expected 0 or more, got {options.startup_trials}")
    return Sweep(options).run()
