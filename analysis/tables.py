"""Comparison tables: one per (experiment, task), and for NER one per corpus (scores on two corpora never
share a column); as markdown (for READMEs) and CSV (numbers).

- Text classification (IMDB-1k style): rows = pretraining settings, columns = best trial, mean ± std and
  95% bootstrap CI (from 3 or more values; the range otherwise) over a stated sample (see ``analysis.stats``), n trials, model size, the original's
  number where there is one.
- NER (OntoNotes style): rows = fine-tuning epochs, columns = pretraining settings. An epoch cell is the
  dev F at that epoch, mean ± std over the setting's sample (its seeds: one seed's curve can swing by
  points between epochs); the "best" row is the best trial's best epoch; the rows below it are the same
  honesty numbers as above.

Scores are printed as percentages with one decimal, like the original tables, and every header or row
label says so ("(%)"); the CSVs keep four.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from . import reference
from .load import OBJECTIVE_ORDER, setting_label, words_label
from .stats import TOP_K, Comparison, Summary, compare, completed, summarize

DASH = "—"


def pct(value: Optional[float], digits: int = 1) -> str:
    """A fraction as a percentage string, or a dash when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return DASH
    return f"{100 * value:.{digits}f}"


def mean_std(s: Summary) -> str:
    return f"{pct(s.mean)} ± {pct(s.std)}" if not np.isnan(s.std) else f"{pct(s.mean)} ± {DASH}"


def ci(s: Summary) -> str:
    """The 95% CI from 3 or more values; the range, labelled, from 2; a dash from 1 (see ``analysis.stats``)."""
    if not np.isnan(s.ci_low):
        return f"[{pct(s.ci_low)}, {pct(s.ci_high)}]"
    n_values = len(s.sample_sources)
    if n_values >= 2 and not np.isnan(s.low):
        return f"range [{pct(s.low)}, {pct(s.high)}] ({n_values} values, no CI)"
    return DASH


def size_mb(value: Optional[float]) -> str:
    return DASH if value is None else f"{value / 1e6:.1f}"


def r4(value: Optional[float], scale: float = 100.0) -> Optional[float]:
    """A CSV number: percent (or raw with scale=1) rounded to 4 decimals, None when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return round(float(value) * scale, 4)


def summary_cells(sm: Any) -> Dict[str, Any]:
    """The CSV cells one setting's score summary gives (all None when the setting has no trials)."""
    keys = ("best", "mean", "std", "ci_low", "ci_high", "sample", "sample_min", "sample_max",
            "model_size_bytes", "inference_words_per_second")
    if sm is None:
        return dict.fromkeys(keys)
    return {"best": r4(sm.best), "mean": r4(sm.mean), "std": r4(sm.std), "ci_low": r4(sm.ci_low),
            "ci_high": r4(sm.ci_high), "sample": sm.basis, "sample_min": r4(sm.low), "sample_max": r4(sm.high),
            "model_size_bytes": sm.model_size_bytes, "inference_words_per_second": sm.inference_words_per_second}


def sig6(value: Optional[float]) -> Optional[float]:
    """Six significant digits (p-values can be tiny), None when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return float(f"{value:.6g}")


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub pipe table (no dependency on ``tabulate``)."""
    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def campaign_settings(trials: pd.DataFrame, epochs: Optional[pd.DataFrame] = None):
    """Trials of an ``lmao campaign`` grouped by the design's setting name (``meta.setting``: "vectors-1",
    "trigram-1", "baseline", ...) instead of the label derived from their pretraining; ordered as before
    (baseline, then objective and amount), names breaking ties. Idempotent; returns (trials, epochs)."""
    if trials.empty or "meta.setting" not in trials or not trials["meta.setting"].notna().any():
        return trials, epochs
    trials = trials.copy()
    named = trials["meta.setting"].notna()
    names = trials.loc[named, "meta.setting"].astype(str)
    trials.loc[named, "setting"] = names
    trials["setting_order"] = [tuple(order)[:3] + ((name,) if isinstance(name, str) else ())
                               for order, name in zip(trials["setting_order"], trials["meta.setting"])]
    if epochs is not None and not epochs.empty:
        by_source = trials.set_index("source")
        epochs = epochs.copy()
        epochs["setting"] = epochs["source"].map(by_source["setting"]).fillna(epochs["setting"])
        epochs["setting_order"] = [by_source["setting_order"].get(src, order)
                                   for src, order in zip(epochs["source"], epochs["setting_order"])]
    return trials, epochs


def pretraining_text(row: pd.Series) -> Optional[str]:
    """What text a trial's corpus offers pretraining (from the manifest `lmao data` wrote), e.g.
    "train+test, no unsup; 50,000 docs, 11M words" for IMDB; None when not recorded."""
    words = _value(row.get("corpus.pretrain_words"))
    docs = _value(row.get("corpus.pretrain_docs"))
    if words is None and docs is None:
        return None
    size = ", ".join(part for part in (f"{int(docs):,} docs" if docs is not None else None,
                                       f"{words_label(float(words))} words" if words is not None else None) if part)
    unsup = _value(row.get("corpus.include_unsup"))
    if unsup is not None:  # IMDB: the labelled reviews' text, the 50k unlabelled ones optional
        what = "train+test+unsup" if unsup else "train+test, no unsup"
    elif _value(row.get("corpus.raw")):
        what = f"`{row.get('corpus.raw')}`"
    elif _value(row.get("corpus.pretrain_text")) == "train":
        what = "train text"
    else:  # corpora prepared before the manifest said so took the train and dev docs' text
        what = "train+dev text"
    capped = _value(row.get("corpus.max_pretrain_docs"))
    return f"{'capped: ' if capped else ''}{what}; {size}"


def _value(value):
    """A cell's value, None when missing (NaN/None)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _setting_trials(trials: pd.DataFrame, setting: str) -> pd.DataFrame:
    return completed(trials[trials["setting"] == setting])


def setting_pretraining_text(trials: pd.DataFrame, setting: str, objective: Optional[str]) -> str:
    """The pretraining-text cell of a row: "none" for the baseline, else the distinct texts its trials had."""
    if objective is None:
        return "none"
    done = _setting_trials(trials, setting)
    texts = sorted({t for t in (pretraining_text(r) for _, r in done.iterrows()) if t})
    return "; ".join(texts) if texts else DASH


def finetune_minutes(trials: pd.DataFrame, setting: str) -> Optional[float]:
    """Mean wall time of a completed trial of the setting, in minutes, less the pretraining the trial ran
    itself (``wall_seconds`` - ``pretraining.seconds``, which is 0 on a cache hit): data loading,
    fine-tuning and evaluation."""
    done = _setting_trials(trials, setting)
    if done.empty or "wall_seconds" not in done or done["wall_seconds"].isna().all():
        return None
    own = done["pretraining.seconds"].fillna(0) if "pretraining.seconds" in done else 0
    return float((done["wall_seconds"] - own).mean()) / 60


def pretraining_runs(trials: pd.DataFrame, setting: str) -> List[Dict[str, object]]:
    """The distinct pretraining runs (cache keys) behind a setting's completed trials: key, run minutes,
    pretraining seeds, and how many trials used it."""
    done = _setting_trials(trials, setting)
    if done.empty or "pretraining.cache_key" not in done:
        return []
    runs = []
    for key, group in done[done["pretraining.cache_key"].notna()].groupby("pretraining.cache_key", sort=True):
        seconds = group["pretraining.run_seconds"].dropna() if "pretraining.run_seconds" in group else pd.Series([], dtype=float)
        seeds = sorted({int(v) for v in group["pretraining.seed"].dropna()}) if "pretraining.seed" in group else []
        runs.append({"key": str(key), "minutes": float(seconds.iloc[0]) / 60 if len(seconds) else None,
                     "seeds": seeds, "n_trials": len(group)})
    return runs


def minutes(value: Optional[float]) -> str:
    return DASH if value is None else f"{value:.1f}"


def pretraining_run_notes(trials: pd.DataFrame, settings: Sequence[str]) -> List[str]:
    """Say how many pretraining runs stand behind each setting; when one run serves all its seeds, the
    spread over seeds is fine-tuning noise only."""
    notes, users = [], {}
    for s in settings:
        runs = pretraining_runs(trials, s)
        if not runs:
            continue
        n = sum(int(r["n_trials"]) for r in runs)
        for r in runs:
            users.setdefault(r["key"], []).append(s)
        if len(runs) == 1:
            r = runs[0]
            seed = f", pretraining seed {r['seeds'][0]}" if len(r["seeds"]) == 1 else ""
            run_time = f", {r['minutes']:.1f} min" if r["minutes"] is not None else ""
            if n > 1:
                seeds = sorted({int(v) for v in _setting_trials(trials, s)["seed"].dropna()})
                which = f" (seeds {', '.join(map(str, seeds))})" if len(seeds) == n else ""
                notes.append(f"{s}: all {n} trials{which} fine-tune from one shared pretraining run (cache key "
                             f"{r['key'][:12]}{seed}{run_time}); their spread comes from fine-tuning alone, "
                             "not from pretraining.")
            else:
                notes.append(f"{s}: one pretraining run (cache key {r['key'][:12]}{seed}{run_time}).")
        else:
            total = sum(r["minutes"] or 0 for r in runs)
            notes.append(f"{s}: {len(runs)} pretraining runs for {n} trials ({total:.1f} min in all).")
    shared = {key: names for key, names in users.items() if len(names) > 1}
    for key, names in sorted(shared.items()):
        notes.append(f"{', '.join(names)} read checkpoints of the same pretraining run (cache key {key[:12]}): "
                     "one run serves every pretraining amount.")
    return notes


def ordered_settings(trials: pd.DataFrame) -> List[str]:
    """Settings in table order: baseline, then by objective and amount."""
    firsts = trials.drop_duplicates("setting")
    return [row.setting for row in sorted(firsts.itertuples(), key=lambda r: tuple(r.setting_order))]


def significance_lines(comparisons: Sequence[Comparison]) -> List[str]:
    """One markdown bullet per setting against the baseline, naming the test."""
    lines = []
    for c in comparisons:
        if c.test == "none":
            lines.append(f"- {c.setting} vs baseline: no test ({c.note}; {c.n_setting} vs {c.n_baseline}).")
            continue
        what = "mean paired difference" if c.test == "paired t-test" else "difference of medians"
        diff = f"{100 * c.difference:+.2f} points ({what})"
        stat = DASH if np.isnan(c.statistic) else f"{c.statistic:.2f}"
        p = "n/a (differences have no variance)" if np.isnan(c.p_value) else f"{c.p_value:.3g}"
        if c.test == "paired t-test":
            detail = f"paired t-test over {c.n_setting} pairs ({c.note}): t = {stat}, p = {p}"
        else:
            detail = (f"Mann-Whitney U, two-sided, over {c.n_setting} vs {c.n_baseline} distinct completed trials "
                      f"({c.note}): U = {stat}, p = {p}")
        lines.append(f"- {c.setting} vs baseline: {diff}; {detail}.")
    return lines


@dataclass
class Table:
    """A rendered table for one (experiment, task) and what fed it."""

    name: str
    experiment: str
    task: str
    title: str
    markdown: str
    csv: pd.DataFrame
    extra_csv: Dict[str, pd.DataFrame] = field(default_factory=dict)
    sources: List[str] = field(default_factory=list)  # completed trials behind the numbers
    pruned_sources: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    # NER results get a table per corpus they ran on: which one (``corpus_name``), and the block of the
    # experiment README it goes to (``report-<corpus>``; ``report`` for results that record no corpus)
    corpus_name: Optional[str] = None
    block: str = "report"
    all_sources: List[str] = field(default_factory=list)  # every trial of the table, pruned and failed too

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` (trials or epochs) that belong to this table."""
        keep = (frame["experiment"] == self.experiment) & (frame["task"] == self.task)
        if self.corpus_name is not None:
            keep &= frame["source"].isin(set(self.all_sources))
        return frame[keep]


def _comparisons(trials: pd.DataFrame, settings: Sequence[str]) -> List[Comparison]:
    if "baseline" not in settings:
        return []
    return [compare(trials, s) for s in settings if s != "baseline"]


def _footer(trials: pd.DataFrame, top_k: int) -> List[str]:
    done = completed(trials)
    notes = [
        f"{len(done)} completed trials, {int((trials['status'] == 'pruned').sum())} pruned (pruned trials "
        "are never best candidates and enter no mean/CI).",
        f"mean ± std and 95% CI (percentile bootstrap of the mean; the {top_k} best trials when the best "
        "config has no seed repeats) are over the sample named in *sample*; top-k samples are chosen on "
        "dev, so they are optimistic like *best*. No CI is computed from fewer than 3 values: such a "
        "cell gives the sample's range (min, max) instead.",
    ]
    data_cols = [c for c in ("data.train_docs", "data.dev_docs") if c in trials]
    if len(data_cols) == 2:
        sizes = sorted({(int(a), int(b)) for a, b in trials[data_cols].dropna().itertuples(index=False)})
        if sizes:
            notes.append("data: " + "; ".join(f"{a} train / {b} dev docs" for a, b in sizes) + ".")
    if "corpus" in trials:
        corpora = sorted({str(c) for c in trials["corpus"].dropna()})
        if corpora:
            notes.append("corpus (from each trial's manifest): " + "; ".join(f"`{c}`" for c in corpora) + ".")
    return notes


def n_pruned(trials: pd.DataFrame, setting: str) -> int:
    return int(((trials["setting"] == setting) & (trials["status"] == "pruned")).sum())


def setting_cells(trials: pd.DataFrame, setting: str, sm: Any, objective: Optional[str]) -> Dict[str, Any]:
    """The markdown cells every table shows for a setting, by column (textcat) or row (NER) label:
    its summary ``sm`` (None: no completed trial, so dashes and 0 trials), size, times, pretraining text."""
    return {
        "best (%)": pct(sm.best) if sm else DASH,
        "mean ± std (%)": mean_std(sm) if sm else DASH,
        "95% CI (%)": ci(sm) if sm else DASH,
        "sample": sm.basis if sm else DASH,
        "n trials": sm.n if sm else 0,
        "pruned": n_pruned(trials, setting),
        "size (MB)": size_mb(sm.model_size_bytes) if sm else DASH,
        "fine-tune wall / trial (min)": minutes(finetune_minutes(trials, setting)),
        "pretraining run (min)": minutes(_mean_run_minutes(trials, setting)) if objective is not None else DASH,
        "pretraining text": setting_pretraining_text(trials, setting, objective) if sm else DASH,
    }


def setting_csv_counts(trials: pd.DataFrame, setting: str, sm: Any) -> Dict[str, Any]:
    """The CSV columns every table writes for a setting's trials: counts and the summary's numbers."""
    return {"n_trials": sm.n if sm else 0, "n_pruned": n_pruned(trials, setting), **summary_cells(sm)}


def comparison_csv(comp: Optional[Comparison]) -> Dict[str, Any]:
    """The CSV columns of a setting's test against the baseline (None: no test)."""
    return {"test": comp.test if comp else None, "difference": r4(comp.difference) if comp else None,
            "statistic": sig6(comp.statistic) if comp else None, "p_value": sig6(comp.p_value) if comp else None}


def textcat_table(trials: pd.DataFrame, name: str, experiment: str, task: str,
                  top_k: int = TOP_K) -> Table:
    """Rows = pretraining settings (see module doc)."""
    trials, _ = campaign_settings(trials)
    with_ref = experiment == reference.IMDB_REFERENCE_EXPERIMENT
    info = trials.drop_duplicates("setting").set_index("setting")
    specs = [(s, _none(info.loc[s, "objective"]), float(info.loc[s, "amount"]), str(info.loc[s, "amount_unit"]))
             for s in ordered_settings(trials)]
    if with_ref:  # the original's rows we have no runs for still show, with n trials = 0
        ours = {(objective, amount) for _, objective, amount, _ in specs}
        specs += [(setting_label(objective, epochs), objective, epochs, "epochs")
                  for objective, epochs in reference.IMDB if (objective, epochs) not in ours]
        specs.sort(key=lambda spec: (spec[1] is not None, OBJECTIVE_ORDER.get(spec[1], 9), spec[2], spec[0]))
    settings = [spec[0] for spec in specs]
    summaries = {s: summarize(trials, s, top_k) for s in settings}
    comparisons = _comparisons(trials, [s for s in settings if summaries.get(s)])
    has_text = any(pretraining_text(r) for _, r in completed(trials).iterrows())
    md_rows, csv_rows = [], []
    columns = ["best (%)", "mean ± std (%)", "95% CI (%)", "sample", "n trials", "pruned", "size (MB)",
               "fine-tune wall / trial (min)", "pretraining run (min)"]
    for s, objective, amount, unit in specs:
        sm = summaries[s]
        ref = reference.IMDB.get((objective, amount)) if with_ref else None
        cells = setting_cells(trials, s, sm, objective)
        text = cells["pretraining text"]
        wall = finetune_minutes(trials, s)
        runs = pretraining_runs(trials, s)
        pre_min = _mean_run_minutes(trials, s)
        row = {"pretraining": s}
        if has_text:
            row["pretraining text"] = text
        row.update({c: cells[c] for c in columns})
        if with_ref:
            row[reference.IMDB_LABEL] = DASH if ref is None else f"{ref:.1f}"
        md_rows.append(row)
        comp = next((c for c in comparisons if c.setting == s), None)
        csv_rows.append({
            "setting": s, "objective": objective, "amount": amount,
            "amount_unit": unit, "pretraining_text": text if sm else None,
            **setting_csv_counts(trials, s, sm),
            "finetune_wall_seconds_mean": r4(wall, 60) if wall is not None else None,
            "pretraining_runs": len(runs),
            "pretraining_run_seconds_mean": r4(pre_min, 60) if pre_min is not None else None,
            "best_source": sm.best_source if sm else None,
            "original": ref,
            **comparison_csv(comp),
        })
    metric = _metric(trials)
    lines = [f"### {experiment}: dev {metric} (%) by pretraining setting", "", to_markdown(pd.DataFrame(md_rows)), ""]
    lines += _significance_block(comparisons, trials)
    lines += ["Notes:", ""] + [f"- {n}" for n in _footer(trials, top_k)]
    lines += [f"- {n}" for n in _time_and_pretraining_notes(trials, settings, has_text)]
    if with_ref:
        lines.append(f"- {reference.SOURCE_NOTE} {reference.IMDB_NOTE}")
        lines += _scale_warning(trials)
    return Table(name, experiment, task, f"{experiment} ({task})", "\n".join(lines) + "\n",
                 pd.DataFrame(csv_rows), sources=sorted(completed(trials)["source"].astype(str)),
                 pruned_sources=sorted(trials.loc[trials["status"] == "pruned", "source"].astype(str)))


def _time_and_pretraining_notes(trials: pd.DataFrame, settings: Sequence[str], has_text: bool) -> List[str]:
    notes = ["*fine-tune wall / trial*: mean `wall_seconds` of a completed trial less the pretraining it ran "
             "itself (data loading, fine-tuning and per-epoch evaluation); *pretraining run*: the cached "
             "pretraining run's own time (`pretraining.run_seconds`), paid once per run, not per trial."]
    if has_text:
        notes.append("*pretraining text*: what the trial's corpus offered pretraining, from its manifest "
                     "(`include_unsup`, `pretrain_words`, `docs.pretrain`): for IMDB, *train+test* is the text "
                     "(not the labels) of the 50k labelled reviews and *unsup* the 50k unlabelled ones; "
                     "*capped* means `max_pretrain_docs` kept only the first docs; otherwise a raw-text file, or "
                     "the corpus's own *train text* (*train+dev text* for NER corpora prepared before "
                     "`lmao data ner` recorded `pretrain_text`).")
    notes += pretraining_run_notes(trials, settings)
    campaigns = sorted({str(c) for c in trials.get("meta.campaign", pd.Series([], dtype=object)).dropna()})
    if campaigns:
        notes.append("rows named by the campaign design's settings (`meta.setting`) of "
                     + ", ".join(f"`{c}`" for c in campaigns) + ".")
    return notes


def _scale_warning(trials: pd.DataFrame) -> List[str]:
    """Say so when runs used another split size than the original's (compare trends, not values)."""
    cols = ["data.train_docs", "data.dev_docs"]
    if not all(c in trials for c in cols):
        return []
    sizes = {(int(a), int(b)) for a, b in trials[cols].dropna().itertuples(index=False)}
    if not sizes or sizes == {reference.IMDB_SPLIT}:
        return []
    train, dev = reference.IMDB_SPLIT
    return [f"- **Not the protocol's scale**: the original's numbers are for {train} train / {dev} dev docs; "
            "these runs used fewer or more (see *data*), so compare trends, not values."]


def _none(value):
    """pandas may hold a missing objective as NaN; the reference keys use None."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _metric(trials: pd.DataFrame) -> str:
    metrics = sorted(set(trials["metric"].dropna().astype(str)))
    return "/".join(metrics) if metrics else "score"


def _significance_block(comparisons: Sequence[Comparison], trials: pd.DataFrame) -> List[str]:
    if not comparisons:
        has_baseline = bool((completed(trials)["setting"] == "baseline").any()) if not trials.empty else False
        why = "no pretrained setting has completed trials yet" if has_baseline else "no baseline trials"
        return [f"Significance vs baseline: {why}, no test.", ""]
    return ["Significance vs baseline:", ""] + significance_lines(comparisons) + [""]


def ner_table(trials: pd.DataFrame, epochs: pd.DataFrame, name: str, experiment: str, task: str,
              top_k: int = TOP_K, corpus_name: Optional[str] = None) -> Table:
    """Rows = fine-tuning epochs + best + honesty rows; columns = settings (+ the original's)."""
    trials, epochs = campaign_settings(trials, epochs)
    settings = ordered_settings(trials)
    summaries = {s: summarize(trials, s, top_k) for s in settings}
    comparisons = _comparisons(trials, [s for s in settings if summaries.get(s)])
    corpus, ontonotes = ner_corpus(trials)
    # the original's OntoNotes numbers only beside runs on OntoNotes (or runs that do not record a corpus,
    # with a note); never beside another corpus's scores as if they were comparable
    with_ref = experiment == reference.NER_REFERENCE_EXPERIMENT and ontonotes is not False
    done_epochs = epochs[epochs["status"] == "completed"]
    curves: Dict[str, Dict[int, float]] = {}  # the best trial's curve (the CSV's best_trial column)
    cells: Dict[str, Dict[int, str]] = {}  # mean ± std over the setting's sample (its seeds), per epoch
    for s in settings:
        sm = summaries[s]
        if sm is None:
            curves[s], cells[s] = {}, {}
            continue
        rows = done_epochs[done_epochs["source"] == sm.best_source]
        curves[s] = {int(e): float(v) for e, v in zip(rows["epoch"], rows["dev_score"]) if v is not None}
        sample = done_epochs[done_epochs["source"].isin(sm.sample_sources)]
        cells[s] = {}
        for e, group in sample.groupby(sample["epoch"].astype(int)):
            vals = group["dev_score"].dropna().to_numpy(dtype=float)
            if len(vals) == len(sm.sample_sources) > 1:
                cells[s][int(e)] = f"{100 * vals.mean():.1f} ± {100 * vals.std(ddof=1):.1f}"
            elif len(vals) == len(sm.sample_sources):
                cells[s][int(e)] = pct(float(vals[0]))
            else:  # a trial of the sample stopped earlier (patience): no mean over a different set
                cells[s][int(e)] = f"{pct(float(vals.mean()))} (n={len(vals)})" if len(vals) else DASH
    epoch_ids = sorted({e for c in curves.values() for e in c} | (set(reference.NER_EPOCHS) if with_ref else set()))
    ref_cols = [f"original {c}" for c in reference.NER_COLUMNS] if with_ref else []

    def ref_cells(key: str) -> Dict[str, str]:
        values = reference.NER.get(key, {})
        return {f"original {c}": f"{values[c]:.1f}" if c in values else "" for c in reference.NER_COLUMNS}

    md_rows = []
    for e in epoch_ids:
        row = {"epoch": str(e), **{s: cells[s].get(e, DASH) for s in settings}}
        md_rows.append({**row, **(ref_cells(str(e)) if with_ref else {})})
    honesty = ["best (%)", "mean ± std (%)", "95% CI (%)", "sample", "n trials", "size (MB)",
               "fine-tune wall / trial (min)", "pretraining run (min)"]
    has_text = any(pretraining_text(r) for _, r in completed(trials).iterrows())
    if has_text:
        honesty.append("pretraining text")
    setting_cell = {s: setting_cells(trials, s, summaries[s], _none(trials.loc[trials["setting"] == s, "objective"].iloc[0]))
                    for s in settings}
    for label in honesty:
        row = {"epoch": label, **{s: str(setting_cell[s][label]) for s in settings}}
        refs = ref_cells("best") if label == "best (%)" and with_ref else {c: "" for c in ref_cols}
        md_rows.append({**row, **refs})
    md = pd.DataFrame(md_rows, columns=["epoch", *settings, *ref_cols])

    long_rows = []
    for s in settings:
        sub = done_epochs[done_epochs["setting"] == s]
        for e in sorted(set(sub["epoch"].astype(int))):
            vals = sub.loc[sub["epoch"] == e, "dev_score"].dropna().to_numpy(dtype=float)
            long_rows.append({
                "setting": s, "epoch": e, "best_trial": r4(curves[s].get(e)), "mean": r4(vals.mean()),
                "std": r4(vals.std(ddof=1)) if len(vals) > 1 else None, "n_trials": len(vals),
            })
    summary_rows = []
    for s in settings:
        sm = summaries[s]
        comp = next((c for c in comparisons if c.setting == s), None)
        first = trials[trials["setting"] == s].iloc[0]
        summary_rows.append({
            "setting": s, "objective": _none(first["objective"]), "amount": float(first["amount"]),
            "amount_unit": first["amount_unit"], **setting_csv_counts(trials, s, sm),
            "best_source": sm.best_source if sm else None, **comparison_csv(comp),
        })
    metric = _metric(trials)
    on = f", corpus: {corpus}" if corpus else ", corpus not recorded"
    title = f"{experiment} on {corpus_name}" if corpus_name else experiment
    lines = [f"### {title}: dev {metric} (%) per fine-tuning epoch (mean ± std over each setting's "
             f"sample){on}", "", to_markdown(md), ""]
    lines += _significance_block(comparisons, trials)
    lines += ["Notes:", "",
              "- Epoch rows: the dev score after that epoch, mean ± std over the trials of the setting's "
              "*sample* row (its seeds); one value where the sample is one trial. The best trial's own "
              "curve is the `best_trial` column of the `-epochs.csv` file."]
    lines += [f"- {n}" for n in _footer(trials, top_k)]
    lines += [f"- {n}" for n in _time_and_pretraining_notes(trials, settings, has_text)]
    if with_ref:
        lines.append(f"- {reference.SOURCE_NOTE} T = trigram objective. They are OntoNotes 5.0 scores (18 "
                     "entity types, Reddit pretraining text).")
        if ontonotes is None:
            lines.append("- **Corpus not recorded**: these results carry no corpus manifest, so nothing shows "
                         "they used OntoNotes; the *original* columns compare only if they did.")
    elif experiment == reference.NER_REFERENCE_EXPERIMENT:
        lines.append(f"- The original's OntoNotes numbers (`docs/protocol.md`) are not shown: these runs used "
                     f"{corpus}, a different corpus (other entity types and text), so their scores are not "
                     "comparable.")
    return Table(name, experiment, task, f"{experiment} ({task})", "\n".join(lines) + "\n",
                 pd.DataFrame(summary_rows), extra_csv={"epochs": pd.DataFrame(long_rows)},
                 sources=sorted(completed(trials)["source"].astype(str)),
                 pruned_sources=sorted(trials.loc[trials["status"] == "pruned", "source"].astype(str)))


ONTONOTES = ("ontonotes", "conll-2012", "conll2012", "gold_conll")


def ner_corpus(trials: pd.DataFrame):
    """(the corpus label for the title, whether it is OntoNotes: True, False, or None when no trial records
    a corpus manifest). Judged from the source file names in the manifests; any non-OntoNotes file makes
    the table non-OntoNotes."""
    labels = sorted({str(c) for c in trials["corpus"].dropna()}) if "corpus" in trials else []
    if not labels:
        return None, None
    is_onto = all(any(mark in label.lower() for mark in ONTONOTES) for label in labels)
    return "; ".join(f"`{label}`" for label in labels), is_onto


def _mean_run_minutes(trials: pd.DataFrame, setting: str) -> Optional[float]:
    values = [r["minutes"] for r in pretraining_runs(trials, setting) if r["minutes"] is not None]
    return float(np.mean(values)) if values else None


def build_tables(trials: pd.DataFrame, epochs: pd.DataFrame, top_k: int = TOP_K) -> List[Table]:
    """One table per (experiment, task), NER-style for ``task == "ner"``, settings-style otherwise."""
    trials, epochs = campaign_settings(trials, epochs)
    tables = []
    groups = sorted(trials.groupby(["experiment", "task"]).groups)
    experiments = [e for e, _ in groups]
    for experiment, task in groups:
        sub = trials[(trials["experiment"] == experiment) & (trials["task"] == task)]
        name = experiment if experiments.count(experiment) == 1 else f"{experiment}-{task}"
        if task == "ner":
            ep = epochs[(epochs["experiment"] == experiment) & (epochs["task"] == task)]
            named = sub["corpus_name"].notna() if "corpus_name" in sub else pd.Series(False, index=sub.index)
            if not named.all():  # results that record no corpus: one table, as before corpora were named
                tables.append(ner_table(sub, ep, name, experiment, task, top_k))
                continue
            for corpus in sorted(set(sub["corpus_name"].astype(str))):  # a table, file and README block each
                part = sub[sub["corpus_name"] == corpus]
                table = ner_table(part, ep[ep["source"].isin(set(part["source"]))], f"{name}-{corpus}",
                                  experiment, task, top_k, corpus_name=corpus)
                table.corpus_name, table.block = corpus, f"report-{corpus}"
                table.all_sources = sorted(part["source"].astype(str))
                tables.append(table)
        else:
            tables.append(textcat_table(sub, name, experiment, task, top_k))
    return tables


HEADLINE_BLOCK = "campaigns"


def headline_bullet(trials: pd.DataFrame, experiment: str, task: str, corpus_name: Optional[str] = None) -> str:
    """One README bullet for an experiment (on one corpus, where it has several): each setting's mean
    best-epoch dev score over its seeds, and what it buys over the baseline (paired by seed where the runs
    allow it; see ``analysis.stats``). ``trials`` as ``campaign_settings`` returns them."""
    sub = trials[(trials["experiment"] == experiment) & (trials["task"] == task)]
    if corpus_name is not None:
        sub = sub[sub["corpus_name"] == corpus_name]
    settings = ordered_settings(sub)
    parts = []
    for setting in settings:
        sm = summarize(sub, setting)
        if sm is None:
            continue
        text = f"{setting} **{mean_std(sm)} %** (n = {len(sm.sample_sources)}"
        if setting != "baseline" and "baseline" in settings:
            c = compare(sub, setting)
            if c.test != "none":
                p = "n/a" if np.isnan(c.p_value) else f"{c.p_value:.2g}"
                test = "paired t-test" if c.test == "paired t-test" else "Mann-Whitney U"
                text += f"; {100 * c.difference:+.2f} points, {test} p = {p}"
        parts.append(text + ")")
    data = [c for c in ("data.train_docs", "data.dev_docs") if c in sub]
    size = ""
    if len(data) == 2 and not sub.empty:
        first = sub.iloc[0]
        size = f", {int(first['data.train_docs'])} train / {int(first['data.dev_docs'])} dev docs"
    on = f" on {corpus_name}" if corpus_name is not None else ""
    return (f"- **{experiment}**{on} ({task}, best-epoch dev `{_metric(sub)}`, mean ± std over seeds{size}; "
            f"details in `{experiment}/README.md`): " + "; ".join(parts) + ".")


def headline(trials: pd.DataFrame, tables: Sequence["Table"]) -> str:
    """The README's campaign headline: one bullet per reported experiment, with its provenance."""
    n = int((trials["status"] == "completed").sum())
    lines = [f"_Generated by `make report` from {n} completed raw trial results "
             "(`analysis/results/manifest.json` lists them); edits between the markers are overwritten._", ""]
    lines += [headline_bullet(trials, t.experiment, t.task, t.corpus_name) for t in tables]
    return "\n".join(lines)
