"""PNG plots for one (experiment, task): learning curves, score vs pretraining amount, score vs model size
and inference speed (Pareto front marked), and sweep progress per search method.

Only completed trials feed the curves and scatter plots; sweep progress counts pruned trials as trials
spent (they do not move best-so-far). Agg backend, fixed size and dpi: same inputs, same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .tables import ordered_settings  # noqa: E402

DPI = 100
SAVE = {"dpi": DPI, "metadata": {"Software": None}}


def colours(settings: Sequence[str]) -> Dict[str, str]:
    cmap = plt.get_cmap("tab10")
    return {s: matplotlib.colors.to_hex(cmap(i % 10)) for i, s in enumerate(settings)}


def readable_axis(axis, values: Sequence[float], set_lim) -> None:
    """Plain tick labels on ``axis`` (never an offset like "+3.17" with 1e-4 steps), and limits that
    show a spread of values that are all (nearly) the same, e.g. every model the same size."""
    axis.set_major_formatter(matplotlib.ticker.ScalarFormatter(useOffset=False))
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if not len(values):
        return
    low, high = float(values.min()), float(values.max())
    centre = (low + high) / 2
    if high - low <= 0.01 * max(abs(centre), 1e-12):  # one value, or differences below 1%
        half = 0.1 * abs(centre) if centre else 1.0
        set_lim(centre - half, centre + half)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, **SAVE)
    plt.close(fig)
    return path


def learning_curves(epochs: pd.DataFrame, trials: pd.DataFrame, title: str, path: Path) -> Optional[Path]:
    """Dev score per epoch per setting: mean over completed trials, band = ±1 std."""
    done = epochs[(epochs["status"] == "completed") & epochs["dev_score"].notna()]
    if done.empty:
        return None
    settings = ordered_settings(trials)
    col = colours(settings)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in settings:
        sub = done[done["setting"] == s]
        if sub.empty:
            continue
        g = sub.groupby("epoch")["dev_score"].agg(["mean", "std", "count"]).sort_index()
        x, mean, std = g.index.to_numpy(), 100 * g["mean"].to_numpy(), 100 * g["std"].fillna(0).to_numpy()
        n = int(sub["source"].nunique())
        ax.plot(x, mean, marker="o", color=col[s], label=f"{s} (n={n})")
        ax.fill_between(x, mean - std, mean + std, color=col[s], alpha=0.2)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("fine-tuning epoch")
    ax.set_ylabel("dev score (%)")
    ax.set_title(f"{title}: learning curves (mean ± std over completed trials)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def score_vs_pretraining(trials: pd.DataFrame, title: str, path: Path) -> Optional[Path]:
    """Every completed trial's best score against its pretraining amount, best per amount joined (for
    campaign trials, the mean ± std over seeds per amount, as in the table)."""
    done = trials[trials["status"] == "completed"]
    if done.empty:
        return None
    units = sorted(set(done["amount_unit"]))
    scale = 1e-6 if units == ["words"] else 1.0  # words in millions on a linear axis, epochs as they are
    fig, ax = plt.subplots(figsize=(7, 4.5))
    objectives = sorted({o for o in done["objective"] if isinstance(o, str)})
    campaign = "meta.setting" in done and bool(done["meta.setting"].notna().all())
    col = colours(objectives or ["baseline"])
    base = done[done["objective"].isna()]
    if not base.empty:  # the baseline's trials, once, at 0; every objective's line starts from its best
        ax.scatter(np.zeros(len(base)), 100 * base["best_dev_score"], color="grey", alpha=0.35, s=18,
                   label=f"baseline trials (n={len(base)})")
        ax.axhline(100 * float(base["best_dev_score"].mean()), color="grey", linestyle="--", linewidth=1,
                   label=f"baseline mean ({100 * float(base['best_dev_score'].mean()):.1f})")
    else:
        ax.annotate("no completed\nbaseline trial", (0, 0.5), xycoords=("data", "axes fraction"), ha="center",
                    fontsize=8, color="grey")
    for objective in objectives or [None]:
        own = done[done["objective"] == objective] if objective else done.iloc[0:0]
        sub = pd.concat([base, own])
        if sub.empty:
            continue
        c = col[objective or "baseline"]
        if not own.empty:
            ax.scatter(scale * own["amount"], 100 * own["best_dev_score"], color=c, alpha=0.35, s=18)
        if campaign:  # a fixed design: the line is what the table reports, the mean over seeds
            g = sub.groupby("amount")["best_dev_score"].agg(["mean", "std"]).sort_index()
            ax.errorbar(scale * g.index.to_numpy(dtype=float), 100 * g["mean"].to_numpy(),
                        yerr=100 * g["std"].fillna(0).to_numpy(), marker="o", color=c, capsize=3,
                        label=f"{objective or 'baseline'}: mean ± std over seeds")
            continue
        best = sub.groupby("amount")["best_dev_score"].max().sort_index()
        ax.plot(scale * best.index.to_numpy(dtype=float), 100 * best.to_numpy(), marker="o", color=c,
                label=f"{objective or 'baseline'}: best")
    unit = "words (millions)" if scale != 1.0 else "/".join(units)
    if units == ["epochs"]:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    right = max(float(scale * done["amount"].max()), 1.0 if scale == 1.0 else 1e-6)
    ax.set_xlim(-0.05 * right, 1.05 * right)  # 0 (the baseline) always on the axis, never at its edge
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _: "0\n(baseline)" if v == 0 else f"{v:g}"))
    ax.set_xlabel(f"pretraining {unit} (0 = baseline)")
    ax.set_ylabel("best dev score (%)")
    ax.set_title(f"{title}: score vs pretraining (dots = trials)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def pareto_front(x: np.ndarray, y: np.ndarray, smaller_x_better: bool) -> List[int]:
    """Indices of points no other point beats on both axes (higher y; smaller or larger x), along x."""
    order = sorted(range(len(x)), key=lambda i: (x[i] if smaller_x_better else -x[i], -y[i]))
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return front


def size_and_speed(trials: pd.DataFrame, title: str, path: Path) -> Optional[Path]:
    """What size (and speed) buys what score: completed trials, Pareto front marked."""
    done = trials[trials["status"] == "completed"]
    panels = [("model_size_bytes", "model size (MB)", 1e-6, True),
              ("inference_words_per_second", "inference speed (k words/s)", 1e-3, False)]
    panels = [p for p in panels if p[0] in done and done[p[0]].notna().any()]
    if done.empty or not panels:
        return None
    settings = ordered_settings(trials)
    col = colours(settings)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (field, label, scale, smaller) in zip(axes[0], panels):
        sub = done[done[field].notna()].reset_index(drop=True)
        x = sub[field].to_numpy(dtype=float) * scale
        y = 100 * sub["best_dev_score"].to_numpy(dtype=float)
        for s in settings:
            mask = (sub["setting"] == s).to_numpy()
            if mask.any():
                ax.scatter(x[mask], y[mask], color=col[s], s=20, alpha=0.7, label=s)
        front = pareto_front(x, y, smaller)
        fx, fy = x[front], y[front]
        ax.step(fx, fy, where="post", color="black", linewidth=1, label="Pareto front")
        ax.scatter(fx, fy, facecolors="none", edgecolors="black", s=60)
        readable_axis(ax.xaxis, x, ax.set_xlim)
        readable_axis(ax.yaxis, y, ax.set_ylim)
        ax.set_xlabel(label)
        ax.set_ylabel("best dev score (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title}: score vs size and speed (completed trials)")
    return _save(fig, path)


def method_of(trials: pd.DataFrame) -> pd.Series:
    """Search method per trial: the sweep's ``search`` when known, else the study (folder) name."""
    search = trials["search"] if "search" in trials else pd.Series(None, index=trials.index)
    study = trials["study"] if "study" in trials else pd.Series(None, index=trials.index)
    out = search.where(search.notna(), "study " + study.astype(str))
    return out.where(search.notna() | study.notna(), "all trials")


def sweep_progress(trials: pd.DataFrame, title: str, path: Path) -> Optional[Path]:
    """Best-so-far score against trials spent and wall time, one line per search method."""
    if trials.empty:
        return None
    df = trials.assign(
        method=method_of(trials),
        started=pd.to_datetime(trials["started_at"], utc=True, errors="coerce", format="ISO8601"),
        finished=pd.to_datetime(trials["finished_at"], utc=True, errors="coerce", format="ISO8601"),
        score=trials["best_dev_score"].where(trials["status"] == "completed"),
    )
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    has_time = False
    for method in sorted(df["method"].unique()):
        sub = df[df["method"] == method]
        end = sub["finished"].fillna(sub["started"])
        sub = sub.assign(end=end).sort_values(["end", "source"], kind="stable", na_position="last")
        best = 100 * sub["score"].cummax().ffill().to_numpy(dtype=float)
        ax1.step(np.arange(1, len(sub) + 1), best, where="post", label=f"{method} ({len(sub)} trials)")
        if sub["end"].notna().any() and sub["started"].notna().any():
            hours = (sub["end"] - sub["started"].min()).dt.total_seconds().to_numpy(dtype=float) / 3600
            ok = ~np.isnan(hours)
            ax2.step(hours[ok], best[ok], where="post", label=method)
            has_time = True
    ax1.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax1.set_xlabel("trials finished (completed + pruned)")
    ax1.set_ylabel("best dev score so far (%)")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set_xlabel("wall time since the first trial started (h)")
    ax2.grid(alpha=0.3)
    if has_time:
        ax2.legend(fontsize=8)
    else:
        ax2.text(0.5, 0.5, "no started_at/finished_at in the results", ha="center", transform=ax2.transAxes)
    fig.suptitle(f"{title}: sweep progress per search method")
    return _save(fig, path)


def plot_group(trials: pd.DataFrame, epochs: pd.DataFrame, name: str, out: Path) -> Dict[str, Path]:
    """Every plot for one (experiment, task); the ones with nothing to show are left out."""
    made = {
        "learning-curves": learning_curves(epochs, trials, name, out / f"{name}-learning-curves.png"),
        "vs-pretraining": score_vs_pretraining(trials, name, out / f"{name}-vs-pretraining.png"),
        "size-speed": size_and_speed(trials, name, out / f"{name}-size-speed.png"),
        "sweep-progress": sweep_progress(trials, name, out / f"{name}-sweep-progress.png"),
    }
    return {k: v for k, v in made.items() if v is not None}
