"""The size-accuracy frontier: the best accuracy at each model size, and what LMAO pretraining buys there.

A **model** (a point on the frontier) is everything that shapes the saved pipeline: every param except the
seed, the pretraining params and the compute ones (``cpu_gemm``, ``eval_batch_size``, ``pretrain_workers``:
the same math to float rounding), plus the spaCy config overrides and the data split (train/dev sizes and
shuffle seed from the corpus manifest; the corpus folder itself is left out, so a trial pretrained on a
corpus with the unlabelled reviews added pairs with the baseline on the same split). A **cell** is a model
with one pretraining recipe (objective, epochs, the other pretraining params, the pretraining text) on one
device class: CPU and GPU trials never share a cell (``results.json`` ``device``).

Per cell: n (distinct seeds), mean ± std of the best dev accuracy, the model size (median bytes of
``model-best/``) and inference speed (median words/s of dev evaluation, which depends on the machine's
load). A pretrained cell is compared with the same model without pretraining, paired by seed (paired
t-test, :func:`analysis.stats.paired_t_test`). The headline names, per budget (10 MB, 35 MB, none), the
best cell with 3 or more seeds (a budget with none such says so and names the best with fewer), the best
without pretraining, and the paired effect of pretraining at the best cell's model.

``lmao frontier RUNS... --out analysis/results``: ``frontier.md`` / ``frontier.csv`` / ``frontier.png``, and
with ``--readme``/``--table-readme`` the headline and the table between README markers. Same inputs, same
bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .load import OBJECTIVE_ORDER, words_label
from .stats import is_pretraining_param, paired_t_test

BUDGETS_MB: Tuple[Optional[float], ...] = (10.0, 35.0, None)
FULL_SEEDS = 3
NOISE_P = 0.05  # a paired gain with p at or above this is reported as within seed noise
COMPUTE_PARAMS = ("cpu_gemm", "eval_batch_size", "pretrain_workers", "corpus_dir", "seed")
SPLIT_COLUMNS = ("corpus.kind", "corpus.n_train", "corpus.n_dev", "corpus.seed")
OUTPUT = "frontier"


@dataclass
class Cell:
    """One model with one pretraining recipe on one device class."""

    device: str
    model: str
    pretraining: str
    pretrained: bool
    order: Tuple
    model_key: Tuple
    seeds: Dict[int, float] = field(default_factory=dict)  # seed -> best dev score (fraction)
    sizes: List[float] = field(default_factory=list)
    speeds: List[float] = field(default_factory=list)
    # the slowest and fastest round of the side-by-side measurement: how far apart two speeds must be
    speed_range: Tuple[float, float] = (float("nan"), float("nan"))
    sources: List[str] = field(default_factory=list)
    # against the same model without pretraining, paired by seed (points, not fractions)
    paired_n: int = 0
    paired_diff: float = float("nan")
    paired_p: float = float("nan")
    anchor: str = ""  # "efficiency" / "accuracy": spaCy's stock textcat config (stock_config)

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def mean(self) -> float:
        return 100 * float(np.mean(list(self.seeds.values())))

    @property
    def std(self) -> float:
        return 100 * float(np.std(list(self.seeds.values()), ddof=1)) if self.n > 1 else float("nan")

    @property
    def size_mb(self) -> float:
        return float(np.median(self.sizes)) / 1e6 if self.sizes else float("nan")

    @property
    def words_per_second(self) -> float:
        return float(np.median(self.speeds)) if self.speeds else float("nan")


def device_class(device: Any) -> str:
    """``cpu`` or ``gpu`` (``gpu:0`` and ``gpu:1`` are one class), ``unknown`` when not recorded."""
    text = str(device or "")
    return "gpu" if text.startswith("gpu") else "cpu" if text == "cpu" else "unknown"


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float):
        if np.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def _params(row: pd.Series) -> Dict[str, Any]:
    return {str(c)[len("params."):]: _plain(v) for c, v in row.items() if str(c).startswith("params.")}


def model_key(row: pd.Series) -> Tuple:
    params = _params(row)
    if not params.get("static_vectors_input"):  # the table is then only pretraining's targets, not in the model
        params.pop("vectors", None)
    kept = tuple(sorted((k, repr(v)) for k, v in params.items()
                        if k not in COMPUTE_PARAMS and not is_pretraining_param(k) and v is not None))
    split = tuple(repr(_plain(row.get(c))) for c in SPLIT_COLUMNS)
    return (str(row.get("config_overrides", "{}")), split, kept)


def pretraining_key(row: pd.Series) -> Tuple:
    params = _params(row)
    if not params.get("pretrain_epochs"):
        return ()
    kept = tuple(sorted((k, repr(v)) for k, v in params.items()
                        if is_pretraining_param(k) and k != "pretrain_workers"))
    if not params.get("static_vectors_input"):  # the vectors table is pretraining's, the targets
        kept += (("vectors", repr(params.get("vectors"))),)
    return kept + (("include_unsup", repr(_plain(row.get("corpus.include_unsup")))),
                   ("pretrain_words", repr(_plain(row.get("corpus.pretrain_words")))))


# spaCy's quickstart textcat configs (``spacy init config -p textcat -o ...``, spaCy 3.8.18): the training
# settings both share, and the model params of each (analysis.stock_check trains them with `spacy train`).
STOCK_TRAINING: Dict[str, Any] = {"batch_schedule": "words", "batch_start": 100, "batch_stop": 1000,
                                  "batch_compound": 1.001, "dropout": 0.1, "learn_rate": 0.001, "L2": 0.01}
STOCK_MODELS: Dict[str, Dict[str, Any]] = {
    "efficiency": {"textcat_arch": "bow", "bow_ngram_size": 1, "bow_rows": 262144},
    "accuracy": {"textcat_arch": "ensemble", "bow_ngram_size": 1, "bow_rows": 262144, "width": 256, "depth": 8},
}
STOCK_ACCURACY_ROWS = [5000, 1000, 2500, 2500]
ROWS_OVERRIDE = "components.tok2vec.model.embed.rows"  # hash rows per attribute (NORM, PREFIX, SUFFIX, SHAPE)


def stock_config(params: Dict[str, Any], overrides: Dict[str, Any]) -> str:
    """``efficiency`` or ``accuracy`` when a trial trained spaCy's stock textcat model with the stock
    training settings (no parameter averaging), else ``""``. The accuracy config's own static vectors
    (en_core_web_lg) are not required: a trial without them or with another table still counts, and its
    label says which."""
    if overrides.get("training.optimizer.use_averages") is not False or params.get("pretrain_epochs"):
        return ""
    if any(params.get(k) != v for k, v in STOCK_TRAINING.items()):
        return ""
    for name, model in STOCK_MODELS.items():
        if all(params.get(k) == v for k, v in model.items()):
            if name == "accuracy" and overrides.get(ROWS_OVERRIDE) != STOCK_ACCURACY_ROWS:
                continue
            return name
    return ""


def vectors_label(params: Dict[str, Any]) -> str:
    if not params.get("static_vectors_input"):
        return "no static vectors"
    vectors = str(params.get("vectors") or "")
    return Path(vectors).name if vectors else "the corpus' vectors"


def _overrides(row: pd.Series) -> Dict[str, Any]:
    return json.loads(str(row.get("config_overrides") or "{}"))


def bow_label(params: Dict[str, Any]) -> str:
    n = params.get("bow_ngram_size") or 1
    grams = "unigrams" if n == 1 else f"1- to {n}-grams"
    return f"bag of words ({grams}, {int(params.get('bow_rows') or 0):,} rows)"


def model_label(row: pd.Series) -> str:
    """What the saved model is: the head (a bag of words, or the tok2vec pooled, or both), the tok2vec's
    table and shape, the config overrides; spaCy's stock configs named first."""
    params, overrides = _params(row), _overrides(row)
    arch = params.get("textcat_arch") or "reduce"
    stock = stock_config(params, overrides)
    if arch == "bow":
        label = bow_label(params)
    else:
        rows = overrides.get(ROWS_OVERRIDE)
        rows = "/".join(str(r) for r in rows) if isinstance(rows, list) else params.get("embed_rows")
        label = f"{vectors_label(params)}; width {params.get('width')}, depth {params.get('depth')}, " \
                f"embed rows {rows}"
        if arch == "ensemble":
            label = f"{bow_label(params)} + CNN ({label})"
    quickstart = overrides.get("training.optimizer.use_averages") is False and not params.get("pretrain_epochs") \
        and all(params.get(k) == v for k, v in STOCK_TRAINING.items())
    hidden = ("training.optimizer.use_averages",) if quickstart else ()
    hidden += (ROWS_OVERRIDE,) if arch != "bow" else ()  # in the label's "embed rows"
    shown = {k: v for k, v in overrides.items() if k not in hidden}
    if shown:
        label += "; " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
    if stock:
        return f"anchor: spaCy's stock textcat config `-o {stock}` ({label})"
    if quickstart:
        label += "; trained as the stock configs (word batches 100 -> 1000, no averaging)"
    elif arch == "bow":  # the stock model under this experiment's training recipe, not a stock config
        label += "; this experiment's training recipe"
    return label


def pretraining_label(row: pd.Series) -> str:
    params = _params(row)
    epochs = params.get("pretrain_epochs") or 0
    if not epochs:
        return "none"
    text = "labelled + unlabelled reviews" if _plain(row.get("corpus.include_unsup")) else "labelled reviews"
    words = _plain(row.get("corpus.pretrain_words"))
    if words:
        text += f", {words / 1e6:.1f}M words" if words >= 1e6 else f", {words_label(words)} words"
    if params.get("objective") in ("vectors", "trigram") and params.get("vectors"):
        text += f"; targets {Path(str(params['vectors'])).name}"
    return f"LMAO {params.get('objective')} {epochs} epoch{'s' if epochs != 1 else ''} ({text})"


def cells(trials: pd.DataFrame) -> List[Cell]:
    """Completed IMDB-style (textcat) trials grouped into cells, in table order, each pretrained cell
    paired with its model's cell without pretraining."""
    done = trials[(trials["status"] == "completed") & (trials["task"] == "textcat")] if not trials.empty else trials
    by_key: Dict[Tuple, Cell] = {}
    for _, row in done.sort_values("source", kind="stable").iterrows():
        device, mkey, pkey = device_class(row.get("device")), model_key(row), pretraining_key(row)
        params = _params(row)
        cell = by_key.get((device, mkey, pkey))
        if cell is None:
            objective = params.get("objective") if pkey else None
            order = (0, 0, 0.0, "") if not pkey else (
                1, OBJECTIVE_ORDER.get(str(objective), 9), float(params.get("pretrain_epochs") or 0), repr(pkey))
            cell = by_key[(device, mkey, pkey)] = Cell(device, model_label(row), pretraining_label(row), bool(pkey),
                                                        order, mkey, anchor=stock_config(params, _overrides(row)))
        seed = int(params.get("seed") or 0)
        if seed in cell.seeds:  # a repeat of the same trial (same seed) counts once, the first by source
            continue
        cell.seeds[seed] = float(row["best_dev_score"])
        cell.sources.append(str(row["source"]))
        for values, column in ((cell.sizes, "model_size_bytes"), (cell.speeds, "inference_words_per_second")):
            value = _plain(row.get(column))
            if value is not None:
                values.append(float(value))
    out = list(by_key.values())
    _disambiguate(out)
    baselines = {(c.device, c.model_key): c for c in out if not c.pretrained}
    for cell in out:
        base = baselines.get((cell.device, cell.model_key))
        if cell.pretrained and base is not None:
            pairs = [(cell.seeds[s], base.seeds[s]) for s in sorted(cell.seeds) if s in base.seeds]
            if pairs:
                diff, _, p = paired_t_test(pairs)
                cell.paired_n, cell.paired_diff, cell.paired_p = len(pairs), 100 * diff, p
    model_size = {}
    for cell in out:  # a model's place in the table: its smallest measured size
        key = (cell.device, cell.model_key)
        model_size[key] = min(model_size.get(key, np.inf), cell.size_mb if cell.sizes else np.inf)
    out.sort(key=lambda c: (c.device, model_size[(c.device, c.model_key)], c.model, c.order))
    return out


STOCK_CHECK_MODEL = ("anchor: `spacy train` itself on spaCy's stock textcat config `-o efficiency` "
                     "(its own loop: dev scored every 200 steps, the best kept)")


def stock_check_cells(folders: Sequence[Path]) -> List[Cell]:
    """spaCy's own ``spacy train`` on its stock config (``analysis.stock_check``'s ``seed-N/results.json``),
    one anchor cell per folder: the baseline exactly as a spaCy user gets it, beside the same model trained
    by ``lmao trial`` (which scores dev once an epoch, so it picks its best among fewer checkpoints)."""
    from experiments.common.errors import InputError

    out = []
    for folder in map(Path, folders):
        files = sorted(folder.glob("seed-*/results.json"))
        if not files:
            raise InputError(folder, "no seed-N/results.json (make stock-check writes them)")
        cell = Cell("cpu", STOCK_CHECK_MODEL, "none", False, (0, 0, 0.0, ""), ("spacy train", str(folder)),
                    anchor="efficiency")
        for path in files:
            found = json.loads(path.read_text(encoding="utf-8"))
            if "dev_accuracy" not in found or "seed" not in found:
                raise InputError(path, "not a stock-check result (no dev_accuracy / seed)")
            cell.seeds[int(found["seed"])] = float(found["dev_accuracy"])
            cell.sizes.append(float(found["model_size_bytes"]))
            cell.sources.append(str(path))
        out.append(cell)
    return out


def _disambiguate(items: List[Cell]) -> None:
    """Two different models that print the same, or two recipes of one model that do, get a number, so
    no row hides another (recipes are told apart within their model's rows only)."""
    for attr, key, scope in (("model", lambda c: c.model_key, lambda c: ()),
                             ("pretraining", lambda c: c.order, lambda c: (c.device, c.model_key))):
        seen: Dict[Tuple, List[Any]] = {}
        for cell in sorted(items, key=lambda c: (repr(c.model_key), repr(c.order), c.device)):
            label = getattr(cell, attr)
            keys = seen.setdefault((scope(cell), label), [])
            if key(cell) not in keys:
                keys.append(key(cell))
            index = keys.index(key(cell))
            if index:
                setattr(cell, attr, f"{label} (variant {index + 1})")


# ---------------------------------------------------------------------------------------------- formatting


def _f(value: float, digits: int = 1, sign: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def p_text(p: float) -> str:
    if not np.isfinite(p):
        return "—"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def score_text(cell: Cell) -> str:
    return f"{_f(cell.mean, 2)} ± {_f(cell.std, 2)}" if cell.n > 1 else f"{_f(cell.mean, 2)} (1 seed)"


def paired_text(cell: Cell) -> str:
    if not cell.pretrained:
        return ""
    if not cell.paired_n:
        return "no seed-matched trial without pretraining"
    return f"{_f(cell.paired_diff, 2, sign=True)} (n={cell.paired_n}, p = {p_text(cell.paired_p)})"


def speed_text(cell: Cell) -> str:
    if not np.isfinite(cell.words_per_second):
        return "—"
    low, high = cell.speed_range
    spread = f" ({_f(low / 1e3)}–{_f(high / 1e3)})" if np.isfinite(low) and np.isfinite(high) else ""
    return _f(cell.words_per_second / 1e3) + spread


def table_frame(items: Sequence[Cell]) -> pd.DataFrame:
    rows = []
    for cell in items:
        rows.append({
            "device": cell.device.upper(), "model": cell.model, "size (MB)": _f(cell.size_mb),
            "LMAO pretraining": cell.pretraining, "n": cell.n if cell.n >= FULL_SEEDS else f"{cell.n} (of {FULL_SEEDS})",
            "best dev accuracy (%), mean ± std": score_text(cell),
            "vs. no pretraining, paired by seed (points)": paired_text(cell),
            "inference (k words per CPU-s, side by side: median (slowest–fastest round))": speed_text(cell),
        })
    return pd.DataFrame(rows)


def csv_frame(items: Sequence[Cell]) -> pd.DataFrame:
    def r(value: float, digits: int = 4) -> Optional[float]:
        return round(float(value), digits) if value is not None and np.isfinite(value) else None

    return pd.DataFrame([{
        "device": c.device, "model": c.model, "pretraining": c.pretraining, "pretrained": c.pretrained,
        "n": c.n, "seeds": " ".join(map(str, sorted(c.seeds))), "mean": r(c.mean), "std": r(c.std),
        "size_mb": r(c.size_mb), "inference_words_per_second": r(c.words_per_second, 1),
        "inference_words_per_second_min": r(c.speed_range[0], 1),
        "inference_words_per_second_max": r(c.speed_range[1], 1),
        "paired_n": c.paired_n, "paired_diff": r(c.paired_diff), "paired_p": r(c.paired_p, 6),
        "on_size_front": c in size_front(items, c.device), "sources": " ".join(sorted(c.sources)),
    } for c in items])


def size_front(items: Sequence[Cell], device: str) -> List[Cell]:
    """Cells no other cell of the device beats on both size (smaller) and mean accuracy (higher)."""
    from .plots import pareto_front

    own = [c for c in items if c.device == device and c.sizes]
    front = pareto_front(np.array([c.size_mb for c in own]), np.array([c.mean for c in own]), True)
    return [own[i] for i in front]


def _within(items: Sequence[Cell], device: str, budget: Optional[float]) -> List[Cell]:
    return [c for c in items if c.device == device and c.sizes and (budget is None or c.size_mb <= budget)]


def _best(items: Sequence[Cell]) -> Optional[Cell]:
    return max(items, key=lambda c: (c.mean, -c.size_mb, c.model, c.pretraining)) if items else None


def _describe(cell: Cell) -> str:
    score = f"{_f(cell.mean, 2)} ± {_f(cell.std, 2)} %" if cell.n > 1 else f"{_f(cell.mean, 2)} %"
    return f"**{score}** (n={cell.n}; {cell.size_mb:.1f} MB; {cell.model}; pretraining: {cell.pretraining})"


def headline(items: Sequence[Cell]) -> str:
    """The answer in a few lines: per device and budget, the best cell and what pretraining buys there."""
    lines: List[str] = []
    devices = sorted({c.device for c in items})
    for device in devices:
        lines.append(f"IMDB-1k best dev accuracy by model size ({device.upper()} trials; mean over seeds, "
                     f"n = seeds; cells with fewer than {FULL_SEEDS} seeds are named as such):")
        lines.append("")
        previous: Optional[Tuple[float, Cell]] = None  # the last budget and its best cell with every seed
        for budget in BUDGETS_MB:
            within = _within(items, device, budget)
            name = f"≤ {budget:g} MB" if budget is not None else "any size"
            if not within:
                lines.append(f"- **{name}**: no completed trial yet.")
                continue
            full = [c for c in within if c.n >= FULL_SEEDS]
            best = _best(full)
            if best is not None and previous is not None and best is previous[1]:
                # A bigger budget that buys nothing: say so, and what the best of the larger models reaches.
                text = f"- **{name}**: the same model; no larger model has a higher mean."
                larger = _best([c for c in full if c.size_mb > previous[0]])
                if larger is None:
                    text += f" No model above {previous[0]:g} MB has {FULL_SEEDS} seeds yet."
                else:
                    text += f" The best above {previous[0]:g} MB: {_describe(larger)}. " + _effect_at(items, larger)
            elif best is None:
                best = _best(within)
                text = f"- **{name}**: no model with {FULL_SEEDS} seeds yet; best so far {_describe(best)}."
            else:
                text = f"- **{name}**: {_describe(best)}."
            if best is not None and best.n >= FULL_SEEDS:
                partial = _best([c for c in within if c.n < FULL_SEEDS and c.mean > best.mean])
                if partial is not None:
                    text += f" Higher so far with fewer seeds: {score_text(partial)} (n={partial.n}, {partial.pretraining})."
            if previous is None or best is not previous[1]:
                without = _best([c for c in (full or within) if not c.pretrained])
                if best.pretrained and without is not None:
                    other = "" if without.model_key == best.model_key else f"; {without.model}"
                    text += f" Best without pretraining: {score_text(without)} (n={without.n}, {without.size_mb:.1f} MB{other})."
                text += " " + _effect_at(items, best)
            if best.n >= FULL_SEEDS and budget is not None:
                previous = (budget, best)
            lines.append(text)
        lines.extend(against_stock(items, device))
        lines.append("")
    return "\n".join(lines).rstrip()


STOCK_BUDGETS_MB: Tuple[float, ...] = (4.0, 10.0)


def against_stock(items: Sequence[Cell], device: str) -> List[str]:
    """The best model at 4 and 10 MB against spaCy's stock efficiency config (the bag of words a user
    gets from ``spacy init config -p textcat``), when that anchor has every seed on this device; of two
    such anchors (``spacy train``'s own, ``lmao trial``'s) the stronger."""
    anchor = _best([c for c in items if c.device == device and c.anchor == "efficiency" and c.n >= FULL_SEEDS])
    if anchor is None:
        return []
    lines = []
    for budget in STOCK_BUDGETS_MB:
        best = _best([c for c in _within(items, device, budget) if c.n >= FULL_SEEDS and not c.anchor])
        if best is None:
            continue
        diff = best.mean - anchor.mean
        trainer = "`spacy train` itself" if anchor.model == STOCK_CHECK_MODEL else "`lmao trial`"
        lines.append(f"- **Against spaCy's stock textcat at ≤ {budget:g} MB**: {_f(diff, 2, sign=True)} points over "
                     f"the stock `-o efficiency` config trained by {trainer} ({score_text(anchor)}, n={anchor.n}, "
                     f"{anchor.size_mb:.1f} MB) "
                     f"at {best.size_mb:.1f} MB: {score_text(best)} (n={best.n}; {best.model}; "
                     f"pretraining: {best.pretraining}).")
    return lines


def _effect_at(items: Sequence[Cell], best: Cell) -> str:
    """What pretraining buys at the best cell's model: its own paired effect, or the best pretrained cell
    of that model against it."""
    if best.pretrained:
        if not best.paired_n:
            return "No seed-matched trial without pretraining yet."
        # Name the twin: the budget's best model without pretraining may be another model.
        twin = next(c for c in items if not c.pretrained and (c.device, c.model_key) == (best.device, best.model_key))
        paired = f"paired by seed, n={best.paired_n}, p = {p_text(best.paired_p)}"
        if not best.paired_p < NOISE_P:  # say so plainly (NaN too): the best mean may rest on one lucky seed
            return (f"Pretraining's {_f(best.paired_diff, 2, sign=True)} points on this model, against "
                    f"{score_text(twin)} without it, are within seed noise ({paired}, not below {NOISE_P}).")
        return (f"Pretraining buys {_f(best.paired_diff, 2, sign=True)} points on this model, against "
                f"{score_text(twin)} without it ({paired}).")
    same = [c for c in items if c.pretrained and c.device == best.device and c.model_key == best.model_key and c.paired_n]
    lmao = _best(same)
    if lmao is None:
        return "No LMAO-pretrained trial of that model yet."
    return (f"The best pretraining there ({lmao.pretraining}) changes it by {_f(lmao.paired_diff, 2, sign=True)} points "
            f"(paired by seed, n={lmao.paired_n}, p = {p_text(lmao.paired_p)}).")


def markdown(items: Sequence[Cell]) -> str:
    from .tables import to_markdown

    devices = ", ".join(sorted({c.device.upper() for c in items}))
    notes = [
        f"One row per model and pretraining recipe ({devices} trials; CPU and GPU trials are never pooled). "
        "Size: `model-best/` on disk (median over seeds); inference: words per CPU-second of each model "
        "(untrained weights of the trained shapes) timed side by side in one run by `make frontier-speed` "
        "(`frontier-speed.csv`), CPU rows only, never a trial's own logged speed: the median round, and in "
        "brackets the slowest and fastest, so speeds whose ranges overlap are not told apart. n: seeds; the "
        "paired column compares each pretrained row with the "
        "same model without pretraining, seed by seed (paired t-test).",
    ]
    return "\n".join([to_markdown(table_frame(items)), "", *notes])


# --------------------------------------------------------------------------------------------------- plot


# The size axis: logarithmic from 1 MB to 2 GB, so the original's 1.3 GB table-sized models and a
# DistilBERT classifier sit on the axis of the few-MB models (analysis.reference.SIZE_REFERENCES).
SIZE_AXIS_MB = 2000.0
CORNER_LABEL_MB = 5.0  # anchors this small are labelled in the size panel's top-left corner


def size_tick(mb: float, _pos: Any = None) -> str:
    return f"{mb / 1000:g} GB" if mb >= 1000 else f"{mb:g} MB"


def reference_points(ax: Any) -> None:
    """The sizes and scores measured elsewhere (not here, not comparable: best-of-N, another split or no
    score at all) as grey annotations, never as data points."""
    from .reference import SIZE_REFERENCES

    for i, (label, size_mb, score) in enumerate(SIZE_REFERENCES):
        if score is None:
            ax.axvline(size_mb, color="#999999", linestyle="--", linewidth=0.8)
            ax.annotate(label, (size_mb, 0.3), xycoords=("data", "axes fraction"), rotation=90, fontsize=6,  # above the legend
                        color="#777777", xytext=(-9, 0), textcoords="offset points", va="bottom")
        else:
            ax.plot([size_mb], [score], marker="*", color="#999999", markersize=9, linestyle="none")
            ax.annotate(label, (size_mb, score), textcoords="offset points", xytext=(-8, 0), fontsize=6,
                        color="#777777", ha="right", va="center")  # beside its own star, level with it


def plot(items: Sequence[Cell], path: Path) -> Optional[Path]:
    """Accuracy against model size and against inference speed, one marker per cell (± std over seeds),
    LMAO-pretrained cells as triangles, the Pareto front over cell means per device."""
    import matplotlib.ticker

    from .plots import SAVE, pareto_front, plt

    own = [c for c in items if c.sizes]
    if not own:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    colour = {"cpu": "#1f77b4", "gpu": "#d62728", "unknown": "#7f7f7f"}
    panels = ((axes[0], "size_mb", "model size (MB)", True), (axes[1], "words_per_second",
                                                              "inference speed (k words/s)", False))
    for ax, attr, label, smaller in panels:
        scale = 1e-3 if attr == "words_per_second" else 1.0
        for device in sorted({c.device for c in own}):
            cells_d = [c for c in own if c.device == device and np.isfinite(getattr(c, attr))]
            if not cells_d:
                continue
            x = np.array([getattr(c, attr) * scale for c in cells_d])
            y = np.array([c.mean for c in cells_d])
            kinds = ((False, False, "o", "no pretraining"), (True, False, "^", "LMAO pretraining"),
                     (False, True, "s", "spaCy's stock textcat config (anchor)"))
            for pretrained, anchor, marker, name in kinds:
                mask = np.array([c.pretrained == pretrained and bool(c.anchor) == anchor for c in cells_d])
                if mask.any():
                    err = np.array([c.std if np.isfinite(c.std) else 0.0 for c in cells_d])[mask]
                    xerr = None
                    if attr == "words_per_second":  # the slowest and fastest round, around the median
                        spread = [(c.words_per_second - c.speed_range[0], c.speed_range[1] - c.words_per_second)
                                  if np.isfinite(c.speed_range[0]) else (0.0, 0.0) for c in cells_d]
                        xerr = (np.array(spread).T * scale)[:, mask]
                    ax.errorbar(x[mask], y[mask], yerr=err, xerr=xerr, fmt=marker, color=colour[device],
                                mfc=colour[device] if pretrained else "white", capsize=2, markersize=6,
                                label=f"{device.upper()}: {name}")
            cornered = 0  # small anchors' labels stacked in the size panel's top-left corner
            for c, xi, yi in sorted(zip(cells_d, x, y), key=lambda t: -t[2]):
                if c.anchor:
                    by_spacy = c.model == STOCK_CHECK_MODEL
                    seeds = f", n={c.n}" if c.n < FULL_SEEDS else ""  # in the label: two texts would overlap
                    text = f"stock -o {c.anchor} ({'spacy train' if by_spacy else 'lmao trial'}{seeds})"
                    if attr == "size_mb" and c.size_mb <= CORNER_LABEL_MB:
                        # Beside the point the label would run over the 6-10 MB models; a thin line leads to it.
                        ax.annotate(text, (xi, yi), xytext=(0.015, 0.95 - 0.05 * cornered), textcoords="axes fraction",
                                    va="top", fontsize=7, color=colour[device],
                                    arrowprops=dict(arrowstyle="-", color=colour[device], lw=0.5, alpha=0.6,
                                                    shrinkA=1, shrinkB=4))
                        cornered += 1
                    else:
                        ax.annotate(text, (xi, yi), textcoords="offset points",
                                    xytext=(5, 4 if by_spacy else -10), fontsize=7, color=colour[device])
                elif c.n < FULL_SEEDS:
                    ax.annotate(f"n={c.n}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7,
                                color="#555555")
            front = pareto_front(x, y, smaller)
            ax.step(x[front], y[front], where="post", color=colour[device], linewidth=0.8, alpha=0.6,
                    label=f"{device.upper()}: Pareto front (means)")
        if attr == "size_mb":
            for budget in BUDGETS_MB:
                if budget is not None:
                    ax.axvline(budget, color="grey", linestyle=":", linewidth=1)
                    ax.annotate(f"{budget:g} MB", (budget, 1), xycoords=("data", "axes fraction"), xytext=(2, -10),
                                textcoords="offset points", fontsize=7, color="grey")
            reference_points(ax)
            ax.set_xscale("log")
            ax.set_xlim(1.0, max(SIZE_AXIS_MB, 1.2 * max(c.size_mb for c in own)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(size_tick))
        if attr == "words_per_second" and any(np.isfinite(c.words_per_second) for c in own):
            ax.set_xscale("log")  # a bag of words runs ~50x a CNN: on a linear axis every CNN is one column
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda k, _pos: f"{k:g}k"))
        if attr == "words_per_second" and not any(np.isfinite(c.words_per_second) for c in own):
            ax.text(0.5, 0.5, "no side-by-side speed measurement\n(make frontier-speed)", ha="center",
                    va="center", transform=ax.transAxes, color="grey")
        elif attr == "words_per_second":
            label = ("inference speed (words per CPU-second, log scale, all models side by side: frontier-speed.csv;\n"
                     "median, bars: slowest to fastest round)")
        ax.set_xlabel(label)
        ax.set_ylabel("best dev accuracy (%), mean ± std over seeds")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            # "best" weighs points, not labels: on the size axis it covered the anchors' labels at the bottom right
            ax.legend(fontsize=7, loc="lower left" if attr == "size_mb" else "best")
    fig.suptitle("IMDB-1k: accuracy against model size and speed (triangles: LMAO-pretrained; squares: spaCy's "
                 "stock configs;\nstars and dashed line: sizes and scores from elsewhere, not measured here; "
                 "n<3: fewer seeds)")
    fig.tight_layout()
    fig.savefig(path, **SAVE)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------------- report


def read_speeds(path: Path) -> Optional[Dict[str, Tuple[float, float, float]]]:
    """Model label -> side-by-side (median, slowest, fastest round) words/s from ``path``, or None when
    the file is absent. A file without the spread columns gives the median for all three."""
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    speeds = {}
    for r in frame.to_dict("records"):
        median = float(r["words_per_second"])
        speeds[str(r["model"])] = (median, float(r.get("min_words_per_second", median)),
                                   float(r.get("max_words_per_second", median)))
    return speeds


def frontier_report(runs: Sequence[Path], out: Path, *, readme: Optional[Path] = None, block: str = OUTPUT,
                    table_readme: Optional[Path] = None, table_block: str = OUTPUT,
                    speeds: Optional[Path] = None, stock: Sequence[Path] = ()) -> List[str]:
    """Write ``frontier.md``, ``frontier.csv`` and ``frontier.png`` into ``out`` and the README blocks;
    returns the messages to print. Inference speeds come only from ``speeds`` (``analysis.speeds``: every
    model timed side by side in one run), never from the speeds trials recorded under whatever load
    their machine had; without it the speed column and axis stay empty. ``stock``: ``make stock-check``
    folders, added as anchors (``stock_check_cells``)."""
    from experiments.common.errors import InputError
    from experiments.storage.fileio import write_text

    from .load import load_all
    from .report import relpath, update_readme, write_csv

    missing = [str(r) for r in runs if not Path(r).exists()]
    if missing:
        raise InputError(missing[0], "runs folder not found")
    loaded = load_all(list(runs))
    items = cells(loaded.trials) if not loaded.empty else []
    if not items:
        raise InputError(", ".join(map(str, runs)), "no completed text classification trials: no frontier to report")
    for anchor in stock_check_cells(stock):  # first of its device's anchors, else by device and size
        at = next((i for i, c in enumerate(items) if (c.device, c.anchor) == (anchor.device, anchor.anchor)), None)
        if at is None:
            at = next((i for i, c in enumerate(items) if (c.device, c.size_mb) > (anchor.device, anchor.size_mb)),
                      len(items))
        items.insert(at, anchor)

    measured = read_speeds(Path(speeds)) if speeds is not None else None
    if speeds is not None and measured is None:
        raise InputError(speeds, "speed file not found (make frontier-speed writes it)")
    # spacy train's run of a stock config is the same model as the trial-trained anchor: the same speed
    same_model = {c.anchor: c.model for c in items if c.anchor and c.model != STOCK_CHECK_MODEL}
    for cell in items:  # the file is a CPU measurement: GPU cells get no speed from it
        key = same_model.get(cell.anchor, cell.model) if cell.model == STOCK_CHECK_MODEL else cell.model
        if measured and key in measured and cell.device == "cpu":
            median, low, high = measured[key]
            cell.speeds, cell.speed_range = [median], (low, high)
        else:
            cell.speeds = []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(items)
    head = headline(items)
    png = plot(items, out / f"{OUTPUT}.png")
    write_text(out / f"{OUTPUT}.md", "# IMDB-1k: accuracy by model size\n\n" + head + "\n\n" + table + "\n"
               + (f"\n![frontier]({png.name})\n" if png else ""))
    write_csv(csv_frame(items), out / f"{OUTPUT}.csv")
    messages = [f"frontier: {sum(c.n for c in items)} trials in {len(items)} cells -> {out / OUTPUT}.md"]
    sources = sorted({s for c in items for s in c.sources})
    provenance = (f"_Generated by `make report` from {len(sources)} raw result files "
                  f"(listed in `{{csv}}`, column `sources`); edits between the markers are overwritten._")
    for path, name, body in ((readme, block, head), (table_readme, table_block, table)):
        if path is None:
            continue
        path = Path(path)
        text = provenance.format(csv=relpath(out / f"{OUTPUT}.csv", path.parent)) + "\n\n" + body
        if png is not None and body is table:
            text += f"\n\n![accuracy against size and speed]({relpath(png, path.parent)})"
        message = update_readme(path, text, block=name)
        if message.startswith("skipped"):
            raise InputError(path, message.split(": ", 1)[1])
        messages.append(message)
    return messages
