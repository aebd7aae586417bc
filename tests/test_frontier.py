"""The size-accuracy frontier: cells (model x pretraining x device), pairing by seed, the headline per
budget, byte-identical outputs, the committed outputs regenerated from the committed raw results, the
design file, and the size estimate against a trained model's size."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from scipy import stats

from analysis.frontier import cells, frontier_report, headline
from analysis.load import load_all
from experiments.common.errors import InputError

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "analysis" / "imdb-1k-campaign" / "baseline" / "seed-0" / "results.json"
MB = 1_000_000


def write_trial(runs: Path, name: str, seed: int, score: float, *, size: float, device: str = "cpu",
                **params) -> Path:
    """A results.json like a campaign trial's (the committed baseline's, with these changes)."""
    data = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    corpus = params.pop("include_unsup", False)
    data["params"].update(params, seed=seed)
    data["seed"], data["best_dev_score"], data["model_size_bytes"], data["device"] = seed, score, size, device
    data["epochs"] = [{**data["epochs"][0], "epoch": 1, "dev_score": score}]
    data["best_epoch"] = 1
    data["started_at"] = f"2026-01-01T00:00:{len(list(runs.rglob('results.json'))):02d}+00:00"
    data["corpus"]["manifest"]["include_unsup"] = corpus
    if data["params"].get("pretrain_epochs"):
        data["pretraining"] = {**data["pretraining"], "objective": data["params"]["objective"],
                               "epochs": data["params"]["pretrain_epochs"]}
    out = runs / name / f"seed-{seed}" / "results.json"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


SMALL = {"static_vectors_input": False, "width": 64, "embed_rows": 5000}
LMAO = {"objective": "vectors", "pretrain_epochs": 3, "pretrain_max_epochs": 3}


@pytest.fixture
def runs(tmp_path) -> Path:
    runs = tmp_path / "runs"
    for seed, score in enumerate((0.780, 0.785, 0.776)):
        write_trial(runs, "small", seed, score, size=6.2 * MB, **SMALL)
    for seed, score in enumerate((0.790, 0.792)):  # 2 of 3 seeds so far
        write_trial(runs, "small-lmao", seed, score, size=6.2 * MB, **SMALL, **LMAO)
    for seed, score in enumerate((0.795, 0.801, 0.790)):  # more text, another corpus folder, same split
        write_trial(runs, "small-unsup", seed, score, size=6.2 * MB, **{**SMALL, **LMAO},
                    corpus_dir="corpus/imdb-1k-unsup", include_unsup=True)
    for seed, score in enumerate((0.826, 0.824, 0.829)):
        write_trial(runs, "big", seed, score, size=34 * MB)
    write_trial(runs, "small-gpu", 0, 0.800, size=6.2 * MB, device="gpu:0", **SMALL)
    return runs


def test_cells_pair_by_seed_and_keep_devices_apart(runs):
    items = cells(load_all([runs]).trials)
    assert len(items) == 5
    small = [c for c in items if c.device == "cpu" and c.model.startswith("no static vectors")]
    base = next(c for c in small if not c.pretrained)
    lmao = next(c for c in small if c.pretrained and "unlabelled" not in c.pretraining)
    unsup = next(c for c in small if "unlabelled" in c.pretraining)
    assert (base.n, lmao.n, unsup.n) == (3, 2, 3)
    # paired by seed with the same model without pretraining: the corpus folder does not split the pair
    expected = stats.ttest_rel([0.790, 0.792], [0.780, 0.785])
    assert lmao.paired_n == 2 and lmao.paired_diff == pytest.approx(100 * (0.791 - 0.7825))
    assert lmao.paired_p == pytest.approx(expected.pvalue)
    assert unsup.paired_n == 3 and unsup.paired_p == pytest.approx(
        stats.ttest_rel([0.795, 0.801, 0.790], [0.780, 0.785, 0.776]).pvalue)
    gpu = [c for c in items if c.device == "gpu"]
    assert len(gpu) == 1 and gpu[0].n == 1  # never pooled with the CPU trials of the same model
    # table order: device, then size
    assert [c.device for c in items] == ["cpu"] * 4 + ["gpu"]
    assert [c.size_mb for c in items[:4]] == [6.2, 6.2, 6.2, 34.0]


def test_headline_names_the_best_full_cell_per_budget_and_what_pretraining_buys(runs):
    text = headline(cells(load_all([runs]).trials))
    cpu = text.split("GPU trials")[0]
    ten = next(line for line in cpu.splitlines() if line.startswith("- **≤ 10 MB**"))
    assert "79.53 ± 0.55 %** (n=3" in ten and "labelled + unlabelled reviews" in ten
    assert "Best without pretraining: 78.03 ± 0.45 (n=3, 6.2 MB)" in ten
    assert "Pretraining buys +1.50 points on this model, against 78.03 ± 0.45 without it (paired by seed, n=3" in ten
    mid = next(line for line in cpu.splitlines() if line.startswith("- **≤ 35 MB**"))
    assert "82.63 ± 0.25 %** (n=3; 34.0 MB" in mid and "No LMAO-pretrained trial of that model yet." in mid
    anysize = next(line for line in cpu.splitlines() if line.startswith("- **any size**"))
    assert anysize == "- **any size**: the same model; no larger model has a higher mean. No model above 35 MB has 3 seeds yet."
    gpu = text.split("GPU trials")[1]
    assert "no model with 3 seeds yet; best so far **80.00 %** (n=1" in gpu


def test_headline_says_when_a_bigger_budget_buys_nothing(tmp_path):
    """When the best small model is also the best at a bigger budget, that budget's line says so and
    names the best of the larger models and what pretraining buys there, instead of repeating itself."""
    runs = tmp_path / "runs"
    for seed, (small, big, big_lmao) in enumerate(((0.834, 0.826, 0.832), (0.835, 0.824, 0.831), (0.833, 0.829, 0.833))):
        write_trial(runs, "small", seed, small, size=9.4 * MB)
        write_trial(runs, "big", seed, big, size=34 * MB, embed_rows=5000)
        write_trial(runs, "big-lmao", seed, big_lmao, size=34 * MB, embed_rows=5000, **LMAO)
    lines = headline(cells(load_all([runs]).trials)).splitlines()
    ten, mid, anysize = (next(x for x in lines if x.startswith(f"- **{b}**")) for b in ("≤ 10 MB", "≤ 35 MB", "any size"))
    assert "83.40 ± 0.10 %** (n=3; 9.4 MB" in ten and "No LMAO-pretrained trial of that model yet." in ten
    assert mid.startswith("- **≤ 35 MB**: the same model; no larger model has a higher mean. The best above 10 MB: "
                          "**83.20 ± 0.10 %** (n=3; 34.0 MB")
    assert "Pretraining buys +0.57 points on this model, against 82.63 ± 0.25 without it (paired by seed, n=3" in mid
    assert anysize == "- **any size**: the same model; no larger model has a higher mean. No model above 35 MB has 3 seeds yet."


def test_headline_names_the_best_models_own_twin_when_another_model_is_best_without_pretraining(tmp_path):
    """The best pretrained model's gain is over its own twin; when another model of the budget is better
    without pretraining, the line names that model, so the two numbers cannot be read as one pair."""
    runs = tmp_path / "runs"
    for seed, (wide, narrow, narrow_lmao) in enumerate(((0.826, 0.827, 0.834), (0.829, 0.826, 0.835),
                                                        (0.831, 0.829, 0.834))):
        write_trial(runs, "wide", seed, wide, size=9.4 * MB)
        write_trial(runs, "narrow", seed, narrow, size=9.4 * MB, width=64, embed_rows=4000)
        write_trial(runs, "narrow-lmao", seed, narrow_lmao, size=9.4 * MB, width=64, embed_rows=4000, **LMAO)
    ten = next(x for x in headline(cells(load_all([runs]).trials)).splitlines() if x.startswith("- **≤ 10 MB**"))
    assert "**83.43 ± 0.06 %** (n=3; 9.4 MB;" in ten and "width 64, depth 4, embed rows 4000; pretraining: LMAO" in ten
    assert "Best without pretraining: 82.87 ± 0.25 (n=3, 9.4 MB; vectors-imdb-100k; width 96, depth 4, embed rows 2000)." in ten
    assert "Pretraining buys +0.70 points on this model, against 82.73 ± 0.15 without it (paired by seed, n=3" in ten


def test_variants_are_numbered_only_within_one_model(tmp_path):
    """One recipe on two models prints the same on both rows; two recipes of one model that print the
    same (here only the pretraining learn rate differs) are numbered so neither row hides the other."""
    runs = tmp_path / "runs"
    write_trial(runs, "small-lmao", 0, 0.78, size=6.2 * MB, **SMALL, **LMAO)
    write_trial(runs, "big-lmao", 0, 0.83, size=34 * MB, **LMAO)
    write_trial(runs, "big-lmao-lr", 0, 0.82, size=34 * MB, **LMAO, pretrain_learn_rate=0.0005)
    labels = {(c.size_mb, c.pretraining) for c in cells(load_all([runs]).trials)}
    recipe = "LMAO vectors 3 epochs"
    assert sum(1 for size, label in labels if label.startswith(recipe) and "variant" not in label) == 2
    assert [size for size, label in labels if label.endswith("(variant 2)")] == [34.0]


def test_report_is_byte_identical_and_writes_readme_blocks(runs, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- frontier:start -->\nold\n<!-- frontier:end -->\ntail\n", encoding="utf-8")
    table_readme = tmp_path / "exp.md"
    table_readme.write_text("<!-- table:start --><!-- table:end -->\n", encoding="utf-8")
    outputs = []
    for out in (tmp_path / "a", tmp_path / "b"):
        frontier_report([runs], out, readme=readme, table_readme=table_readme, table_block="table")
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert sorted(outputs[0]) == ["frontier.csv", "frontier.md", "frontier.png"]
    assert outputs[0] == outputs[1]
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# x\n\n<!-- frontier:start -->\n_Generated by `make report`") and text.endswith("tail\n")
    assert "- **≤ 35 MB**" in text and "old" not in text
    table = table_readme.read_text(encoding="utf-8")
    assert "| 2 (of 3) |" in table and "![accuracy against size and speed](b/frontier.png)" in table
    with pytest.raises(InputError, match="missing or malformed"):
        frontier_report([runs], tmp_path / "c", readme=tmp_path / "exp.md")
    with pytest.raises(InputError, match="runs folder not found"):
        frontier_report([tmp_path / "none"], tmp_path / "d")


def test_speeds_come_only_from_the_side_by_side_file(runs, tmp_path):
    """The speed column and axis use the side-by-side measurement of each model, never the speed a trial
    recorded under its machine's load; without the file they stay empty."""
    import csv

    import pandas as pd

    from analysis.frontier import model_label

    trials = load_all([runs]).trials
    small = trials[trials["params.width"] == 64].iloc[0]
    speed_file = tmp_path / "speeds.csv"
    with speed_file.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "setting", "words_per_second"])
        writer.writerow([model_label(small), "small", 123456.0])
    out = tmp_path / "with"
    frontier_report([runs], out, speeds=speed_file)
    frame = pd.read_csv(out / "frontier.csv")
    measured = frame.dropna(subset=["inference_words_per_second"])
    assert set(measured["inference_words_per_second"]) == {123456.0}
    # no spread columns in this file: the range is the median itself
    assert set(measured["inference_words_per_second_min"]) == set(measured["inference_words_per_second_max"]) == {123456.0}
    assert "123.5 (123.5–123.5)" in (out / "frontier.md").read_text(encoding="utf-8")
    small_on_cpu = frame[(frame["model"] == model_label(small)) & (frame["device"] == "cpu")]
    assert len(measured) == len(small_on_cpu) == 3  # without pretraining, LMAO, LMAO on more text
    without = tmp_path / "without"
    frontier_report([runs], without)
    assert pd.read_csv(without / "frontier.csv")["inference_words_per_second"].isna().all()
    with pytest.raises(InputError, match="speed file not found"):
        frontier_report([runs], tmp_path / "missing", speeds=tmp_path / "nope.csv")


STOCK_BOW = {"textcat_arch": "bow", "bow_ngram_size": 1, "bow_rows": 262144, "static_vectors_input": False,
             "batch_schedule": "words", "batch_start": 100, "batch_stop": 1000, "batch_compound": 1.001,
             "dropout": 0.1, "learn_rate": 0.001, "L2": 0.01}


def write_stock_check(folder: Path, scores) -> None:
    """``make stock-check``'s files: spacy train's own score of the stock config, per seed."""
    for seed, score in enumerate(scores):
        path = folder / f"seed-{seed}" / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"seed": seed, "dev_accuracy": score, "model_size_bytes": 3.45 * MB,
                                    "what": "spacy train on `spacy init config -p textcat -o efficiency`"}))


def test_the_stronger_stock_anchor_is_the_one_every_model_is_measured_against(runs, tmp_path):
    """spacy train's own run of the stock config and the same config trained by a trial are both anchors
    in the table; the headline measures against the stronger, and a bad stock file is one clear error."""
    for seed, score in enumerate((0.770, 0.772, 0.774)):
        path = write_trial(runs, "stock-bow", seed, score, size=3.5 * MB, pretrain_epochs=0, **STOCK_BOW)
        data = json.loads(path.read_text())
        data["config_overrides"] = {"training.optimizer.use_averages": False}
        path.write_text(json.dumps(data))
    stock = tmp_path / "stock"
    write_stock_check(stock, (0.781, 0.779, 0.783))
    out = tmp_path / "out"
    frontier_report([runs], out, stock=[stock])
    table = (out / "frontier.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("|") and "anchor:" in line]
    assert len(rows) == 2 and "`spacy train` itself" in rows[0] and "78.10 ± 0.20" in rows[0]
    assert "77.20 ± 0.20" in rows[1]
    assert ("- **Against spaCy's stock textcat at ≤ 10 MB**: +1.43 points over the stock `-o efficiency` config "
            "trained by `spacy train` itself (78.10 ± 0.20, n=3, 3.5 MB) at 6.2 MB: 79.53 ± 0.55") in table
    assert "≤ 4 MB" not in table  # no non-anchor model that small
    bad = tmp_path / "bad"
    write_stock_check(bad, (0.78,))
    (bad / "seed-0" / "results.json").write_text(json.dumps({"seed": 0}))
    with pytest.raises(InputError, match="not a stock-check result"):
        frontier_report([runs], out, stock=[bad])


def makefile_value(name: str) -> str:
    match = re.search(rf"^{name} \?= (.*)$", (REPO / "Makefile").read_text(encoding="utf-8"), re.M)
    assert match, name
    return match.group(1)


def test_committed_frontier_regenerates_byte_identically(tmp_path, monkeypatch):
    """`make report`'s frontier step on the committed raw results gives the committed files and blocks."""
    monkeypatch.chdir(REPO)
    runs = [Path(p) for p in makefile_value("FRONTIER_RUNS").split() if (REPO / p).exists()]
    readme, table_readme = tmp_path / "README.md", tmp_path / "lmao-imdb-1k" / "README.md"
    table_readme.parent.mkdir()
    shutil.copy(REPO / "README.md", readme)
    shutil.copy(REPO / "lmao-imdb-1k" / "README.md", table_readme)
    out = tmp_path / "analysis" / "results"
    speeds = REPO / makefile_value("FRONTIER_SPEEDS")
    stock = [Path(p) for p in makefile_value("STOCK_CHECKS").split() if (REPO / p).exists()]
    frontier_report(runs, out, readme=readme, table_readme=table_readme, speeds=speeds if speeds.is_file() else None,
                    stock=stock)
    for name in ("frontier.md", "frontier.csv", "frontier.png"):
        assert (out / name).read_bytes() == (REPO / "analysis" / "results" / name).read_bytes(), name
    assert readme.read_text(encoding="utf-8") == (REPO / "README.md").read_text(encoding="utf-8")
    assert table_readme.read_text(encoding="utf-8") == (REPO / "lmao-imdb-1k" / "README.md").read_text(encoding="utf-8")


def test_frontier_design_pairs_every_pretrained_setting_and_its_tables_are_built_by_make():
    from experiments.sweeps.campaign import load_design
    from experiments.training.params import PARAMS

    design = load_design(REPO / "lmao-imdb-1k" / "frontier.yml", repo_root=REPO)
    assert design.seeds == [0, 1, 2]
    names = {s.name for s in design.settings}
    assert set(makefile_value("FRONTIER_FIRST").split()) <= names
    tables = {f"corpus/vectors-imdb-100k-{t}" for t in makefile_value("FRONTIER_TABLES").split()}
    defaults = {k: p.default for k, p in PARAMS.items()}

    def model(p):
        return {k: v for k, v in p.items() if not (k == "objective" or k.startswith("pretrain_") or k == "corpus_dir")}

    for setting in design.settings:
        params = {**defaults, **setting.params}
        assert params["vectors"] in tables | {"corpus/vectors-imdb-100k"}, setting.name
        if not params["pretrain_epochs"]:
            continue
        # a twin without pretraining: the same params but the pretraining ones and the corpus folder
        twins = [s.name for s in design.settings
                 if not s.params.get("pretrain_epochs") and model(params) == model({**defaults, **s.params})]
        assert twins, f"{setting.name} has no setting without pretraining to pair with"
    for line in (REPO / "lmao-imdb-1k" / "frontier.yml").read_text(encoding="utf-8").splitlines():
        assert "SIZE_" not in line, "every size estimate is filled in"


@pytest.mark.slow
def test_size_estimate_matches_the_trained_model(imdb_corpus, tiny_trial_params, tmp_path):
    """analysis.sizes builds the pipeline a trial trains (spaCy's init_nlp, the corpus' strings): its
    bytes on disk are the trained model-best's, byte for byte (the weights are the same shapes)."""
    from analysis.sizes import estimate_size
    from experiments.training.config import load_experiment
    from experiments.training.params import resolve
    from experiments.training.trial import run_trial

    experiment = REPO / "lmao-imdb-1k"
    overrides = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 0, "max_epochs": 1}
    for static in (True, False):
        params = resolve(load_experiment(experiment)["params"], {**overrides, "static_vectors_input": static})
        estimate = estimate_size(experiment, params, imdb_corpus)
        results = run_trial(experiment, tmp_path / f"t-{static}", {**overrides, "static_vectors_input": static},
                            gpu="-1", eval_processes=1)
        assert estimate == results["model_size_bytes"], static


def test_make_cuts_each_frontier_table_with_lmao_vectors_prune(tmp_path):
    """The Makefile's pattern rule reads a table's size from its folder name (what frontier.yml names)."""
    import subprocess

    done = subprocess.run(["make", "-n", "frontier-vectors", f"CORPUS={tmp_path}", "FRONTIER_TABLES=5k 10k-d50 d50"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    commands = " ".join(done.stdout.replace("\\\n", " ").split())
    base = f"{tmp_path}/vectors-imdb-100k"
    assert f"vectors prune {base} {base}-5k --rows 5000 touch" in commands
    assert f"vectors prune {base} {base}-10k-d50 --rows 10000 --dims 50 touch" in commands
    assert f"vectors prune {base} {base}-d50 --dims 50 touch" in commands


def test_frontier_cli_errors_in_one_line(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "lmao", "frontier", str(tmp_path / "missing"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {tmp_path / 'missing'}: runs folder not found"
    assert not (tmp_path / "out").exists()


def test_headline_says_plainly_when_pretrainings_gain_on_the_best_model_is_within_seed_noise(tmp_path):
    """A best mean that rests on one lucky seed is not sold as a gain: with p >= 0.05 the line says the
    difference is within seed noise instead of "buys"."""
    runs = tmp_path / "runs"
    for seed, (plain, lmao) in enumerate(((0.836, 0.834), (0.8325, 0.8338), (0.8342, 0.8455))):
        write_trial(runs, "ens", seed, plain, size=10.0 * MB)
        write_trial(runs, "ens-lmao", seed, lmao, size=10.0 * MB, **LMAO)
    ten = next(x for x in headline(cells(load_all([runs]).trials)).splitlines() if x.startswith("- **≤ 10 MB**"))
    assert "Pretraining buys" not in ten
    assert ("Pretraining's +0.35 points on this model, against 83.42 ± 0.18 without it, are within seed noise "
            "(paired by seed, n=3, p = 0.4") in ten and "not below 0.05)." in ten


def test_frontier_labels_name_the_rows_each_model_was_built_with():
    """A model's label is what was trained: the stock accuracy config's per-attribute hash rows (a config
    override), not the ``embed_rows`` param the override replaced; the side-by-side speed file agrees."""
    import pandas as pd

    from analysis.speeds import design_models

    designs = [REPO / "lmao-imdb-1k" / "campaign.yml", REPO / "lmao-imdb-1k" / "frontier.yml"]  # make frontier-speed's
    labels = {m["setting"]: label for label, m in design_models(designs, Path("corpus/imdb-1k")).items()}
    assert labels["stock-ensemble"] == ("anchor: spaCy's stock textcat config `-o accuracy` (bag of words "
                                        "(unigrams, 262,144 rows) + CNN (no static vectors; width 256, depth 8, "
                                        "embed rows 5000/1000/2500/2500))")
    assert labels["v10k-d50-w64-r4000"].endswith("width 64, depth 4, embed rows 4000")
    speeds = pd.read_csv(REPO / "analysis" / "results" / "frontier-speed.csv")
    for row in speeds.itertuples():
        assert labels.get(row.setting, row.model) == row.model, row.setting
