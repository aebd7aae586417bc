"""A campaign: a fixed design of trials (settings x seeds) run to completion, resumable in pieces.

The design is a YAML file beside the experiment (e.g. ``lmao-imdb-1k/campaign.yml``)::

    experiment: .                 # the experiment folder, relative to this file
    runs: analysis/imdb-1k-campaign   # where each trial's folder goes (relative to the repo root)
    seeds: [0, 1, 2]
    params: {corpus_dir: corpus/imdb-1k}          # every trial (``-P``)
    overrides: {training.optimizer.use_averages: true}   # every trial (``--section.key``)
    settings:
      - name: baseline
        params: {pretrain_epochs: 0}
      - name: vectors-1
        params: {pretrain_epochs: 1, objective: vectors}

Each (setting, seed) trial is ``RUNS/<setting>/seed-<n>/``. A trial whose ``results.json`` says
``completed`` is skipped, so the campaign can stop at any point (a session's time limit, a preempted
machine) and be continued later, or split across machines (or processes) by ``--only`` and ``--seed``. A trial that failed or was
interrupted is run again from scratch (``lmao trial`` empties an unfinished trial folder first).

The summary of a design's finished trials (``lmao campaign --summary``) is :mod:`analysis.campaign`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from ..common.processes import die_with_parent
from ..common.errors import InputError, read_user_yaml
from ..common.progress import log
from ..training.params import coerce
from ..training.results import read
from .trial_command import trial_args


@dataclass(frozen=True)
class Setting:
    name: str
    params: Dict[str, Any] = field(default_factory=dict)
    overrides: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Design:
    path: Path
    experiment_dir: Path
    runs: Path
    seeds: List[int]
    settings: List[Setting]

    def trials(self, only: Sequence[str] = (), seeds: Sequence[int] = ()) -> Iterator["PlannedTrial"]:
        """Seed-major order: every setting gets seed 0 before any gets seed 1, so a partial
        campaign already compares all settings. ``only``/``seeds`` select a piece of the design."""
        for seed in self.seeds:
            if seeds and seed not in seeds:
                continue
            for setting in self.settings:
                if not only or setting.name in only:
                    yield PlannedTrial(setting, seed, self.runs / setting.name / f"seed-{seed}")


@dataclass(frozen=True)
class PlannedTrial:
    setting: Setting
    seed: int
    out: Path

    def is_complete(self) -> bool:
        data = read(self.out)
        return isinstance(data, dict) and data.get("status") == "completed"


def _mapping(path: Path, data: Any, key: str) -> Dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise InputError(path, f"'{key}' must be a mapping")
    return dict(value)


def load_design(path: Path, repo_root: Optional[Path] = None) -> Design:
    """Read and check a design file; every param name and value is checked before anything runs."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "campaign design not found")
    data = read_user_yaml(path) or {}
    root = Path(repo_root) if repo_root else Path.cwd()
    experiment_dir = (path.parent / str(data.get("experiment", "."))).resolve()
    if not (experiment_dir / "defaults.yml").exists():
        raise InputError(path, f"'experiment': {experiment_dir} has no defaults.yml")
    if not data.get("runs"):
        raise InputError(path, "'runs' (the folder the trials go to) is required")
    seeds = data.get("seeds") or [0]
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise InputError(path, f"'seeds' must be a list of integers, got {seeds!r}")
    common_params, common_overrides = _mapping(path, data, "params"), _mapping(path, data, "overrides")
    settings = []
    for i, item in enumerate(data.get("settings") or []):
        if not isinstance(item, dict) or not item.get("name"):
            raise InputError(path, f"settings[{i}] needs a 'name'")
        params = {**common_params, **_mapping(path, item, "params")}
        for name, value in params.items():
            try:
                coerce(name, value)
            except ValueError as err:
                raise InputError(path, f"setting {item['name']!r}: {err}") from None
        if "seed" in params:
            raise InputError(path, f"setting {item['name']!r}: seeds come from 'seeds', not params")
        settings.append(Setting(str(item["name"]), params, {**common_overrides, **_mapping(path, item, "overrides")}))
    if not settings:
        raise InputError(path, "no 'settings' to run")
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise InputError(path, f"setting names must be unique: {names}")
    return Design(path, experiment_dir, root / str(data["runs"]), seeds, settings)


def check_same_trial(design: Design, trial: PlannedTrial) -> None:
    """A finished trial counts only if it ran what the design asks for now: the same resolved params
    (design + experiment defaults, which may have changed since) and config overrides. Otherwise a
    resumed campaign would silently mix two recipes in one table."""
    from ..training.config import load_experiment
    from ..training.params import resolve

    done = read(trial.out) or {}
    planned = resolve(load_experiment(design.experiment_dir)["params"], {**trial.setting.params, "seed": trial.seed})
    ran = done.get("params") or {}
    changed = sorted(k for k in planned if k in ran and ran[k] != planned[k])
    overrides = {k: v for k, v in trial.setting.overrides.items()}
    if changed or (done.get("config_overrides") or {}) != json.loads(json.dumps(overrides)):
        what = ", ".join(f"{k} {ran[k]!r} -> {planned[k]!r}" for k in changed) or "config overrides differ"
        raise InputError(trial.out / "results.json", f"finished with other settings than the design now asks "
                         f"for ({what}); use a new 'runs' folder for the new recipe")


def trial_command(design: Design, trial: PlannedTrial, *, cache: Optional[str], extra: Sequence[str]) -> List[str]:
    return [sys.executable, "-m", "experiments",
            *trial_args(design.experiment_dir, trial.out, params={**trial.setting.params, "seed": trial.seed},
                        cache=cache, meta={"campaign": design.path.name, "setting": trial.setting.name},
                        extra=extra, overrides=trial.setting.overrides)]


def run_campaign(design: Design, *, only: Sequence[str] = (), seeds: Sequence[int] = (), cache: Optional[str] = None,
                 extra: Sequence[str] = (), max_trials: int = 0, dry_run: bool = False) -> Dict[str, int]:
    """Run every planned trial that is not complete yet; returns counts of what happened
    (``dry_run``: only check and count the finished ones)."""
    counts = {"skipped": 0, "completed": 0, "failed": 0}
    unknown = set(only) - {s.name for s in design.settings}
    if unknown:
        raise InputError(design.path, f"--only names unknown settings: {sorted(unknown)}")
    unknown_seeds = set(seeds) - set(design.seeds)
    if unknown_seeds:
        raise InputError(design.path, f"--seed names seeds the design does not have: {sorted(unknown_seeds)}")
    cache = cache or str(design.runs / "cache")
    for trial in design.trials(only, seeds):
        if trial.is_complete():
            check_same_trial(design, trial)
            counts["skipped"] += 1
            continue
        if dry_run:
            continue
        if max_trials and counts["completed"] + counts["failed"] >= max_trials:
            break
        log(f"campaign: {trial.setting.name} seed {trial.seed} -> {trial.out}")
        start = time.perf_counter()
        # the trial dies with this process: killing a campaign leaves no trial running on its own
        code = subprocess.call([*die_with_parent(), *trial_command(design, trial, cache=cache, extra=extra)])
        counts["completed" if code == 0 else "failed"] += 1
        log(f"campaign: {trial.setting.name} seed {trial.seed} {'done' if code == 0 else 'FAILED'} "
            f"in {time.perf_counter() - start:.0f}s")
    return counts
