"""Real tiny sweeps (`lmao sweep`, one `lmao trial` process per trial) on the tiny IMDB slice: both
samplers, pruning, the pretraining cache shared across trials, resume, a worker killed with SIGKILL, and
two workers sharing a PostgreSQL study."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import optuna
import pytest
from optuna.trial import TrialState

from tests.services import wait_for

REPO = Path(__file__).resolve().parents[1]
TRIAL_ARGS = ["--", "--gpu", "-1", "--eval-processes", "1"]
HEADER = "# lmao sweep: study"

pytestmark = pytest.mark.slow


def make_experiment(tmp_path: Path, sweep_yml: str) -> Path:
    """A copy of lmao-imdb-1k (same name, config and defaults) with a tiny search space."""
    folder = tmp_path / "exp" / "lmao-imdb-1k"
    folder.mkdir(parents=True)
    for name in ("config.cfg", "defaults.yml"):
        shutil.copy(REPO / "lmao-imdb-1k" / name, folder / name)
    (folder / "sweep.yml").write_text(sweep_yml)
    return folder


def fixed_line(corpus: Path, tiny: Dict, **extra) -> str:
    params = {**{k: v for k, v in tiny.items() if k != "learn_rate"}, "corpus_dir": str(corpus), **extra}
    return "fixed: {" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in params.items()) + "}"


def sweep_cmd(experiment: Path, runs: Path, *args: str) -> List[str]:
    return [sys.executable, "-m", "experiments", "sweep", str(experiment), "--runs", str(runs),
            "--heartbeat", "1", "--kill-grace", "3", *args, *TRIAL_ARGS]


def env() -> Dict[str, str]:
    out = {**os.environ, "LMAO_TRACKING": "0"}
    out.pop("POLYAXON_HOST", None)
    return out


def run_sweep(experiment: Path, runs: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(sweep_cmd(experiment, runs, *args), cwd=REPO, env=env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done


def load(runs: Path, study: str, storage: str = "") -> optuna.Study:
    return optuna.load_study(study_name=study, storage=storage or f"sqlite:///{runs / 'optuna.sqlite3'}")


def results_of(trial: optuna.trial.FrozenTrial) -> dict:
    return json.loads((Path(trial.user_attrs["result_dir"]) / "results.json").read_text())


def starts(result_dir: Path) -> int:
    """How many times a worker started this trial folder's process."""
    log = result_dir / "trial.log"
    return log.read_text().count(HEADER) if log.exists() else 0


def test_random_sweep_prunes_a_hopeless_trial(imdb_corpus, tiny_trial_params, tmp_path):
    """Trial 0 learns; trial 1 (learn rate 1e-7) stays at its initial score and is pruned mid-way,
    not before the warm-up epochs, with the reason in its results.json."""
    experiment = make_experiment(tmp_path, f"""
metric: accuracy
n_trials: 2
pruner: {{kind: median, n_startup_trials: 1, n_warmup_steps: 2}}
{fixed_line(imdb_corpus, tiny_trial_params, pretrain_epochs=0, max_epochs=12)}
params:
  learn_rate: {{loguniform: [1.0e-8, 1.0e-2]}}
""")
    runs = tmp_path / "runs"
    storage = f"sqlite:///{runs / 'optuna.sqlite3'}"
    runs.mkdir()
    study = optuna.create_study(study_name="prune", storage=storage, direction="maximize")
    study.enqueue_trial({"learn_rate": 0.002})
    study.enqueue_trial({"learn_rate": 1e-7})
    out = run_sweep(experiment, runs, "--search", "random", "--study", "prune")
    trials = load(runs, "prune").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED], out.stderr[-2000:]
    good, bad = results_of(trials[0]), results_of(trials[1])
    assert good["status"] == "completed" and len(good["epochs"]) == 12
    assert bad["status"] == "pruned" and bad["params"]["learn_rate"] == pytest.approx(1e-7)
    # Partial results kept: the epochs it finished, fewer than max_epochs; Optuna saw the same scores.
    # (12 epochs: a tiny trial's epoch takes about a second, so the poller sees one before the end.)
    assert 1 <= len(bad["epochs"]) < 12
    reported = trials[1].intermediate_values
    assert {r["epoch"]: r["dev_score"] for r in bad["epochs"]}.items() >= reported.items()
    assert Path(trials[1].user_attrs["result_dir"]) == runs / "prune" / "trial-0001"
    assert bad["meta"] == {"study": "prune", "search": "random", "trial_number": "1"}  # provenance in the file
    assert "study prune: 1 complete, 1 pruned" in out.stdout
    # Warm-up: no pruning before epoch 2; the reason names the epoch, its score and the median it missed.
    prune = bad["prune"]
    assert prune["epoch"] == len(bad["epochs"]) >= 2
    assert prune["score"] == bad["epochs"][-1]["dev_score"]
    assert prune["median_of_earlier"] == good["epochs"][prune["epoch"] - 1]["dev_score"]
    assert prune["earlier_trials"] == 1 and prune["pruner"] == "median"
    assert prune["settings"] == {"n_startup_trials": 1, "n_warmup_steps": 2}
    assert prune["reason"] == (f"pruned by the median pruner after epoch {prune['epoch']}: dev accuracy "
                               f"{prune['score']:.4f}, median of 1 earlier trials at that epoch "
                               f"{prune['median_of_earlier']:.4f}")


def test_sweep_whose_trials_all_fail_exits_nonzero_naming_the_cause_once(tiny_trial_params, tmp_path):
    experiment = make_experiment(tmp_path, f"""
metric: accuracy
n_trials: 3
pruner: none
{fixed_line(tmp_path / "no-corpus", tiny_trial_params, pretrain_epochs=0, max_epochs=1)}
params:
  learn_rate: {{loguniform: [1.0e-4, 1.0e-2]}}
""")
    runs = tmp_path / "runs"
    done = subprocess.run(sweep_cmd(experiment, runs, "--study", "broken"), cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {runs / 'broken'}: all 3 trials failed, 3 with: "
                      f"{tmp_path / 'no-corpus' / 'train.spacy'}: prepared corpus file missing "
                      "(run `lmao data ...` first)"]
    assert "Traceback" not in done.stdout + done.stderr


def tpe_suggested(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether TPE itself chose the trial's params (not its random start-up sampler): optuna 5.0.0's
    multivariate TPESampler (the default for one objective) shares every params set it models as the
    trial system attrs ``tpe:relative_params:N`` (optuna/samplers/_tpe/sampler.py, sample_relative)."""
    shared = "".join(v for k, v in sorted(trial.system_attrs.items()) if k.startswith("tpe:relative_params:"))
    if not shared:
        return False
    assert json.loads(shared) == trial.params
    return True


def test_tpe_sweep_shares_pretraining_and_resumes(imdb_corpus, tiny_trial_params, tmp_path):
    """Same architecture in every trial: the second trial reuses the first one's pretraining. After one
    random start-up trial (``--startup-trials 1``) TPE picks the params. Re-running with a bigger budget
    continues the study without touching finished trials."""
    experiment = make_experiment(tmp_path, f"""
metric: accuracy
n_trials: 2
pruner: none
{fixed_line(imdb_corpus, tiny_trial_params, pretrain_epochs=1, max_epochs=2)}
params:
  learn_rate: {{loguniform: [1.0e-3, 1.0e-2]}}
  dropout: {{uniform: [0.0, 0.3]}}
""")
    runs = tmp_path / "runs"
    out = run_sweep(experiment, runs, "--search", "tpe", "--seed", "0", "--startup-trials", "1")
    study = load(runs, "lmao-imdb-1k-tpe")
    assert study.user_attrs["search"] == "tpe" and study.user_attrs["experiment"] == "lmao-imdb-1k"
    first = study.get_trials()
    assert [t.state for t in first] == [TrialState.COMPLETE] * 2, out.stderr[-2000:]
    r0, r1 = results_of(first[0]), results_of(first[1])
    assert r0["pretraining"]["cached"] is False and r0["pretraining"]["seconds"] > 0
    assert r1["pretraining"]["cached"] is True and r1["pretraining"]["seconds"] == 0
    assert r0["pretraining"]["cache_key"] == r1["pretraining"]["cache_key"]
    assert r0["params"]["learn_rate"] != r1["params"]["learn_rate"]
    assert first[0].value == r0["best_dev_score"]
    assert [tpe_suggested(t) for t in first] == [False, True]
    before = {t.number: (Path(t.user_attrs["result_dir"]) / "results.json").read_bytes() for t in first}

    again = run_sweep(experiment, runs, "--search", "tpe", "--n-trials", "3", "--startup-trials", "1")
    assert "2/3 trials finished" in again.stderr
    trials = load(runs, "lmao-imdb-1k-tpe").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert tpe_suggested(trials[2])
    for number, content in before.items():
        result_dir = Path(trials[number].user_attrs["result_dir"])
        assert (result_dir / "results.json").read_bytes() == content and starts(result_dir) == 1
    # Nothing left to do: a third run starts no trial.
    run_sweep(experiment, runs, "--search", "tpe", "--n-trials", "3", "--startup-trials", "1")
    assert len(load(runs, "lmao-imdb-1k-tpe").get_trials()) == 3
    # Resuming with another search space is refused, naming the file.
    (experiment / "sweep.yml").write_text((experiment / "sweep.yml").read_text().replace("0.3]", "0.4]"))
    refused = subprocess.run(sweep_cmd(experiment, runs, "--search", "tpe"), cwd=REPO, env=env(),
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "another search space" in refused.stderr
    assert str(experiment / "sweep.yml") in refused.stderr


def status(result_dir: Path) -> tuple:
    try:
        data = json.loads((result_dir / "results.json").read_text())
    except (FileNotFoundError, ValueError):
        return (None, 0)
    return (data["status"], len(data["epochs"]))


def test_sigkilled_worker_trial_is_failed_and_requeued(imdb_corpus, tiny_trial_params, tmp_path):
    experiment = make_experiment(tmp_path, f"""
metric: accuracy
n_trials: 2
pruner: none
{fixed_line(imdb_corpus, tiny_trial_params, pretrain_epochs=0, max_epochs=3)}
params:
  learn_rate: {{loguniform: [1.0e-3, 1.0e-2]}}
""")
    runs = tmp_path / "runs"
    study_dir = runs / "lmao-imdb-1k-random"
    worker = subprocess.Popen(sweep_cmd(experiment, runs, "--search", "random"), cwd=REPO, env=env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: status(study_dir / "trial-0000")[0] == "completed", 300, "trial 0 to complete")
        wait_for(lambda: status(study_dir / "trial-0001")[0] == "running" and status(study_dir / "trial-0001")[1] >= 1,
                 300, "trial 1's first epoch")
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    finished = (study_dir / "trial-0000" / "results.json").read_bytes()
    # The trial process died with its worker (parent-death signal): no epoch gets added any more.
    time.sleep(4)  # also lets the heartbeat go stale (grace: 3 x 1 s)
    frozen_at = status(study_dir / "trial-0001")
    time.sleep(3)
    assert status(study_dir / "trial-0001") == frozen_at and frozen_at[0] == "running"

    run_sweep(experiment, runs, "--search", "random")
    trials = load(runs, "lmao-imdb-1k-random").get_trials()
    states = [t.state for t in trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].state == TrialState.FAIL
    killed = json.loads((study_dir / "trial-0001" / "results.json").read_text())
    assert killed["status"] == "failed" and "worker lost" in killed["error"]
    assert len(killed["epochs"]) == frozen_at[1]  # partial epochs kept
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == trials[1].params
    # The finished trial was neither touched nor run again; every trial folder was started once.
    assert (study_dir / "trial-0000" / "results.json").read_bytes() == finished
    for t in trials:
        assert starts(Path(t.user_attrs["result_dir"])) == 1


def test_two_workers_share_a_postgres_study(postgres_url, imdb_corpus, tiny_trial_params, tmp_path):
    """Both workers pull from one queue of 4 trials: each trial runs exactly once, and both work."""
    experiment = make_experiment(tmp_path, f"""
metric: accuracy
n_trials: 4
pruner: none
{fixed_line(imdb_corpus, tiny_trial_params, pretrain_epochs=0, max_epochs=1)}
params:
  learn_rate: {{loguniform: [1.0e-4, 1.0e-2]}}
""")
    runs = tmp_path / "runs"
    study = optuna.create_study(study_name="pg", storage=postgres_url, direction="maximize")
    rates = [0.001, 0.002, 0.003, 0.004]
    for rate in rates:
        study.enqueue_trial({"learn_rate": rate})
    args = ["--search", "random", "--storage", postgres_url, "--study", "pg"]
    workers = [subprocess.Popen(sweep_cmd(experiment, runs, *args), cwd=REPO, env=env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-3000:]
    trials = optuna.load_study(study_name="pg", storage=postgres_url).get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(trials) == 4 and len(done) == 4  # the budget, not one more
    assert sorted(t.params["learn_rate"] for t in done) == pytest.approx(rates)
    dirs = [Path(t.user_attrs["result_dir"]) for t in trials]
    assert len(set(dirs)) == len(trials)
    for t, result_dir in zip(trials, dirs):
        assert starts(result_dir) == 1
        assert results_of(t)["params"]["learn_rate"] == pytest.approx(t.params["learn_rate"])
    assert len({t.user_attrs["worker"] for t in trials}) == 2


def test_one_sweep_process_runs_trials_in_parallel_with_workers(imdb_corpus, tiny_trial_params, tmp_path):
    """`--workers 2`: one sweep process keeps two trial processes running at once (their run times
    overlap), each trial in its own folder, started once, and the budget is not overshot."""
    from datetime import datetime

    experiment = make_experiment(tmp_path, f"""
metric: accuracy
n_trials: 3
pruner: none
{fixed_line(imdb_corpus, tiny_trial_params, pretrain_epochs=0, max_epochs=2)}
params:
  learn_rate: {{loguniform: [1.0e-3, 1.0e-2]}}
""")
    runs = tmp_path / "runs"
    out = run_sweep(experiment, runs, "--search", "random", "--study", "two", "--workers", "2")
    trials = load(runs, "two").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3, out.stderr[-2000:]
    assert "study two: 3 complete" in out.stdout
    assert len({t.user_attrs["worker"] for t in trials}) == 1  # one sweep process ran them all
    dirs = [Path(t.user_attrs["result_dir"]) for t in trials]
    assert len(set(dirs)) == 3 and all(starts(d) == 1 for d in dirs)
    spans = sorted((datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"]))
                   for r in map(results_of, trials))
    assert spans[1][0] < spans[0][1], spans  # the second trial started before the first one finished


def test_hyperband_pruner_in_a_sweep(imdb_corpus, tiny_trial_params, tmp_path):
    """sweep.yml's hyperband pruner stops a trial that falls behind at a rung. With min_resource 4 and
    reduction_factor 3 (max_resource 8) Optuna's HyperbandPruner has one bracket (floor(log_3(8/4)) + 1),
    so both trials race in it: the first rung is epoch 4, where a trial must match the best so far (on
    this tiny slice the good trial is still at chance after epoch 2, above it from epoch 4)."""
    experiment = make_experiment(tmp_path, f"""
metric: accuracy
n_trials: 2
pruner: {{kind: hyperband, min_resource: 4, max_resource: 8, reduction_factor: 3}}
{fixed_line(imdb_corpus, tiny_trial_params, pretrain_epochs=0, max_epochs=6)}
params:
  learn_rate: {{loguniform: [1.0e-8, 1.0e-2]}}
""")
    runs = tmp_path / "runs"
    runs.mkdir()
    study = optuna.create_study(study_name="hb", storage=f"sqlite:///{runs / 'optuna.sqlite3'}",
                                direction="maximize")
    study.enqueue_trial({"learn_rate": 0.002})
    study.enqueue_trial({"learn_rate": 1e-7})
    out = run_sweep(experiment, runs, "--search", "random", "--study", "hb")
    good, bad = load(runs, "hb").get_trials()
    assert (good.state, bad.state) == (TrialState.COMPLETE, TrialState.PRUNED), out.stderr[-2000:]
    assert len(results_of(good)["epochs"]) == 6
    stopped = results_of(bad)
    assert stopped["status"] == "pruned" and stopped["prune"]["pruner"] == "hyperband"
    assert stopped["prune"]["settings"] == {"min_resource": 4, "max_resource": 8, "reduction_factor": 3}
    rung = stopped["prune"]["epoch"]
    assert rung == 4 and len(stopped["epochs"]) == rung
    # At that rung it scored below the first trial, whose score there was the bar.
    assert bad.intermediate_values[rung] < good.intermediate_values[rung]
    assert stopped["prune"]["reason"].startswith(f"pruned by the hyperband pruner after epoch {rung}: ")
