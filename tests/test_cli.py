"""The command line itself (no training): help texts, the one error idiom, no import cycle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmao.cli import app
from experiments.training.params import PARAMS

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO / "lmao-imdb-1k"


def test_trial_help_lists_every_param_and_shows_flags_without_a_value():
    res = CliRunner().invoke(app, ["trial", "--help"])
    assert res.exit_code == 0, res.output
    for name, spec in PARAMS.items():
        assert f"  {name} " in res.output, name
    assert "width                      int = 96: tok2vec width" in res.output
    assert "static_vectors_input       bool = false:" in res.output
    assert "objective                  vectors|characters|trigram = vectors: LMAO objective" in res.output
    final = next(line for line in res.output.splitlines() if line.strip().startswith("--final"))
    assert "<bool>" not in final and "<bool>" not in res.output


def test_misspelt_param_is_one_line_with_a_suggestion(tmp_path):
    res = CliRunner().invoke(app, ["trial", str(IMDB), "--out", str(tmp_path / "t"), "-P", "widht=16"])
    assert res.exit_code == 1
    assert res.output.startswith("error: -P: unknown param 'widht'; did you mean 'width'? (known: ")
    assert len(res.output.strip().splitlines()) == 1


def test_bad_value_in_defaults_yml_names_the_file(tmp_path):
    experiment = tmp_path / "exp"
    experiment.mkdir()
    (experiment / "defaults.yml").write_text("task: textcat\nparams:\n  dropuot: 0.2\n")
    res = CliRunner().invoke(app, ["trial", str(experiment), "--out", str(tmp_path / "t")])
    assert res.exit_code == 1
    assert res.output.strip().startswith(f"error: {experiment / 'defaults.yml'}: unknown param 'dropuot'; "
                                         "did you mean 'dropout'?")


def test_unexpected_exceptions_keep_their_traceback(tmp_path, monkeypatch):
    import experiments.training.trial

    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not bad input")

    monkeypatch.setattr(experiments.training.trial, "run_trial", broken)
    res = CliRunner().invoke(app, ["trial", str(IMDB), "--out", str(tmp_path / "t")])
    assert res.exit_code == 1 and isinstance(res.exception, RuntimeError)
    assert "error:" not in res.output


@pytest.mark.parametrize("command, search, message", [
    ("sweep", "bayes", "error: --search: expected one of ['random', 'tpe'], got 'bayes' ('bayes' is called 'tpe' here)"),
    # Polyaxon files take Polyaxon's matrix kinds and `tpe`, the tuner run (polyaxonfile.tpe.yml).
    ("polyaxonfile", "hyperband", "error: --search: expected one of ['random', 'bayes', 'tpe'], got 'hyperband'"),
])
def test_search_vocabularies_point_at_each_other(command, search, message):
    res = CliRunner().invoke(app, [command, str(IMDB), "--search", search])
    assert res.exit_code == 1 and res.output.strip() == message


def test_no_import_cycle_and_python_m_analysis_does_not_load_the_lmao_cli():
    code = ("import sys, experiments.cli_sweep, analysis.__main__; "
            "print('experiments.cli' in sys.modules, 'pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
    help_ = subprocess.run([sys.executable, "-m", "analysis", "--help"], capture_output=True, text=True, cwd=REPO)
    assert help_.returncode == 0 and "Usage: python -m analysis" in help_.stdout and "--no-plots" in help_.stdout


def test_trial_and_sweep_commands_pass_the_polyaxon_hooks(tmp_path, monkeypatch):
    """Training and sweeps never import the tracker: `lmao trial` passes make_tracker, `lmao sweep` mark_stopped."""
    import experiments.sweeps.sweep
    import experiments.training.trial
    from experiments.polyaxon.tracking import make_tracker, mark_stopped

    seen = {}

    def fake_trial(*args, **kwargs):
        seen["trial"] = kwargs
        raise RuntimeError("stop here")

    def fake_sweep(options):
        seen["sweep"] = options
        raise RuntimeError("stop here")

    monkeypatch.setattr(experiments.training.trial, "run_trial", fake_trial)
    monkeypatch.setattr(experiments.sweeps.sweep, "run_sweep", fake_sweep)
    CliRunner().invoke(app, ["trial", str(IMDB), "--out", str(tmp_path / "t")])
    CliRunner().invoke(app, ["sweep", str(IMDB), "--runs", str(tmp_path / "runs")])
    assert seen["trial"]["tracker_factory"] is make_tracker
    assert seen["sweep"].on_pruned is mark_stopped
