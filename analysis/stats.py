"""The honesty numbers: spread, bootstrap CI and tests against the baseline.

Random search makes "best of N" noisy, so next to the best trial every setting reports a sample it can
be judged by:

- **seeds**: when the best trial's configuration (every param but ``seed``) was run with two or more
  seeds, the sample is those runs, one per seed (the noise a user sees when re-running the winner);
- **top-k** otherwise: the k best completed trials of the setting (k = ``TOP_K``), the best configurations
  the search found. It is optimistic (chosen on dev), like the "best" column, and labelled as such.

The CI is a percentile bootstrap of the sample mean with a fixed seed (same inputs, same bounds), and
only from ``MIN_CI_VALUES`` (3) or more values: a "95% CI" from two numbers is no interval anyone should
trust, so a smaller sample reports its range (min, max) instead, labelled as such.

Significance against the baseline, per setting:

- **paired t-test** (``scipy.stats.ttest_rel``) when at least ``MIN_PAIRS`` completed trials of the setting
  have a baseline twin with the same params (seed included) apart from the pretraining ones;
- otherwise **Mann-Whitney U** (two-sided, ``scipy.stats.mannwhitneyu``) over all completed trials of
  both: under the same search space this asks whether pretraining shifts the distribution of outcomes.

Repeats of the same (config, seed) count once in every sample and test (``distinct_runs``); "n trials"
still counts every completed trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
from scipy import stats

TOP_K = 5
MIN_PAIRS = 3
MIN_CI_VALUES = 3
BOOTSTRAP_SEED = 0
N_RESAMPLES = 9999
CONFIDENCE = 0.95


def bootstrap_ci(values: np.ndarray, seed: int = BOOTSTRAP_SEED) -> Tuple[float, float]:
    """95% percentile-bootstrap CI of the mean; (nan, nan) for fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    res = stats.bootstrap(
        (values,), np.mean, n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE, method="percentile",
        vectorized=True, rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def is_pretraining_param(name: str) -> bool:
    return name == "objective" or name.startswith("pretrain_")


def config_key(row: pd.Series, drop_seed: bool, drop_pretraining: bool) -> Tuple[Tuple[str, str], ...]:
    """A hashable identity of a trial's params (and spaCy config overrides), without the seed and/or
    pretraining params."""
    out = [("config_overrides", str(row.get("config_overrides", "{}")))]
    for col, value in row.items():
        if not str(col).startswith("params."):
            continue
        name = str(col)[len("params."):]
        if (drop_seed and name == "seed") or (drop_pretraining and is_pretraining_param(name)):
            continue
        value = value.item() if hasattr(value, "item") else value  # numpy scalar -> Python
        if isinstance(value, float):
            if np.isnan(value):
                continue
            if value.is_integer():  # an int column that pandas widened to float
                value = int(value)
        out.append((name, repr(value)))
    return tuple(out)


def completed(trials: pd.DataFrame) -> pd.DataFrame:
    """Best candidates: completed trials, best first (ties broken by source for a stable order)."""
    done = trials[trials["status"] == "completed"]
    return done.sort_values(["best_dev_score", "source"], ascending=[False, True], kind="stable")


def distinct_runs(done: pd.DataFrame) -> pd.DataFrame:
    """One trial per (config, seed), the first in ``done``'s order: a sweep can re-run the same point
    (TPE re-suggests it; two studies share a sampler seed), and a repeat is not a new sample."""
    keys = [config_key(row, drop_seed=False, drop_pretraining=False) for _, row in done.iterrows()]
    return done[~pd.Series(keys, index=done.index).duplicated().to_numpy()]


@dataclass
class Summary:
    """One setting's numbers (scores as fractions)."""

    setting: str
    n: int
    n_pruned: int
    best: float
    best_source: str
    mean: float
    std: float
    ci_low: float
    ci_high: float
    basis: str
    sample_sources: List[str]
    model_size_bytes: Optional[float]
    inference_words_per_second: Optional[float]
    low: float = float("nan")  # smallest and largest value of the sample (the range)
    high: float = float("nan")


def summarize(trials: pd.DataFrame, setting: str, top_k: int = TOP_K) -> Optional[Summary]:
    """Best trial, and mean/std/CI over its seed runs or the top-k trials (see module doc)."""
    group = trials[trials["setting"] == setting]
    done = completed(group)
    n_pruned = int((group["status"] == "pruned").sum())
    if done.empty:
        return None
    best = done.iloc[0]
    unique = distinct_runs(done)
    best_key = config_key(best, drop_seed=True, drop_pretraining=False)
    same = unique[[config_key(r, True, False) == best_key for _, r in unique.iterrows()]]
    if len(same) >= 2:
        sample, basis = same, f"{len(same)} seeds of best config"
    else:
        k = min(top_k, len(unique))
        configs = "" if len(unique) == len(done) else f" distinct run{'s' if len(unique) > 1 else ''}"
        sample, basis = unique.head(k), f"top {k} of {len(unique)}{configs}"
    values = sample["best_dev_score"].to_numpy(dtype=float)
    low, high = bootstrap_ci(values) if len(values) >= MIN_CI_VALUES else (float("nan"), float("nan"))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return Summary(
        setting=setting, n=len(done), n_pruned=n_pruned, best=float(best["best_dev_score"]),
        best_source=str(best["source"]), mean=float(values.mean()), std=std, ci_low=low, ci_high=high,
        basis=basis, sample_sources=sorted(sample["source"].astype(str)),
        model_size_bytes=_num(best.get("model_size_bytes")),
        inference_words_per_second=_num(best.get("inference_words_per_second")),
        low=float(values.min()), high=float(values.max()),
    )


def _num(value: Any) -> Optional[float]:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(out) else out


@dataclass
class Comparison:
    """A setting against the baseline (differences as fractions)."""

    setting: str
    test: str  # "paired t-test", "Mann-Whitney U" or "none"
    n_setting: int
    n_baseline: int
    difference: float  # mean paired difference, or difference of medians
    statistic: float
    p_value: float
    note: str = ""


def paired_scores(trials: pd.DataFrame, setting: str) -> List[Tuple[float, float]]:
    """(setting, baseline) score pairs of completed trials that differ only in pretraining params."""
    done = trials[trials["status"] == "completed"]
    base: Dict[Any, float] = {}
    for _, row in done[done["setting"] == "baseline"].sort_values("source").iterrows():
        base.setdefault(config_key(row, drop_seed=False, drop_pretraining=True), float(row["best_dev_score"]))
    pairs = []
    for _, row in done[done["setting"] == setting].sort_values("source").iterrows():
        key = config_key(row, drop_seed=False, drop_pretraining=True)
        if key in base:
            pairs.append((float(row["best_dev_score"]), base.pop(key)))
    return pairs


def paired_t_test(pairs: List[Tuple[float, float]]) -> Tuple[float, float, float]:
    """(mean difference a - b, t statistic, two-sided p) of ``scipy.stats.ttest_rel`` over (a, b) pairs;
    the statistic and p are NaN when there are fewer than 2 pairs or every difference is the same."""
    a, b = np.array(pairs, dtype=float).reshape(-1, 2).T
    diff = a - b
    if len(diff) < 2 or np.ptp(diff) == 0:
        return float(diff.mean()) if len(diff) else float("nan"), float("nan"), float("nan")
    res = stats.ttest_rel(a, b)
    return float(diff.mean()), float(res.statistic), float(res.pvalue)


def compare(trials: pd.DataFrame, setting: str) -> Comparison:
    """Test ``setting`` against ``baseline`` (paired where the runs allow it, see module doc)."""
    pairs = paired_scores(trials, setting)
    if len(pairs) >= MIN_PAIRS:
        diff, stat, p = paired_t_test(pairs)
        return Comparison(setting, "paired t-test", len(pairs), len(pairs), diff, stat, p,
                          "pairs: same params and seed, pretraining aside")
    done = distinct_runs(completed(trials))
    a = done.loc[done["setting"] == setting, "best_dev_score"].to_numpy(dtype=float)
    b = done.loc[done["setting"] == "baseline", "best_dev_score"].to_numpy(dtype=float)
    if len(a) < 2 or len(b) < 2:
        return Comparison(setting, "none", len(a), len(b), float("nan"), float("nan"), float("nan"),
                          "too few completed trials for a test (need 2 per side)")
    res = stats.mannwhitneyu(a, b, alternative="two-sided")
    return Comparison(setting, "Mann-Whitney U", len(a), len(b), float(np.median(a) - np.median(b)),
                      float(res.statistic), float(res.pvalue),
                      f"unpaired: fewer than {MIN_PAIRS} seed-matched pairs")
