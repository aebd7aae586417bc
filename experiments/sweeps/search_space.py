"""An experiment's search space: ``EXPERIMENT_DIR/sweep.yml``, validated before anything runs.

One file serves both searches: ``lmao sweep`` samples it with Optuna, ``lmao polyaxonfile`` turns it into
a Polyaxon ``matrix``. Every key under ``params`` is a trial param (``experiments.training.params.PARAMS``) with
exactly one range kind::

    metric: accuracy            # optional: the experiment's task sets it (textcat: accuracy, ner: ents_f)
    direction: maximize         # or minimize
    n_trials: 50                # the budget (a study stops once this many trials finished)
    pruner: {kind: median, n_startup_trials: 5, n_warmup_steps: 1}   # or hyperband / none
    fixed: {max_epochs: 10}     # params every trial uses (optional)
    params:
      width: {choice: [96, 128, 300]}
      depth: {int: [2, 8]}                  # inclusive
      dropout: {uniform: [0.0, 0.4]}
      learn_rate: {loguniform: [1.0e-4, 1.0e-2]}

A bad file fails with one :class:`~experiments.common.errors.InputError` naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..common.errors import InputError, read_user_yaml
from ..training.params import PARAMS, coerce, coerce_all, unknown_param

SWEEP_FILE = "sweep.yml"
# The search methods, one vocabulary per backend. A local sweep (``lmao sweep --search``) uses Optuna's
# samplers; a cluster sweep (``lmao polyaxonfile --search``) uses Polyaxon's matrix kinds. Both offer a
# random search and one model-based search: Optuna's TPE, Polyaxon's Gaussian-process "bayes". This table
# is the one place that says which name plays which role.
SEARCHES: Dict[str, Dict[str, str]] = {
    "random": {"optuna": "random", "polyaxon": "random"},
    "model-based": {"optuna": "tpe", "polyaxon": "bayes"},
}
OPTUNA_SEARCHES = tuple(names["optuna"] for names in SEARCHES.values())  # ("random", "tpe")
POLYAXON_SEARCHES = tuple(names["polyaxon"] for names in SEARCHES.values())  # ("random", "bayes")
KINDS = ("choice", "uniform", "loguniform", "int")
DIRECTIONS = ("maximize", "minimize")
PRUNERS: Dict[str, Dict[str, type]] = {
    "none": {},
    "median": {"n_startup_trials": int, "n_warmup_steps": int, "interval_steps": int},
    "hyperband": {"min_resource": int, "max_resource": int, "reduction_factor": int},
}
TOP_KEYS = ("metric", "direction", "n_trials", "pruner", "fixed", "params")


@dataclass(frozen=True)
class Dimension:
    """One searched param: ``choice`` values, or a ``uniform``/``loguniform``/``int`` [low, high] range."""

    name: str
    kind: str
    values: Tuple[Any, ...] = ()
    low: Optional[float] = None
    high: Optional[float] = None

    def suggest(self, trial: Any) -> Any:
        """Sample this dimension from an Optuna trial."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "loguniform")

    def to_dict(self) -> Dict[str, Any]:
        return {self.kind: list(self.values) if self.kind == "choice" else [self.low, self.high]}


@dataclass(frozen=True)
class Pruner:
    kind: str = "none"
    settings: Dict[str, int] = field(default_factory=dict)

    def build(self) -> Any:
        """The Optuna pruner (hyperband's max_resource defaults to "auto": the longest trial seen)."""
        import optuna

        if self.kind == "median":
            return optuna.pruners.MedianPruner(**self.settings)
        if self.kind == "hyperband":
            settings = {"max_resource": "auto", **self.settings}
            return optuna.pruners.HyperbandPruner(**settings)
        return optuna.pruners.NopPruner()


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    experiment: str
    metric: str
    direction: str
    n_trials: int
    pruner: Pruner
    fixed: Dict[str, Any]
    params: Dict[str, Dimension]

    def sample(self, trial: Any, fixed: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """A trial's params: ``fixed`` as given, and a value sampled from the trial for every searched
        param that ``fixed`` does not set (with no ``fixed``: the sampled values only)."""
        fixed = dict(fixed or {})
        return {**fixed, **{name: dim.suggest(trial) for name, dim in self.params.items() if name not in fixed}}

    def fingerprint(self, fixed_overrides: Optional[Mapping[str, Any]] = None) -> str:
        """A hash of what makes trials comparable: resuming a study with another space is an error."""
        data = {
            "params": {name: dim.to_dict() for name, dim in sorted(self.params.items())},
            "fixed": {**self.fixed, **dict(fixed_overrides or {})},
            "direction": self.direction,
        }
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def check_search(search: str, backend: str) -> None:
    """``--search`` must be one of ``backend``'s names in :data:`SEARCHES` (``optuna`` or ``polyaxon``);
    the other backend's name for the same role is pointed out."""
    allowed = [names[backend] for names in SEARCHES.values()]
    if search not in allowed:
        same = [names[backend] for names in SEARCHES.values() if search in names.values()]
        hint = f" ({search!r} is called {same[0]!r} here)" if same else ""
        raise InputError("--search", f"expected one of {allowed}, got {search!r}{hint}")


def load_search_space(experiment_dir: Path) -> SearchSpace:
    """Read and validate ``EXPERIMENT_DIR/sweep.yml`` (or a sweep file path)."""
    path = Path(experiment_dir)
    if path.is_dir():
        path = path / SWEEP_FILE
    if not path.is_file():
        raise InputError(path, "no search space file (expected sweep.yml in the experiment folder)")
    return parse_search_space(read_user_yaml(path), path)


def parse_search_space(data: Any, path: Path) -> SearchSpace:
    """Validate the parsed YAML; every problem names ``path`` and the offending key."""
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping with `params` at the top level")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise InputError(path, f"unknown key {unknown[0]!r} (allowed: {', '.join(TOP_KEYS)})")
    params = _parse_params(data.get("params"), path)
    fixed = _parse_fixed(data.get("fixed") or {}, path)
    both = sorted(set(params) & set(fixed))
    if both:
        raise InputError(path, f"fixed.{both[0]}: param is both fixed and searched")
    direction = data.get("direction", "maximize")
    if direction not in DIRECTIONS:
        raise InputError(path, f"direction: expected one of {list(DIRECTIONS)}, got {direction!r}")
    metric = _metric(data.get("metric"), path)
    n_trials = data.get("n_trials", 20)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise InputError(path, f"n_trials: expected a positive integer, got {n_trials!r}")
    return SearchSpace(
        path=path,
        experiment=path.parent.resolve().name,
        metric=metric,
        direction=direction,
        n_trials=n_trials,
        pruner=_parse_pruner(data.get("pruner"), path),
        fixed=fixed,
        params=params,
    )


def _metric(given: Any, path: Path) -> str:
    """What the trials' ``dev_score`` is: set by the experiment's task (``experiments.training.finetune.METRICS``,
    the one place that names it), read from the ``defaults.yml`` beside ``path``. ``metric`` in the file
    is optional and must agree; without a ``defaults.yml`` it is only a label (default ``dev_score``)."""
    if given is not None and (not isinstance(given, str) or not given):
        raise InputError(path, f"metric: expected a metric name, got {given!r}")
    if not (path.parent / "defaults.yml").is_file():
        return given or "dev_score"
    from ..training.config import load_experiment
    from ..training.finetune import METRICS

    task = load_experiment(path.parent)["task"]
    if given is not None and given != METRICS[task]:
        raise InputError(path, f"metric: {task} trials score {METRICS[task]!r}, not {given!r} "
                               "(leave `metric` out: the task sets it)")
    return METRICS[task]


def _parse_params(raw: Any, path: Path) -> Dict[str, Dimension]:
    if not isinstance(raw, dict) or not raw:
        raise InputError(path, "params: expected a non-empty mapping of param name -> range")
    return {name: _parse_dimension(name, spec, path) for name, spec in raw.items()}


def _parse_dimension(name: Any, spec: Any, path: Path) -> Dimension:
    key = f"params.{name}"
    if name not in PARAMS:
        raise InputError(path, f"{key}: {unknown_param(name)}")
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
        raise InputError(path, f"{key}: expected exactly one of {', '.join(KINDS)}, e.g. {{choice: [a, b]}}")
    kind, value = next(iter(spec.items()))
    key = f"{key}.{kind}"
    ptype = PARAMS[name].type
    if kind == "choice":
        return Dimension(name, kind, values=_parse_choices(name, value, key, path))
    if ptype is not (int if kind == "int" else float):
        want = "int" if ptype is int else "choice" if ptype in (str, bool) else "uniform/loguniform"
        raise InputError(path, f"{key}: {name} is a {ptype.__name__} param; use {want}")
    low, high = _parse_bounds(value, key, path, integer=kind == "int")
    if low > high or (kind != "int" and low == high):
        raise InputError(path, f"{key}: empty range, low {low} must be below high {high}")
    if kind == "loguniform" and low <= 0:
        raise InputError(path, f"{key}: loguniform needs low > 0, got {low}")
    return Dimension(name, kind, low=low, high=high)


def _parse_choices(name: str, value: Any, key: str, path: Path) -> Tuple[Any, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(path, f"{key}: expected a non-empty list of values")
    try:
        values = tuple(coerce(name, v) for v in value)
    except ValueError as err:
        raise InputError(path, f"{key}: {err}") from None
    if len(set(values)) != len(values):
        raise InputError(path, f"{key}: repeated value in {list(values)}")
    return values


def _parse_bounds(value: Any, key: str, path: Path, integer: bool) -> Tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise InputError(path, f"{key}: expected [low, high]")
    out: List[Any] = []
    for bound in value:
        try:
            if isinstance(bound, bool):
                raise ValueError
            number = float(bound)  # YAML reads 1e-4 (no dot) as a string; accept it
            if not math.isfinite(number) or (integer and number != int(number)):
                raise ValueError
        except (TypeError, ValueError):
            kind = "an integer" if integer else "a number"
            raise InputError(path, f"{key}: bound {bound!r} is not {kind}") from None
        out.append(int(number) if integer else number)
    return out[0], out[1]


def _parse_fixed(raw: Any, path: Path) -> Dict[str, Any]:
    if not isinstance(raw, dict):
        raise InputError(path, "fixed: expected a mapping of param name -> value")
    return coerce_all(raw, path, "fixed")


def _parse_pruner(raw: Any, path: Path) -> Pruner:
    if raw is None:
        return Pruner("median", {"n_startup_trials": 5, "n_warmup_steps": 1})
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict) or raw.get("kind") not in PRUNERS:
        raise InputError(path, f"pruner.kind: expected one of {list(PRUNERS)}, got {raw!r}")
    kind = raw["kind"]
    settings = {}
    for name, value in raw.items():
        if name == "kind":
            continue
        if name not in PRUNERS[kind]:
            allowed = ", ".join(PRUNERS[kind]) or "no settings"
            raise InputError(path, f"pruner.{name}: not a {kind} pruner setting (allowed: {allowed})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(path, f"pruner.{name}: expected a non-negative integer, got {value!r}")
        settings[name] = value
    return Pruner(kind, settings)
