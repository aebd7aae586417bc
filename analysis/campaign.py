"""Campaign summaries: one row per setting of a campaign design (``lmao campaign --summary``), and the
same table as markdown for READMEs (``--markdown``, ``--readme``). The design and its trials come from
:mod:`experiments.sweeps.campaign`; each finished trial's ``results.json`` is read with
:func:`experiments.training.results.load_results`."""

from __future__ import annotations

from typing import Any, Sequence

from experiments.sweeps.campaign import Design
from experiments.training.results import load_results


def summary(*designs: Design, only: Sequence[str] = ()) -> "Any":
    """One row per setting of each design, in design order (``only``: these setting names): n, best-epoch
    dev score mean/std/min/max, the largest drop after epoch 3 (of the seed-mean curve and of the worst seed),
    minutes per trial, the mean curve."""
    import pandas as pd

    tables = [_summary(design, only) for design in designs]
    tables = [table for table in tables if not table.empty]
    return pd.concat(tables) if tables else pd.DataFrame()


def _summary(design: Design, only: Sequence[str]) -> "Any":
    import pandas as pd

    rows = []
    for trial in design.trials():
        if not trial.is_complete() or (only and trial.setting.name not in only):
            continue
        result = load_results(trial.out)
        scores = [row["dev_score"] for row in result["epochs"]]
        rows.append({"setting": trial.setting.name, "seed": trial.seed, "scores": scores, "best": 100 * max(scores),
                     "best_epoch": result["best_epoch"], "max_drop_after_3": 100 * largest_drop_after_epoch_3(scores),
                     "wall_min": (result.get("wall_seconds") or 0) / 60})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = {s.name: i for i, s in enumerate(design.settings)}
    table = frame.groupby("setting").agg(
        n=("best", "size"), best_mean=("best", "mean"), best_std=("best", "std"), best_min=("best", "min"),
        best_max=("best", "max"), best_epoch=("best_epoch", "mean"), max_drop_after_3=("max_drop_after_3", "max"),
        wall_min=("wall_min", "mean"))
    means = frame.groupby("setting")["scores"].apply(mean_scores)
    table["mean_curve_drop_after_3"] = means.apply(lambda curve: 100 * largest_drop_after_epoch_3(curve))
    table["dev_by_epoch"] = means.apply(lambda curve: " ".join(f"{100 * s:.1f}" for s in curve))
    return table.sort_index(key=lambda idx: idx.map(order)).round(2)


def mean_scores(curves: "Any") -> list[float]:
    """Mean dev score per epoch over seeds, as far as every seed got (patience can stop one early)."""
    curves = list(curves)
    length = min(len(c) for c in curves)
    return [sum(c[i] for c in curves) / len(curves) for i in range(length)]


def largest_drop_after_epoch_3(scores: Sequence[float]) -> float:
    """How far the curve falls below its best-so-far from epoch 4 on (0 for a curve that keeps rising): a
    recipe whose dev score drops while the loss falls cannot tell a pretraining gain from noise."""
    return max((max(0.0, max(scores[:i]) - scores[i]) for i in range(3, len(scores))), default=0.0)


def markdown(table: "Any") -> str:
    """The summary as a markdown table (for READMEs), without pandas' optional tabulate dependency."""
    header = ["setting", "n", "best (%)", "std", "best epoch",
              "largest drop after epoch 3: seed-mean curve (points)", "largest drop after epoch 3: worst seed (points)",
              "minutes / trial", "dev (%) by epoch, mean over seeds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in table.iterrows():
        std = "" if row["best_std"] != row["best_std"] else f"{row['best_std']:.2f}"  # NaN for n = 1
        lines.append(f"| {name} | {int(row['n'])} | {row['best_mean']:.2f} | {std} | {row['best_epoch']:.1f} | "
                     f"{row['mean_curve_drop_after_3']:.2f} | {row['max_drop_after_3']:.2f} | {row['wall_min']:.1f} | {row['dev_by_epoch']} |")
    return "\n".join(lines)
