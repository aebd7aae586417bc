"""`lmao campaign`: a fixed design runs each (setting, seed) once, and a rerun continues where it stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.campaign import load_design, run_campaign, summary
from experiments.errors import InputError
from experiments.results import load_results

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


def test_campaign_cli_reports_failures_and_exits_nonzero(imdb_corpus, tmp_path):
    path = write_design(tmp_path, imdb_corpus, seeds=[0],
                        settings=[{"name": "broken", "params": {"corpus_dir": str(tmp_path / "missing")}}])
    cli = subprocess.run([sys.executable, "-m", "experiments", "campaign", str(path)], capture_output=True,
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
    from experiments.config import load_experiment
    from experiments.params import resolve

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
