"""`lmao campaign`: a fixed design runs each (setting, seed) once, and a rerun continues where it stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.campaign import summary
from experiments.sweeps.campaign import load_design, run_campaign
from experiments.common.errors import InputError
from experiments.training.results import load_results

REPO = Path(__file__).resolve().parents[1]


def write_design(tmp_path: Path, corpus: Path, **extra) -> Path:
    design = {
        "experiment": str(REPO / "lmao-imdb-1k"),
        "runs": str(tmp_path / "runs"),
        "seeds": [0, 1],
        "params": {"corpus_dir": str(corpus), "width": 32, "depth": 1, "embed_rows": 1000, "max_epochs": 1,
                   "patience": 0, "pretrain_epochs": 0},
        "settings": [{"name": "lr-low", "params": {"learn_rate": 0.001}},
                     {"name": "lr-high", "params": {"learn_rate": 0.01},
                      "overrides": {"training.optimizer.use_averages": True}}],
        **extra,
    }
    path = tmp_path / "design.yml"
    path.write_text(json.dumps(design))  # JSON is YAML
    return path


@pytest.mark.slow
def test_campaign_runs_each_trial_once_and_resumes(imdb_corpus, tmp_path):
    design = load_design(write_design(tmp_path, imdb_corpus))
    assert [(t.setting.name, t.seed) for t in design.trials()] == [
        ("lr-low", 0), ("lr-high", 0), ("lr-low", 1), ("lr-high", 1)]  # seed-major: all settings early
    # Stopped after two trials (a session's time limit): those two are there, complete.
    assert run_campaign(design, max_trials=2) == {"skipped": 0, "completed": 2, "failed": 0}
    first = load_results(tmp_path / "runs" / "lr-high" / "seed-0")
    assert first["status"] == "completed" and first["seed"] == 0 and first["params"]["learn_rate"] == 0.01
    assert first["config_overrides"] == {"training.optimizer.use_averages": True}
    assert first["meta"] == {"campaign": "design.yml", "setting": "lr-high"}
    assert not (tmp_path / "runs" / "lr-low" / "seed-1").exists()
    # An interrupted trial (results.json still "running") is run again from scratch, never mixed.
    interrupted = tmp_path / "runs" / "lr-low" / "seed-1"
    interrupted.mkdir(parents=True)
    (interrupted / "results.json").write_text(json.dumps({"status": "running", "epochs": [{"epoch": 1}]}))
    (interrupted / "stale-file").write_text("from the interrupted attempt")
    done_before = (tmp_path / "runs" / "lr-high" / "seed-0" / "results.json").stat().st_mtime_ns
    assert run_campaign(design) == {"skipped": 2, "completed": 2, "failed": 0}
    assert (tmp_path / "runs" / "lr-high" / "seed-0" / "results.json").stat().st_mtime_ns == done_before
    assert not (interrupted / "stale-file").exists()
    assert load_results(interrupted)["status"] == "completed" and load_results(interrupted)["seed"] == 1
    # Everything done: nothing runs.
    assert run_campaign(design) == {"skipped": 4, "completed": 0, "failed": 0}
    table = summary(design)
    assert list(table.index) == ["lr-low", "lr-high"] and list(table["n"]) == [2, 2]


def fake_finished(runs: Path, setting: str, seed: int, scores, wall_seconds: float = 60.0) -> None:
    """A completed trial's results.json with just what the summary reads (no training in a fast test)."""
    out = runs / setting / f"seed-{seed}"
    out.mkdir(parents=True)
    best = max(range(len(scores)), key=lambda i: scores[i]) + 1
    (out / "results.json").write_text(json.dumps({
        "status": "completed", "seed": seed, "best_epoch": best, "wall_seconds": wall_seconds,
        "epochs": [{"epoch": i + 1, "dev_score": s} for i, s in enumerate(scores)]}))


def test_campaign_summary_of_two_designs_into_a_readme_block(tmp_path):
    """The before/after table of lmao-imdb-1k/README.md: rows from two designs, written between markers."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    corpus = tmp_path / "corpus"  # never read: the trials below are already finished
    before = write_design(tmp_path / "a", corpus, settings=[{"name": "old"}, {"name": "unused"}])
    after = write_design(tmp_path / "b", corpus, settings=[{"name": "recipe"}])
    fake_finished(tmp_path / "a" / "runs", "old", 0, [0.5, 0.7, 0.6, 0.65])
    fake_finished(tmp_path / "a" / "runs", "old", 1, [0.6, 0.8, 0.7, 0.8])
    fake_finished(tmp_path / "a" / "runs", "unused", 0, [0.5])
    fake_finished(tmp_path / "b" / "runs", "recipe", 0, [0.8, 0.85, 0.88, 0.9], wall_seconds=120)  # rising
    readme = tmp_path / "README.md"
    readme.write_text("# E\n\nkept\n<!-- ba:start -->\nstale\n<!-- ba:end -->\nkept too\n")
    cli = subprocess.run([sys.executable, "-m", "lmao", "campaign", str(before), "--summary", "--markdown",
                          "--also", str(after), "--only", "old", "--only", "recipe", "--readme", str(readme),
                          "--block", "ba"], capture_output=True, text=True, cwd=REPO)
    assert cli.returncode == 0, cli.stderr
    text = readme.read_text()
    assert text.startswith("# E\n\nkept\n<!-- ba:start -->\n| setting |") and text.endswith("<!-- ba:end -->\nkept too\n")
    rows = [line for line in text.splitlines() if line.startswith("| old") or line.startswith("| recipe")]
    # old: best 70 and 80 (mean 75, std 7.07), best epoch 2; largest drop after epoch 3 of the seed-mean
    # curve 75 - 72.5 = 2.5 points, of the worst seed (seed 0) 70 - 65 = 5 points.
    assert rows == ["| old | 2 | 75.00 | 7.07 | 2.0 | 2.50 | 5.00 | 1.0 | 55.0 75.0 65.0 72.5 |",
                    "| recipe | 1 | 90.00 |  | 4.0 | 0.00 | 0.00 | 2.0 | 80.0 85.0 88.0 90.0 |"]
    assert "unused" not in text
    # A README without the block's markers is left untouched, with one error line.
    plain = tmp_path / "PLAIN.md"
    plain.write_text("# no markers\n")
    cli = subprocess.run([sys.executable, "-m", "lmao", "campaign", str(before), "--summary", "--markdown",
                          "--readme", str(plain), "--block", "ba"], capture_output=True, text=True, cwd=REPO)
    assert cli.returncode == 1 and plain.read_text() == "# no markers\n"
    assert cli.stderr.strip() == f"error: {plain}: missing or malformed <!-- ba:start --> / <!-- ba:end --> markers (left untouched)"


def test_campaign_cli_reports_failures_and_exits_nonzero(imdb_corpus, tmp_path):
    path = write_design(tmp_path, imdb_corpus, seeds=[0],
                        settings=[{"name": "broken", "params": {"corpus_dir": str(tmp_path / "missing")}}])
    cli = subprocess.run([sys.executable, "-m", "lmao", "campaign", str(path)], capture_output=True,
                         text=True, cwd=REPO)
    assert cli.returncode == 1
    assert "0 run, 0 already done, 1 failed" in cli.stdout
    assert "prepared corpus file missing" in cli.stderr


@pytest.mark.parametrize("change, message", [
    ({"seeds": "0,1"}, "'seeds' must be a list of integers"),
    ({"settings": []}, "no 'settings' to run"),
    ({"settings": [{"params": {}}]}, "settings[0] needs a 'name'"),
    ({"settings": [{"name": "a", "params": {"widht": 3}}]}, "unknown param 'widht'"),
    ({"settings": [{"name": "a", "params": {"seed": 3}}]}, "seeds come from 'seeds'"),
    ({"settings": [{"name": "a"}, {"name": "a"}]}, "setting names must be unique"),
    ({"runs": None}, "'runs' (the folder the trials go to) is required"),
])
def test_bad_design_is_one_clear_error(tmp_path, change, message):
    path = write_design(tmp_path, tmp_path, **change)
    with pytest.raises(InputError) as err:
        load_design(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_a_finished_trial_from_another_recipe_is_not_counted(tmp_path):
    """Resuming after the experiment's defaults (or the design) changed must not mix two recipes."""
    from experiments.training.config import load_experiment
    from experiments.training.params import resolve

    design = load_design(write_design(tmp_path, tmp_path / "corpus"))
    trial = next(design.trials())
    params = resolve(load_experiment(design.experiment_dir)["params"], {**trial.setting.params, "seed": 0})
    trial.out.mkdir(parents=True)
    finished = {"status": "completed", "params": params, "config_overrides": {}, "epochs": []}
    (trial.out / "results.json").write_text(json.dumps(finished))
    assert run_campaign(design, only=["lr-low"], max_trials=0, dry_run=True)["skipped"] == 1
    (trial.out / "results.json").write_text(json.dumps({**finished, "params": {**params, "dropout": 0.5}}))
    with pytest.raises(InputError) as err:
        run_campaign(design, only=["lr-low"], dry_run=True)
    assert str(trial.out / "results.json") in str(err.value)
    assert f"dropout 0.5 -> {params['dropout']!r}" in str(err.value) and "new 'runs' folder" in str(err.value)


def test_a_campaign_splits_by_setting_and_seed(tmp_path):
    """Two processes (or machines) can each take a disjoint piece: ``--only`` settings, ``--seed`` seeds."""
    design = load_design(write_design(tmp_path, tmp_path / "corpus"))
    assert [(t.setting.name, t.seed) for t in design.trials(seeds=[1])] == [("lr-low", 1), ("lr-high", 1)]
    assert [(t.setting.name, t.seed) for t in design.trials(["lr-high"], [0])] == [("lr-high", 0)]
    with pytest.raises(InputError, match=r"--seed names seeds the design does not have: \[7\]"):
        run_campaign(design, seeds=[7], dry_run=True)


def test_committed_recipe_tables_regenerate_byte_identically(tmp_path):
    """`make recipe-tables` (a step of `make report`) rebuilds the study tables of the experiment READMEs from
    the committed raw results: run as the Makefile runs it, on copies of the READMEs, it changes nothing."""
    import shlex

    dry = subprocess.run(["make", "-n", "-s", "-o", ".venv/bin/.installed", "recipe-tables", "LMAO=lmao"],
                         capture_output=True, text=True, cwd=REPO)
    assert dry.returncode == 0, dry.stderr
    commands = [shlex.split(c) for c in dry.stdout.replace("\\\n", " ").splitlines() if c.startswith("lmao ")]
    readmes = {args[args.index("--readme") + 1] for args in commands}
    assert readmes == {"lmao-imdb-1k/README.md", "ontonotes-ner/README.md"} and len(commands) == 6
    for readme in readmes:
        (tmp_path / readme).parent.mkdir(parents=True)
        (tmp_path / readme).write_bytes((REPO / readme).read_bytes())
    for args in commands:
        at = args.index("--readme") + 1
        args[at] = str(tmp_path / args[at])
        cli = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO)
        assert cli.returncode == 0, (args, cli.stderr)
    for readme in readmes:
        assert (tmp_path / readme).read_text(encoding="utf-8") == (REPO / readme).read_text(encoding="utf-8"), readme
