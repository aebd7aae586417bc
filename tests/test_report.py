"""``lmao report`` / ``analysis``: synthetic result files with known values -> exact table cells, CI
bounds, skipped-file reporting, README markers, plots, determinism, the no-runs message, and the
Optuna and GCS (real local emulator) loaders; the Polyaxon loader runs against Polyaxon's own server in
test_report_polyaxon.py."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import build_report, load_all
from analysis.load import words_label
from analysis.report import END, START, replace_section, update_readme
from analysis.stats import bootstrap_ci
from analysis.tables import build_tables


def result(
    experiment: str = "lmao-imdb-1k",
    *,
    curve: Sequence[float],
    seed: int = 0,
    pretrain_epochs: int = 0,
    objective: Optional[str] = None,
    words: int = 0,
    status: str = "completed",
    width: int = 96,
    learn_rate: float = 0.001,
    size: int = 4_000_000,
    speed: float = 30_000.0,
    minute: int = 0,
) -> Dict[str, Any]:
    """A schema-v1 result dict whose best score is max(curve)."""
    task = "ner" if "ner" in experiment else "textcat"
    best = int(np.argmax(curve))
    return {
        "schema_version": 1, "experiment": experiment, "task": task, "status": status, "error": None,
        "params": {"width": width, "depth": 4, "learn_rate": learn_rate, "seed": seed,
                   "pretrain_epochs": pretrain_epochs, "objective": objective or "vectors"},
        "seed": seed, "metric": "ents_f" if task == "ner" else "accuracy",
        "pretraining": {"objective": objective, "epochs": pretrain_epochs, "words_seen": words},
        "epochs": [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "dev_score": s, "seconds": 1.0}
                   for i, s in enumerate(curve)],
        "best_epoch": best + 1, "best_dev_score": float(curve[best]) if status == "completed" else None,
        "model_size_bytes": size, "inference_words_per_second": speed,
        "data": {"train_docs": 1000, "dev_docs": 10000},
        "started_at": f"2026-01-01T10:{minute:02d}:00+00:00", "finished_at": f"2026-01-01T11:{minute:02d}:00+00:00",
        "wall_seconds": 3600.0,
    }


def write(root: Path, name: str, data: Any) -> Path:
    path = root / name / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


BASE = [0.80, 0.82, 0.84]  # baseline, seeds 0-2
PRE1 = [0.82, 0.86, 0.87]  # 1 epoch vectors, same config and seeds: differences 2, 4, 3 points


def imdb_runs(root: Path) -> Path:
    for seed, (b, p) in enumerate(zip(BASE, PRE1)):
        write(root, f"sweep/base-{seed}", result(curve=[b - 0.05, b], seed=seed, size=2_000_000, minute=seed))
        write(root, f"sweep/pre1-{seed}", result(curve=[p - 0.05, p, p - 0.01], seed=seed, pretrain_epochs=1,
                                                  objective="vectors", size=3_000_000, minute=10 + seed))
    # pruned at a high early score: must not become "best" nor enter a mean
    write(root, "sweep/pre2-pruned", result(curve=[0.99], pretrain_epochs=2, objective="vectors",
                                            status="pruned", minute=20))
    # unusable files: listed as skipped, never dropped silently
    write(root, "sweep/broken", '{"schema_version": 1, "status": "compl')
    write(root, "sweep/running", result(curve=[0.9], status="running"))
    failed = result(curve=[0.9], status="failed")
    failed["error"] = "CUDA out of memory"
    write(root, "sweep/failed", failed)
    write(root, "sweep/old-schema", {**result(curve=[0.9]), "schema_version": 7})
    write(root, "sweep/no-epochs", {k: v for k, v in result(curve=[0.9]).items() if k != "epochs"})
    return root


NER_CURVES = {
    # setting -> list of (seed, words, objective, curve)
    "baseline": [(0, 0, None, [0.70, 0.75, 0.78]), (1, 0, None, [0.69, 0.74, 0.77])],
    "50M words (vectors)": [(0, 50_001_234, "vectors", [0.74, 0.77, 0.79]),
                            (1, 49_990_000, "vectors", [0.73, 0.76, 0.785])],
    "50M words (trigram)": [(0, 50_000_000, "trigram", [0.75, 0.78, 0.775])],
}


def ner_runs(root: Path) -> Path:
    for setting, runs in NER_CURVES.items():
        for seed, words, objective, curve in runs:
            tag = setting.split()[0] + (objective or "base")
            write(root, f"ner/{tag}-{seed}", result("ontonotes-ner", curve=curve, seed=seed, words=words,
                                                     objective=objective, pretrain_epochs=1 if words else 0))
    return root


def md_rows(markdown: str) -> Dict[str, List[str]]:
    """First markdown table in ``markdown``: first cell -> the row's cells (header under 'header')."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines if not line.startswith("|---")]
    return {"header": rows[0], **{row[0]: row for row in rows[1:]}}


def cell(markdown: str, row: str, column: str) -> str:
    rows = md_rows(markdown)
    return rows[row][rows["header"].index(column)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One full report over IMDB + NER runs (plots included), shared by the assertions below."""
    root = tmp_path_factory.mktemp("runs")
    imdb_runs(root)
    ner_runs(root)
    readmes = tmp_path_factory.mktemp("repo")
    (readmes / "lmao-imdb-1k").mkdir()
    (readmes / "lmao-imdb-1k" / "README.md").write_text(
        f"# IMDB\n\nintro\n\n{START}\nold table\n{END}\n\nfooter text\n", encoding="utf-8")
    (readmes / "README.md").write_text("# Top\n\n<!-- campaigns:start -->\nold\n<!-- campaigns:end -->\n\nend\n")
    out = tmp_path_factory.mktemp("out") / "results"
    loaded = load_all([root])
    res = build_report(loaded, out, readme_root=readmes, inputs=[str(root)])
    return SimpleNamespace(root=root, out=out, loaded=loaded, result=res, readmes=readmes)


def test_imdb_table_cells(report):
    md = (report.out / "lmao-imdb-1k.md").read_text()
    assert cell(md, "baseline", "best (%)") == "84.0"
    assert cell(md, "baseline", "mean ± std (%)") == "82.0 ± 2.0"
    assert cell(md, "baseline", "sample") == "3 seeds of best config"
    assert cell(md, "baseline", "n trials") == "3"
    assert cell(md, "baseline", "size (MB)") == "2.0"
    assert cell(md, "baseline", "original: best of 50 random-search runs (%)") == "86.8"
    assert cell(md, "1 epoch (vectors)", "best (%)") == "87.0"
    assert cell(md, "1 epoch (vectors)", "mean ± std (%)") == "85.0 ± 2.6"
    assert cell(md, "1 epoch (vectors)", "size (MB)") == "3.0"
    assert cell(md, "1 epoch (vectors)", "original: best of 50 random-search runs (%)") == "87.5"
    # the pruned 99% trial is neither best nor counted
    assert cell(md, "2 epochs (vectors)", "best (%)") == "—"
    assert cell(md, "2 epochs (vectors)", "n trials") == "0"
    assert cell(md, "2 epochs (vectors)", "pruned") == "1"
    # an original row we have no runs for still shows the original's number
    assert cell(md, "3 epochs (vectors)", "original: best of 50 random-search runs (%)") == "86.5"
    assert cell(md, "3 epochs (vectors)", "n trials") == "0"
    assert "Not the protocol's scale" not in md  # 1000 / 10000 docs, as the protocol
    assert list(md_rows(md))[1:] == ["baseline", "1 epoch (vectors)", "2 epochs (vectors)", "3 epochs (vectors)"]
    csv = pd.read_csv(report.out / "lmao-imdb-1k.csv").set_index("setting")
    assert csv.loc["1 epoch (vectors)", "best"] == pytest.approx(87.0)
    assert csv.loc["baseline", "mean"] == pytest.approx(82.0)
    assert csv.loc["baseline", "std"] == pytest.approx(2.0)
    assert csv.loc["1 epoch (vectors)", "n_trials"] == 3


def test_units_and_no_ci_from_fewer_than_3_values(report):
    """Every score header says %; a CI needs 3 values (2 give the labelled range, 1 a dash)."""
    md = (report.out / "lmao-imdb-1k.md").read_text()
    assert md_rows(md)["header"][:6] == ["pretraining", "best (%)", "mean ± std (%)", "95% CI (%)", "sample",
                                         "n trials"]
    assert md.startswith("### lmao-imdb-1k: dev accuracy (%) by pretraining setting")
    low, high = bootstrap_ci(np.array(BASE))
    assert cell(md, "baseline", "95% CI (%)") == f"[{100 * low:.1f}, {100 * high:.1f}]"  # 3 seeds
    ner = (report.out / "ontonotes-ner.md").read_text()
    assert "dev ents_f (%) per fine-tuning epoch" in ner
    assert [row for row in md_rows(ner) if "(%)" in row] == ["best (%)", "mean ± std (%)", "95% CI (%)"]
    assert cell(ner, "95% CI (%)", "baseline") == "range [77.0, 78.0] (2 values, no CI)"  # 2 seeds
    assert cell(ner, "95% CI (%)", "50M words (trigram)") == "—"  # 1 trial
    assert "No CI is computed from fewer than 3 values" in ner
    summary = pd.read_csv(report.out / "ontonotes-ner.csv").set_index("setting")
    assert summary.loc["baseline", ["ci_low", "ci_high"]].isna().all()
    assert summary.loc["baseline", ["sample_min", "sample_max"]].tolist() == [77.0, 78.0]


def test_significance_is_paired_over_seeds(report):
    md = (report.out / "lmao-imdb-1k.md").read_text()
    expected = sps.ttest_rel(PRE1, BASE)
    line = next(line for line in md.splitlines() if line.startswith("- 1 epoch (vectors) vs baseline"))
    assert "+3.00 points (mean paired difference)" in line
    assert "paired t-test over 3 pairs" in line
    assert f"t = {expected.statistic:.2f}" in line and f"p = {expected.pvalue:.3g}" in line
    assert not any(line.startswith("- 2 epochs (vectors) vs baseline") for line in md.splitlines())


def test_unpaired_falls_back_to_mann_whitney(tmp_path):
    for i, score in enumerate([0.80, 0.81, 0.82]):
        write(tmp_path, f"b{i}", result(curve=[score], width=64 + i))
    for i, score in enumerate([0.84, 0.85, 0.86]):
        write(tmp_path, f"p{i}", result(curve=[score], width=200 + i, pretrain_epochs=1, objective="vectors"))
    loaded = load_all([tmp_path])
    table = build_tables(loaded.trials, loaded.epochs)[0]
    expected = sps.mannwhitneyu([0.84, 0.85, 0.86], [0.80, 0.81, 0.82], alternative="two-sided")
    assert "Mann-Whitney U, two-sided, over 3 vs 3 distinct completed trials" in table.markdown
    assert f"U = {expected.statistic:.2f}, p = {expected.pvalue:.3g}" in table.markdown
    assert "+4.00 points (difference of medians)" in table.markdown
    # distinct configs, no seed repeats: the sample is the top-k trials
    assert cell(table.markdown, "baseline", "sample") == "top 3 of 3"


def test_repeated_runs_count_once(tmp_path):
    """Two studies with one sampler seed re-run the same point: a repeat is not a new sample."""
    write(tmp_path, "a/t0", result(curve=[0.80], seed=0))
    write(tmp_path, "b/t0", result(curve=[0.80], seed=0, minute=5))  # same config and seed as a/t0, run again
    write(tmp_path, "a/t1", result(curve=[0.84], seed=1))
    write(tmp_path, "a/t2", result(curve=[0.70], seed=0, width=64))
    loaded = load_all([tmp_path])
    md = build_tables(loaded.trials, loaded.epochs)[0].markdown
    assert cell(md, "baseline", "sample") == "2 seeds of best config"
    assert cell(md, "baseline", "mean ± std (%)") == "82.0 ± 2.8"
    assert cell(md, "baseline", "95% CI (%)") == "range [80.0, 84.0] (2 values, no CI)"
    assert cell(md, "baseline", "n trials") == "4"
    write(tmp_path, "a/t1", result(curve=[0.84], seed=1, width=128))  # no seed repeats any more
    loaded = load_all([tmp_path])
    md = build_tables(loaded.trials, loaded.epochs)[0].markdown
    assert cell(md, "baseline", "sample") == "top 3 of 3 distinct runs"
    assert cell(md, "baseline", "mean ± std (%)") == "78.0 ± 7.2"


def test_config_overrides_are_part_of_a_config(tmp_path):
    """Same params and seed but different spaCy config overrides: not the same config, not a pair."""
    for seed, (b, p) in enumerate(zip(BASE, PRE1)):
        write(tmp_path, f"b{seed}", {**result(curve=[b], seed=seed), "config_overrides": {"training.x": 1}})
        write(tmp_path, f"p{seed}", {**result(curve=[p], seed=seed, pretrain_epochs=1, objective="vectors"),
                                     "config_overrides": {"training.x": 2}})
    write(tmp_path, "b9", {**result(curve=[0.7], seed=9), "config_overrides": {"training.x": 3}})
    loaded = load_all([tmp_path])
    table = build_tables(loaded.trials, loaded.epochs)[0]
    assert "Mann-Whitney U" in table.markdown and "paired t-test" not in table.markdown
    assert cell(table.markdown, "baseline", "sample") == "3 seeds of best config"


def test_bootstrap_ci_bounds(tmp_path):
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(0.85, 0.01, size=40), 6)
    for seed, score in enumerate(scores):
        write(tmp_path, f"t{seed}", result(curve=[float(score)], seed=seed))
    loaded = load_all([tmp_path])
    table = build_tables(loaded.trials, loaded.epochs)[0]
    row = table.csv.set_index("setting").loc["baseline"]
    half = 1.96 * scores.std(ddof=1) / np.sqrt(len(scores))
    assert row["ci_low"] == pytest.approx(100 * (scores.mean() - half), abs=100 * 0.2 * half)
    assert row["ci_high"] == pytest.approx(100 * (scores.mean() + half), abs=100 * 0.2 * half)
    assert row["ci_low"] < 100 * scores.mean() < row["ci_high"]
    assert row["sample"] == "40 seeds of best config"
    assert bootstrap_ci(scores) == bootstrap_ci(scores)  # fixed seed
    assert np.isnan(bootstrap_ci(np.array([0.8]))[0])
    assert bootstrap_ci(np.array([0.8, 0.8])) == (0.8, 0.8)


def test_ner_epoch_table(report):
    md = (report.out / "ontonotes-ner.md").read_text()
    assert md_rows(md)["header"][:4] == ["epoch", "baseline", "50M words (vectors)", "50M words (trigram)"]
    # epoch cells: mean ± std over the setting's seeds (0.70 and 0.69 at epoch 1); one trial: its value
    assert cell(md, "1", "baseline") == "69.5 ± 0.7"
    assert cell(md, "3", "50M words (vectors)") == f"{100 * (0.79 + 0.785) / 2:.1f} ± {100 * np.std([0.79, 0.785], ddof=1):.1f}"
    assert cell(md, "2", "50M words (trigram)") == "78.0"
    assert cell(md, "best (%)", "50M words (trigram)") == "78.0"
    assert cell(md, "n trials", "50M words (vectors)") == "2"
    assert cell(md, "mean ± std (%)", "baseline") == "77.5 ± 0.7"
    # the original's columns beside ours, with the epochs we did not run
    assert cell(md, "1", "original baseline") == "78.3"
    assert cell(md, "best (%)", "original T 50M") == "85.7"
    assert cell(md, "10", "original 100M words") == "85.6"
    assert cell(md, "10", "baseline") == "—"
    summary = pd.read_csv(report.out / "ontonotes-ner.csv").set_index("setting")
    assert summary["amount_unit"].tolist() == ["words"] * 3
    assert summary.loc["50M words (vectors)", "amount"] == 50_000_000
    epochs = pd.read_csv(report.out / "ontonotes-ner-epochs.csv")
    row = epochs[(epochs["setting"] == "baseline") & (epochs["epoch"] == 3)].iloc[0]
    assert row["mean"] == pytest.approx(77.5) and row["n_trials"] == 2 and row["best_trial"] == pytest.approx(78.0)


def test_skipped_files_are_listed(report):
    skipped = dict(zip(report.loaded.skipped["source"], report.loaded.skipped["reason"]))
    reasons = {Path(source).parent.name: reason for source, reason in skipped.items()}
    assert set(reasons) == {"broken", "running", "failed", "old-schema", "no-epochs"}
    assert reasons["broken"].startswith("unreadable JSON")
    assert reasons["running"] == "partial: trial still running"
    assert reasons["failed"] == "partial: trial failed (CUDA out of memory)"
    assert reasons["old-schema"] == "unsupported schema_version 7"
    assert reasons["no-epochs"] == "missing keys: epochs"
    assert "skipped 5 result file(s):" in report.result.messages
    assert sum("running" in m for m in report.result.messages) == 1
    assert len(pd.read_csv(report.out / "skipped.csv")) == 5
    manifest = json.loads((report.out / "manifest.json").read_text())
    assert {Path(s["source"]).parent.name for s in manifest["skipped"]} == set(reasons)
    assert "## Skipped result files" in (report.out / "report.md").read_text()
    # the pruned trial is loaded (per-epoch rows) but feeds no statistic
    assert report.loaded.epochs["status"].eq("pruned").sum() == 1
    used = manifest["tables"]["lmao-imdb-1k.md"]
    assert len(used["sources"]) == 6 and len(used["pruned_not_in_stats"]) == 1
    assert all(Path(s).exists() for s in used["sources"])


def test_readme_section_between_markers(report):
    text = (report.readmes / "lmao-imdb-1k" / "README.md").read_text()
    assert text.startswith("# IMDB\n\nintro\n\n" + START + "\n")
    assert text.endswith(END + "\n\nfooter text\n")
    assert "old table" not in text and "| 1 epoch (vectors) | 87.0 |" in text
    assert "](../" in text  # plot links relative to the README
    assert any("ontonotes-ner" in m and "no README.md" in m for m in report.result.messages)
    assert not (report.readmes / "ontonotes-ner").exists()


def test_top_readme_headline_matches_the_tables(report):
    """The top README's campaign headline: each setting's mean ± std and its test, as the tables say."""
    text = (report.readmes / "README.md").read_text()
    assert text.startswith("# Top\n\n<!-- campaigns:start -->\n_Generated by `make report`")
    assert text.endswith("<!-- campaigns:end -->\n\nend\n") and "old" not in text
    imdb = next(line for line in text.splitlines() if line.startswith("- **lmao-imdb-1k**"))
    md = (report.out / "lmao-imdb-1k.md").read_text()
    assert f"baseline **{cell(md, 'baseline', 'mean ± std (%)')} %** (n = 3)" in imdb
    one_epoch = cell(md, "1 epoch (vectors)", "mean ± std (%)")
    assert f"**{one_epoch} %**" in imdb
    significance = [line for line in md.splitlines() if line.startswith("- 1 epoch (vectors) vs baseline")]
    points = significance[0].split(": ", 1)[1].split(" points")[0]
    assert f"{points} points, " in imdb
    assert any(line.startswith("- **ontonotes-ner**") for line in text.splitlines())


def test_replace_section_cases(tmp_path):
    assert replace_section("# T\n", "x") == f"# T\n\n## Results\n\n{START}\nx\n{END}\n"
    again = replace_section(replace_section("# T\n", "x"), "y")
    assert again == f"# T\n\n## Results\n\n{START}\ny\n{END}\n"
    assert replace_section(f"a {END} b {START}", "x") is None
    assert replace_section(f"a {START} b", "x") is None
    readme = tmp_path / "README.md"
    readme.write_text(f"keep {START} old {END} keep\n")
    assert update_readme(readme, "new").startswith("updated")
    assert readme.read_text() == f"keep {START}\nnew\n{END} keep\n"
    assert update_readme(readme, "new").startswith("unchanged")
    assert update_readme(tmp_path / "missing.md", "x").startswith("skipped")


def test_plots_written(report, tmp_path, monkeypatch):
    """Every plot is a PNG, and what it draws is the fixtures' numbers (computed here from the inputs,
    not from the report's tables): each line's and each scatter's points, for both experiments."""
    for name in ("lmao-imdb-1k", "ontonotes-ner"):
        for kind in ("learning-curves", "vs-pretraining", "size-speed", "sweep-progress"):
            path = report.out / f"{name}-{kind}.png"
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, path
    import analysis.plots

    drawn, save = {}, analysis.plots._save
    monkeypatch.setattr(analysis.plots, "_save", lambda fig, path: drawn.setdefault(path.name, fig) and save(fig, path))
    build_report(report.loaded, tmp_path / "again", readme_root=None)
    assert sorted(drawn) == sorted(p.name for p in report.out.glob("*.png"))

    def lines(png, panel=0):
        return {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in drawn[png].axes[panel].lines}

    def points(png, panel=0):
        return {c.get_label(): sorted(map(tuple, c.get_offsets().tolist()))
                for c in drawn[png].axes[panel].collections if hasattr(c, "get_offsets") and len(c.get_offsets())}

    pct = lambda values: pytest.approx([100 * v for v in values])  # noqa: E731
    # IMDB: 3 baseline trials (curves b-0.05, b), 3 trials after 1 pretraining epoch (p-0.05, p, p-0.01).
    imdb = {"baseline": [[b - 0.05, b] for b in BASE], "1 epoch (vectors)": [[p - 0.05, p, p - 0.01] for p in PRE1]}
    ner = {setting: [curve for _seed, _words, _objective, curve in runs] for setting, runs in NER_CURVES.items()}
    for name, curves in (("lmao-imdb-1k", imdb), ("ontonotes-ner", ner)):
        got = lines(f"{name}-learning-curves.png")
        assert set(got) == {f"{s} (n={len(c)})" for s, c in curves.items()}
        for setting, runs in curves.items():
            x, y = got[f"{setting} (n={len(runs)})"]
            assert x == list(range(1, len(runs[0]) + 1)) and y == pct(np.mean(runs, axis=0))
        bands = [c for c in drawn[f"{name}-learning-curves.png"].axes[0].collections]
        for band, runs in zip(bands, curves.values()):  # mean ± sample std, per epoch
            ys = band.get_paths()[0].vertices[:, 1]
            spread = np.std(runs, axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(runs[0]))
            assert (ys.min(), ys.max()) == pytest.approx((100 * min(np.mean(runs, axis=0) - spread),
                                                          100 * max(np.mean(runs, axis=0) + spread)))
        best = {s: [max(c) for c in runs] for s, runs in curves.items()}
        # score vs pretraining: baseline trials at 0, their mean; each objective's best per amount, from 0
        got, dots = lines(f"{name}-vs-pretraining.png"), points(f"{name}-vs-pretraining.png")
        base = best["baseline"]
        assert got.pop(f"baseline mean ({100 * np.mean(base):.1f})")[1] == pct([np.mean(base)] * 2)
        assert dots.pop(f"baseline trials (n={len(base)})") == sorted((0.0, 100 * v) for v in base)
        amount = 1.0 if name == "lmao-imdb-1k" else 50.0  # epochs; millions of words
        pretrained = {s: v for s, v in best.items() if s != "baseline"}
        objectives = {s.split("(")[1].rstrip(")"): v for s, v in pretrained.items()}
        assert got == {f"{o}: best": ([0.0, amount], pct([max(base), max(v)])) for o, v in objectives.items()}
        assert sorted(xy for xys in dots.values() for xy in np.round(xys, 6).tolist()) == \
            sorted([amount, round(100 * v, 6)] for values in pretrained.values() for v in values)
        # size and speed: every trial's (MB, k words/s) against its best score; the Pareto front
        size = {"lmao-imdb-1k": {"baseline": 2.0, "1 epoch (vectors)": 3.0}}.get(name, {s: 4.0 for s in best})
        size_dots, speed_dots = points(f"{name}-size-speed.png", 0), points(f"{name}-size-speed.png", 1)
        for setting, values in best.items():
            scores = sorted(round(100 * v, 6) for v in values)
            assert np.round(size_dots[setting], 6).tolist() == [[size[setting], v] for v in scores]
            assert np.round(speed_dots[setting], 6).tolist() == [[30.0, v] for v in scores]
        top = max(max(v) for v in best.values())
        front = lines(f"{name}-size-speed.png", 0)["Pareto front"]
        if name == "lmao-imdb-1k":  # the small baseline's best, then the bigger pretrained model's
            assert front == ([2.0, 3.0], pct([max(BASE), max(PRE1)]))
        else:
            assert front == ([4.0], pct([top]))
        assert lines(f"{name}-size-speed.png", 1)["Pareto front"] == ([30.0], pct([top]))
    # sweep progress: best so far, trials in the order they finished (a pruned trial spends one)
    sweep = [max(c) for c in imdb["baseline"]] + [max(c) for c in imdb["1 epoch (vectors)"]] + [np.nan]
    got = lines("lmao-imdb-1k-sweep-progress.png", 0)
    assert got == {"study sweep (7 trials)": (list(range(1, 8)), pct(np.fmax.accumulate(sweep)))}
    hours = [1 + minute / 60 for minute in (0, 1, 2, 10, 11, 12, 20)]  # finished 11:MM, first start 10:00
    assert lines("lmao-imdb-1k-sweep-progress.png", 1)["study sweep"] == (pytest.approx(hours),
                                                                        pct(np.fmax.accumulate(sweep)))
    # every NER trial finished at the same minute: ties go in the order of their files' paths
    ner_order = [max(curve) for _tag, curve in sorted((f"{setting.split()[0]}{objective or 'base'}-{seed}", curve)
                                                      for setting, runs in NER_CURVES.items()
                                                      for seed, _words, objective, curve in runs)]
    got = lines("ontonotes-ner-sweep-progress.png", 0)
    assert got["study ner (5 trials)"][1] == pct(np.maximum.accumulate(ner_order))


def _drawn_figure(monkeypatch):
    """Patch the plots' save step to keep the drawn figure (its axes, ticks and artists) for inspection."""
    import analysis.plots

    kept = {}
    original = analysis.plots._save

    def keep(fig, path):
        fig.canvas.draw()
        kept["axes"] = [ax for ax in fig.axes]
        kept["offsets"] = [(ax.xaxis.get_offset_text().get_text(), ax.yaxis.get_offset_text().get_text())
                           for ax in fig.axes]
        kept["xticks"] = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes]
        return original(fig, path)

    monkeypatch.setattr(analysis.plots, "_save", keep)
    return kept


def test_size_speed_plot_readable_when_every_model_has_the_same_size(tmp_path, monkeypatch):
    from analysis.plots import size_and_speed

    for seed, score in enumerate(BASE):  # one size, near-equal speeds: matplotlib would print "+3.17e6"
        write(tmp_path / "runs", f"t{seed}", result(curve=[score], seed=seed, size=3_170_743,
                                                    speed=30_000.0 + seed * 0.01))
    loaded = load_all([tmp_path / "runs"])
    kept = _drawn_figure(monkeypatch)
    assert size_and_speed(loaded.trials, "x", tmp_path / "p.png").is_file()
    assert kept["offsets"] == [("", ""), ("", "")]  # no offset text on any axis
    size_ax, speed_ax = kept["axes"]
    assert size_ax.get_xlim() == pytest.approx((3.170743 * 0.9, 3.170743 * 1.1))
    assert speed_ax.get_xlim() == pytest.approx((30.00001 * 0.9, 30.00001 * 1.1))
    labels = [t for t in kept["xticks"][0] if t]
    assert len(labels) == len(set(labels)) >= 3 and all(len(t) <= 4 for t in labels), labels  # e.g. "3.0"


def test_vs_pretraining_plot_shows_the_baseline_at_0(tmp_path, monkeypatch):
    from analysis.plots import score_vs_pretraining

    loaded = load_all([imdb_runs(tmp_path / "runs")])
    kept = _drawn_figure(monkeypatch)
    score_vs_pretraining(loaded.trials, "x", tmp_path / "p.png")
    ax = kept["axes"][0]
    low, high = ax.get_xlim()
    assert low < 0 < high
    assert "0\n(baseline)" in kept["xticks"][0]
    base = next(c for c in ax.collections if c.get_label() == "baseline trials (n=3)")
    assert base.get_offsets()[:, 0].tolist() == [0, 0, 0]
    assert sorted(base.get_offsets()[:, 1].tolist()) == pytest.approx([100 * v for v in BASE])
    mean = next(line for line in ax.lines if line.get_label() == "baseline mean (82.0)")
    assert mean.get_ydata()[0] == pytest.approx(82.0)
    # no completed baseline: said on the plot, at 0
    only_pretrained = load_all([tmp_path / "runs" / "sweep"])
    trials = only_pretrained.trials[only_pretrained.trials["objective"].notna()]
    score_vs_pretraining(trials, "x", tmp_path / "q.png")
    assert [t.get_text() for t in kept["axes"][0].texts] == ["no completed\nbaseline trial"]
    assert kept["axes"][0].get_xlim()[0] < 0


def test_deterministic_and_stale_outputs_removed(report, tmp_path):
    out = tmp_path / "again"
    build_report(load_all([report.root]), out, readme_root=None, inputs=[str(report.root)])
    first = {p.name: p.read_bytes() for p in sorted(report.out.iterdir())}
    second = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert first.keys() == second.keys()
    assert [n for n in first if first[n] != second[n]] == []
    # a later report without the NER runs removes the NER outputs the earlier one wrote
    only_imdb = imdb_runs(tmp_path / "imdb")
    build_report(load_all([only_imdb]), out, readme_root=None, plots=False)
    assert not (out / "ontonotes-ner.md").exists() and (out / "lmao-imdb-1k.md").exists()
    assert not list(out.glob("*.png"))  # plots of the earlier run are not passed off as current


def test_missing_or_empty_folder_fails_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from lmao.cli import app

    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    runner = CliRunner()
    missing = runner.invoke(app, ["report", str(tmp_path / "nowhere"), "--out", str(out), "--no-readmes"])
    assert missing.exit_code == 1
    assert missing.stderr == f"error: {tmp_path / 'nowhere'}: runs folder not found\n"
    assert missing.stdout == ""
    # one missing folder among good ones is an error too (a typo must not silently drop runs)
    both = runner.invoke(app, ["report", str(tmp_path / "empty"), str(tmp_path / "nowhere"), "--out", str(out)])
    assert both.exit_code == 1 and both.stderr == f"error: {tmp_path / 'nowhere'}: runs folder not found\n"
    empty = runner.invoke(app, ["report", str(tmp_path / "empty"), "--out", str(out), "--no-readmes"])
    assert empty.exit_code == 1
    assert empty.stderr == (f"error: {tmp_path / 'empty'}: no trial results found: nothing to report "
                            "(no files written)\n")
    assert empty.stdout == ""
    # only unusable files: they are listed (stdout), then the one error line
    write(tmp_path / "empty", "t0", result(curve=[0.9], status="running"))
    partial = runner.invoke(app, ["report", str(tmp_path / "empty"), "--out", str(out), "--no-readmes"])
    assert partial.exit_code == 1 and "partial: trial still running" in partial.stdout
    assert partial.stderr.startswith(f"error: {tmp_path / 'empty' / 't0' / 'results.json'}: partial: trial still "
                                     "running (no usable trial results in")
    assert partial.stderr.count("\n") == 1
    assert not out.exists()


def test_cli_writes_report(tmp_path):
    from typer.testing import CliRunner

    from lmao.cli import app

    for seed, score in enumerate(BASE):
        small = {**result(curve=[score], seed=seed), "data": {"train_docs": 300, "dev_docs": 200}}
        write(tmp_path / "runs", f"s/t{seed}", small)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", str(tmp_path / "runs"), "--out", str(out), "--no-readmes",
                                   "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "report: 3 trials (3 completed), 0 skipped, 1 table(s)" in res.output
    md = (out / "lmao-imdb-1k.md").read_text()
    assert cell(md, "baseline", "best (%)") == "84.0"
    assert "Not the protocol's scale" in md and "data: 300 train / 200 dev docs." in md
    assert not list(out.glob("*.png"))
    bad = CliRunner().invoke(app, ["report", "--gcs", "s3://x", "--out", str(out)])
    assert bad.exit_code != 0 and "gs://" in bad.output


@pytest.mark.slow  # starts the GCS emulator
def test_unreadable_source_is_one_clear_error(gcs_emulator, tmp_path):
    """A bucket that does not exist, on a real (local) GCS server: one error line naming the source."""
    from typer.testing import CliRunner

    import analysis.load
    from lmao.cli import app

    url = f"gs://missing-{uuid.uuid4().hex[:12]}/p"  # a bucket nobody created
    with pytest.raises(analysis.load.SourceError, match=rf"^cannot read {url}: NotFound: 404 "):
        load_all([], gcs=[url])  # plain storage.Client() on the emulator (STORAGE_EMULATOR_HOST)
    res = CliRunner().invoke(app, ["report", "--gcs", url, "--out", str(tmp_path / "out")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot read {url}: NotFound: 404 "), res.output
    assert not (tmp_path / "out").exists()


def test_words_label():
    assert [words_label(n) for n in (50_001_234, 49_990_000, 100_000_000, 1_234_567, 120_000, 0)] == [
        "50M", "50M", "100M", "1.2M", "120k", "0"]


def test_optuna_study_source(tmp_path):
    import optuna

    runs = tmp_path / "runs"
    dirs = [write(runs, f"study-a/trial-{i:04d}", result(curve=[s], seed=i)).parent for i, s in enumerate(BASE)]
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="study-a", storage=storage, direction="maximize")
    study.set_user_attr("search", "tpe")
    for i, d in enumerate(dirs):
        study.add_trial(optuna.trial.create_trial(value=BASE[i], user_attrs={"result_dir": str(d)}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    loaded = load_all([runs], storage=storage, study="study-a")
    # the same three files came from the folder and the study: once each, with the study's metadata
    assert len(loaded.trials) == 3
    assert set(loaded.trials["search"]) == {"tpe"} and sorted(loaded.trials["trial_number"]) == [0, 1, 2]
    assert loaded.skipped["reason"].tolist() == ["no result_dir user attr (trial state FAIL)"]
    assert loaded.skipped["source"].tolist() == ["optuna:study-a/3"]
    # every study in the storage when no name is given
    assert len(load_all([], storage=storage).trials) == 3


def test_gcs_prefix_source(gcs_emulator, tmp_path):
    """Result files on a real local GCS server (gcp-storage-emulator), read through google-cloud-storage."""
    bucket = gcs_emulator.new_bucket()
    for seed, score in enumerate(BASE):
        bucket.blob(f"exp/runs/study-g/trial-{seed}/results.json").upload_from_string(
            json.dumps(result(curve=[score], seed=seed)))
    bucket.blob("exp/runs/study-g/trial-9/results.json").upload_from_string("{not json")
    bucket.blob("exp/runs/study-g/trial-0/model.bin").upload_from_string(b"\0")
    bucket.blob("elsewhere/trial-5/results.json").upload_from_string(json.dumps(result(curve=[0.99])))
    loaded = load_all([], gcs=[f"gs://{bucket.name}/exp/runs"])  # plain storage.Client() via the env
    assert sorted(loaded.trials["source"]) == [
        f"gs://{bucket.name}/exp/runs/study-g/trial-{i}/results.json" for i in range(3)]
    assert set(loaded.trials["study"]) == {"study-g"}
    assert loaded.trials["best_dev_score"].max() == pytest.approx(0.84)
    assert loaded.skipped["source"].tolist() == [f"gs://{bucket.name}/exp/runs/study-g/trial-9/results.json"]
    table = build_tables(loaded.trials, loaded.epochs)[0]
    assert cell(table.markdown, "baseline", "mean ± std (%)") == "82.0 ± 2.0"


def test_unsafe_experiment_name_is_skipped(tmp_path):
    write(tmp_path, "a", {**result(curve=[0.8]), "experiment": "../escape"})
    write(tmp_path, "b", {**result(curve=[0.8]), "task": None})
    loaded = load_all([tmp_path])
    assert loaded.empty
    assert sorted(loaded.skipped["reason"]) == ["bad experiment '../escape' (expected a folder-style name)",
                                                "bad task None (expected a folder-style name)"]


# ---------------------------------------------------------------------------------- campaign trials

IMDB_MANIFEST = {"kind": "imdb", "task": "textcat", "source": "../shared/data/imdb/imdb.jsonl.gz", "seed": 0,
                 "n_train": 1000, "n_dev": 10000, "include_unsup": False, "max_pretrain_docs": 0,
                 "docs": {"train": 1000, "dev": 10000, "test": 25000, "pretrain": 50000},
                 "pretrain_words": 11_712_345}
CAMPAIGN = {  # setting -> (objective, pretraining epochs, best score per seed, cache key per seed)
    "baseline": (None, 0, [0.850, 0.860, 0.855], [None] * 3),
    "vectors-1": ("vectors", 1, [0.870, 0.875, 0.865], ["a" * 64] * 3),
    "vectors-2": ("vectors", 2, [0.860, 0.870, 0.862], ["a" * 64] * 3),
    "trigram-1": ("trigram", 1, [0.858, 0.866, 0.861], ["b" * 64] * 3),
    "characters-1": ("characters", 1, [0.850, 0.852], ["c" * 64, "d" * 64]),
}


def campaign_runs(runs: Path, corpus: Optional[Dict[str, Any]] = None) -> Path:
    """RUNS/<setting>/seed-<n>/results.json as `lmao campaign` writes them (meta.setting, shared runs)."""
    for setting, (objective, epochs, scores, keys) in CAMPAIGN.items():
        for seed, (score, key) in enumerate(zip(scores, keys)):
            data = result(curve=[score - 0.02, score], seed=seed, pretrain_epochs=epochs, objective=objective,
                          size=3_500_000)
            data["params"]["pretrain_seed"] = 0
            data["meta"] = {"campaign": "campaign.yml", "setting": setting}
            data["corpus"] = corpus or {"dir": "corpus/imdb-1k", "manifest": IMDB_MANIFEST}
            ran = key is not None and (seed == 0 or setting == "characters-1")  # the first user ran it
            if key is not None:
                data["pretraining"].update({"cache_key": key, "seed": 0 if setting != "characters-1" else seed,
                                            "run_seconds": 1800.0, "seconds": 1800.0 if ran else 0.0,
                                            "cached": not ran, "words_seen": 11_712_345 * epochs})
            data["wall_seconds"] = 600.0 + (1800.0 if ran else 0.0)
            write(runs, f"{setting}/seed-{seed}", data)
    return runs


def test_campaign_table_rows_by_setting(tmp_path):
    loaded = load_all([campaign_runs(tmp_path / "campaign")])
    table = build_tables(loaded.trials, loaded.epochs)[0]
    md = table.markdown
    assert list(md_rows(md))[1:] == ["baseline", "vectors-1", "vectors-2", "3 epochs (vectors)", "trigram-1",
                                     "characters-1"]
    assert md_rows(md)["header"] == [
        "pretraining", "pretraining text", "best (%)", "mean ± std (%)", "95% CI (%)", "sample", "n trials",
        "pruned", "size (MB)", "fine-tune wall / trial (min)", "pretraining run (min)",
        "original: best of 50 random-search runs (%)"]
    assert cell(md, "vectors-1", "mean ± std (%)") == "87.0 ± 0.5"
    assert cell(md, "vectors-1", "sample") == "3 seeds of best config"
    assert cell(md, "vectors-1", "n trials") == "3"
    assert cell(md, "vectors-1", "size (MB)") == "3.5"
    low, high = bootstrap_ci(np.array(CAMPAIGN["vectors-1"][2]))
    assert cell(md, "vectors-1", "95% CI (%)") == f"[{100 * low:.1f}, {100 * high:.1f}]"
    assert cell(md, "characters-1", "95% CI (%)") == "range [85.0, 85.2] (2 values, no CI)"
    # the original's numbers beside ours, labelled as a best-of-50 maximum
    assert [cell(md, r, "original: best of 50 random-search runs (%)") for r in
            ("baseline", "vectors-1", "vectors-2", "3 epochs (vectors)", "trigram-1")] == [
        "86.8", "87.5", "86.5", "86.5", "—"]
    assert "not comparable to a mean over seeds" in md
    # which pretraining text, and wall time per trial / per pretraining run
    assert cell(md, "baseline", "pretraining text") == "none"
    assert cell(md, "vectors-1", "pretraining text") == "train+test, no unsup; 50,000 docs, 12M words"
    assert cell(md, "vectors-1", "fine-tune wall / trial (min)") == "10.0"  # 600 s, pretraining excluded
    assert cell(md, "vectors-1", "pretraining run (min)") == "30.0"
    assert cell(md, "baseline", "pretraining run (min)") == "—"
    notes = [line for line in md.splitlines() if line.startswith("- ")]
    assert ("- vectors-1: all 3 trials (seeds 0, 1, 2) fine-tune from one shared pretraining run (cache key "
            "aaaaaaaaaaaa, pretraining seed 0, 30.0 min); their spread comes from fine-tuning alone, not from "
            "pretraining.") in notes
    assert "- characters-1: 2 pretraining runs for 2 trials (60.0 min in all)." in notes
    assert ("- vectors-1, vectors-2 read checkpoints of the same pretraining run (cache key aaaaaaaaaaaa): one "
            "run serves every pretraining amount.") in notes
    assert "- rows named by the campaign design's settings (`meta.setting`) of `campaign.yml`." in notes
    # the test against the baseline pairs seed-matched trials
    expected = sps.ttest_rel(CAMPAIGN["vectors-1"][2], CAMPAIGN["baseline"][2])
    line = next(n for n in notes if n.startswith("- vectors-1 vs baseline"))
    assert "paired t-test over 3 pairs" in line and f"p = {expected.pvalue:.3g}" in line
    assert "+1.50 points (mean paired difference)" in line
    assert "Mann-Whitney U, two-sided, over 2 vs 3" in next(n for n in notes if n.startswith("- characters-1 vs"))
    csv = table.csv.set_index("setting")
    assert csv.loc["vectors-1", "pretraining_runs"] == 1 and csv.loc["characters-1", "pretraining_runs"] == 2
    assert csv.loc["vectors-1", "finetune_wall_seconds_mean"] == 600.0
    assert csv.loc["vectors-1", "pretraining_run_seconds_mean"] == 1800.0


def test_campaign_with_unsup_text_and_report_outputs(tmp_path):
    manifest = {**IMDB_MANIFEST, "include_unsup": True, "docs": {**IMDB_MANIFEST["docs"], "pretrain": 100000},
                "pretrain_words": 23_456_789}
    runs = campaign_runs(tmp_path / "campaign", {"dir": "corpus/imdb-1k-unsup", "manifest": manifest})
    out = tmp_path / "out"
    build_report(load_all([runs]), out, readme_root=None, inputs=[str(runs)])
    md = (out / "lmao-imdb-1k.md").read_text()
    assert cell(md, "trigram-1", "pretraining text") == "train+test+unsup; 100,000 docs, 23M words"
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(set(trials["setting"])) == sorted(CAMPAIGN)
    epochs = pd.read_csv(out / "epochs.csv")
    assert sorted(set(epochs["setting"])) == sorted(CAMPAIGN)
    assert {p.name for p in out.glob("*.png")} >= {"lmao-imdb-1k-learning-curves.png",
                                                  "lmao-imdb-1k-vs-pretraining.png"}


def test_vs_pretraining_plot_of_a_campaign_shows_means_over_seeds(tmp_path, monkeypatch):
    from analysis.plots import score_vs_pretraining

    loaded = load_all([campaign_runs(tmp_path / "campaign")])
    kept = _drawn_figure(monkeypatch)
    score_vs_pretraining(loaded.trials, "x", tmp_path / "p.png")
    ax = kept["axes"][0]
    labels = ax.get_legend_handles_labels()[1]
    assert "vectors: mean ± std over seeds" in labels and not any(label.endswith(": best") for label in labels)
    bars = next(c for c in ax.containers if c.get_label() == "vectors: mean ± std over seeds")
    line = bars.lines[0]
    assert line.get_xdata().tolist() == [0, 1, 2]
    assert line.get_ydata() == pytest.approx([100 * np.mean(CAMPAIGN[s][2])
                                              for s in ("baseline", "vectors-1", "vectors-2")])


WNUT = {"dir": "corpus/wnut17", "manifest": {
    "kind": "ner", "task": "ner", "docs": {"train": 3394, "dev": 1009, "pretrain": 4403}, "pretrain_words": 82728,
    "sources": {"train": "../shared/data/ner/wnut17/wnut17train.conll",
                "dev": "../shared/data/ner/wnut17/emerging.dev.conll", "test": None, "raw": None}}}


def _ner_with_corpus(root: Path, corpus: Dict[str, Any]) -> Path:
    for setting, runs in NER_CURVES.items():
        for seed, words, objective, curve in runs:
            data = result("ontonotes-ner", curve=curve, seed=seed, words=words, objective=objective,
                          pretrain_epochs=1 if words else 0)
            data["corpus"] = corpus
            write(root, f"ner/{setting.split()[0]}{objective or 'base'}-{seed}", data)
    return root


def test_ner_table_on_another_corpus_prints_no_ontonotes_numbers(tmp_path):
    loaded = load_all([_ner_with_corpus(tmp_path / "wnut", WNUT)])
    [table] = build_tables(loaded.trials, loaded.epochs)
    assert (table.name, table.block) == ("ontonotes-ner-wnut17", "report-wnut17")  # named by its corpus
    md = table.markdown
    assert md.splitlines()[0] == ("### ontonotes-ner on wnut17: dev ents_f (%) per fine-tuning epoch (mean ± std "
                                  "over each setting's sample), corpus: `emerging.dev.conll + wnut17train.conll`")
    assert md_rows(md)["header"] == ["epoch", "baseline", "50M words (vectors)", "50M words (trigram)"]
    assert "78.3" not in md and "85.5" not in md and "original baseline" not in md
    assert list(md_rows(md))[1:4] == ["1", "2", "3"]  # no OntoNotes epochs 5 and 10 padded in
    assert ("- The original's OntoNotes numbers (`docs/protocol.md`) are not shown: these runs used "
            "`emerging.dev.conll + wnut17train.conll`, a different corpus (other entity types and text), so "
            "their scores are not comparable.") in md.splitlines()
    assert cell(md, "pretraining text", "50M words (vectors)") == "train+dev text; 4,403 docs, 83k words"
    assert cell(md, "fine-tune wall / trial (min)", "baseline") == "60.0"


UNER = {"dir": "corpus/uner-ewt", "manifest": {**WNUT["manifest"], "sources": {
    "train": "../shared/data/ner/uner-ewt/train.iob", "dev": "../shared/data/ner/uner-ewt/dev.iob",
    "test": None, "raw": None}}}


def test_ner_results_on_two_corpora_get_a_table_and_readme_block_each(tmp_path):
    """WNUT-17 and UNER trials of one experiment: never one column mixing both corpora's scores."""
    root = _ner_with_corpus(tmp_path / "runs" / "wnut", WNUT)
    _ner_with_corpus(tmp_path / "runs" / "uner", UNER)
    for path in (tmp_path / "runs" / "uner").rglob("results.json"):  # other trials, run an hour later
        data = json.loads(path.read_text())
        data["started_at"] = data["started_at"].replace("T10:", "T12:")
        if path.parent.name == "baselinebase-0":
            data["epochs"][0]["dev_score"] = 0.5  # UNER's baseline at epoch 1: 50.0 and 69.0
        path.write_text(json.dumps(data))
    repo = tmp_path / "repo"
    (repo / "ontonotes-ner").mkdir(parents=True)
    readme = repo / "ontonotes-ner" / "README.md"
    readme.write_text("# NER\n\n<!-- report-uner-ewt:start -->\nold\n<!-- report-uner-ewt:end -->\n\n"
                      "<!-- report-wnut17:start -->\nold\n<!-- report-wnut17:end -->\n", encoding="utf-8")
    (repo / "README.md").write_text("<!-- campaigns:start -->\n<!-- campaigns:end -->\n", encoding="utf-8")
    out = tmp_path / "out"
    build_report(load_all([root.parent]), out, readme_root=repo, inputs=[str(root.parent)])
    wnut, uner = (out / "ontonotes-ner-wnut17.md").read_text(), (out / "ontonotes-ner-uner-ewt.md").read_text()
    assert not (out / "ontonotes-ner.md").exists()
    assert "`emerging.dev.conll + wnut17train.conll`" in wnut.splitlines()[0]
    assert "`dev.iob + train.iob`" in uner.splitlines()[0]
    assert cell(wnut, "1", "baseline") == "69.5 ± 0.7" and cell(uner, "1", "baseline") == "59.5 ± 13.4"
    assert cell(wnut, "n trials", "baseline") == cell(uner, "n trials", "baseline") == "2"
    text = readme.read_text()
    uner_block = text.split("report-uner-ewt:start")[1].split("report-uner-ewt:end")[0]
    wnut_block = text.split("report-wnut17:start")[1].split("report-wnut17:end")[0]
    assert "old" not in text and "dev.iob + train.iob" in uner_block and "wnut17train" not in uner_block
    assert "wnut17train.conll" in wnut_block and "dev.iob" not in wnut_block
    top = (repo / "README.md").read_text()
    assert "**ontonotes-ner** on uner-ewt" in top and "**ontonotes-ner** on wnut17" in top
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["tables"]["ontonotes-ner-uner-ewt.md"]["sources"]) == 5
    assert all("/uner/" in s for s in manifest["plots"]["ontonotes-ner-uner-ewt-learning-curves.png"])


def test_ner_table_on_ontonotes_keeps_the_original_columns(tmp_path):
    onto = {"dir": "corpus/onto", "manifest": {**WNUT["manifest"], "sources": {
        "train": "ontonotes/train.gold_conll", "dev": "ontonotes/dev.gold_conll", "test": None, "raw": None}}}
    loaded = load_all([_ner_with_corpus(tmp_path / "onto", onto)])
    md = build_tables(loaded.trials, loaded.epochs)[0].markdown
    assert cell(md, "1", "original baseline") == "78.3"
    assert "corpus: `dev.gold_conll + train.gold_conll`" in md.splitlines()[0]
    assert "Corpus not recorded" not in md and "are not shown" not in md


def test_ner_table_without_a_corpus_manifest_says_so(report):
    md = (report.out / "ontonotes-ner.md").read_text()
    assert md.splitlines()[0].endswith("(mean ± std over each setting's sample), corpus not recorded")
    assert "**Corpus not recorded**" in md and cell(md, "1", "original baseline") == "78.3"


def test_a_copied_result_file_is_counted_once(tmp_path):
    """The same trial found twice (e.g. a dashboard's or a bucket's copy under the runs folder) is one trial."""
    runs = tmp_path / "runs"
    write(runs, "trial-a", result(curve=[0.7, 0.8], seed=0))
    write(runs, "trial-b", result(curve=[0.7, 0.9], seed=1))
    write(runs, "polyaxon/artifacts/run-1/outputs", result(curve=[0.7, 0.8], seed=0))
    loaded = load_all([runs])
    assert len(loaded.trials) == 2
    assert sorted(loaded.trials["seed"]) == [0, 1]
    [copy] = loaded.skipped.to_dict("records")
    pair = {"trial-a/results.json", "polyaxon/artifacts/run-1/outputs/results.json"}
    kept = next(p for p in pair if not copy["source"].endswith(p))
    assert copy["reason"].startswith("a copy of ") and copy["reason"].split(" (")[0].endswith(kept)
    # Same start time and params but other scores: two trials, not a copy.
    write(runs, "trial-c", result(curve=[0.7, 0.85], seed=0))
    assert len(load_all([runs]).trials) == 3


def test_baseline_only_says_why_there_is_no_test(tmp_path):
    for seed, score in enumerate(BASE):
        write(tmp_path, f"b{seed}", result(curve=[score], seed=seed))
    loaded = load_all([tmp_path])
    md = build_tables(loaded.trials, loaded.epochs)[0].markdown
    assert "Significance vs baseline: no pretrained setting has completed trials yet, no test." in md
    write(tmp_path / "only-pre", "p0", result(curve=[0.8], pretrain_epochs=1, objective="vectors"))
    loaded = load_all([tmp_path / "only-pre"])
    assert "Significance vs baseline: no baseline trials, no test." in build_tables(loaded.trials, loaded.epochs)[0].markdown


def test_committed_campaign_reports_regenerate_byte_identically(tmp_path, monkeypatch):
    """`make report`'s campaign step (`lmao report $(CAMPAIGN_RUNS)`) on the committed raw results gives
    the committed tables, plots, manifest and README blocks, byte for byte."""
    import re
    import shutil

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)
    makefile = (repo / "Makefile").read_text(encoding="utf-8")
    runs = [p for p in re.search(r"^CAMPAIGN_RUNS \?= (.*)$", makefile, re.M).group(1).split() if (repo / p).exists()]
    committed = repo / "analysis" / "results"
    readmes = ["README.md", "lmao-imdb-1k/README.md", "ontonotes-ner/README.md"]
    for name in readmes:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(repo / name, tmp_path / name)
    out = tmp_path / "analysis" / "results"
    shutil.copytree(committed, out)  # as `make report` finds it: stale outputs are its to remove
    result = build_report(load_all([Path(r) for r in runs]), out, readme_root=tmp_path, inputs=runs)
    assert not result.empty
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"] == sorted(runs)
    for name in manifest["outputs"]:
        assert (out / name).read_bytes() == (committed / name).read_bytes(), name
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in committed.iterdir())
    for name in readmes:
        assert (tmp_path / name).read_text(encoding="utf-8") == (repo / name).read_text(encoding="utf-8"), name
