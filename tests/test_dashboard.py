"""Tracking: a real trial tracked into Polyaxon's own local server (`haupt sandbox`, what `make dashboard`
starts), read back through the Polyaxon client; and no tracking (no error) when no API is there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.sweep import stop_process
from experiments.tracking import NoTracker, make_tracker
from tests.services import free_port

REPO = Path(__file__).resolve().parents[1]

READ_BACK = """
import json, sys
from polyaxon.client import RunClient
info = json.load(open(sys.argv[1]))
client = RunClient(owner=info["owner"], project=info["project"], run_uuid=info["run_uuid"])
client.refresh_data()
data = client.run_data
metrics = client.get_metrics(names=["dev_score", "train_loss"])
lineage = client.get_artifacts_lineage(limit=200).results or []
runs = client.list(limit=50).results or []
print(json.dumps({
    "status": data.status, "name": data.name, "inputs": data.inputs, "outputs": data.outputs,
    "dev_score": metrics["dev_score"]["data"], "train_loss": metrics["train_loss"]["data"],
    "artifacts": {a.name: a.path for a in lineage}, "runs": [r.uuid for r in runs],
}, default=str))
"""


@pytest.mark.slow
def test_sandbox_tracks_a_trial(polyaxon_sandbox, imdb_corpus, tiny_trial_params, tmp_path):
    env = {**os.environ, "HOME": polyaxon_sandbox["home"], "POLYAXON_HOST": polyaxon_sandbox["host"]}
    env.pop("LMAO_TRACKING", None)
    out = tmp_path / "runs" / "dash" / "trial-0000"
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 0, "max_epochs": 2}
    assigns = [a for k, v in params.items() for a in ("-P", f"{k}={v}")]
    trial = subprocess.run([sys.executable, "-m", "experiments", "trial", str(REPO / "lmao-imdb-1k"), "--out",
                            str(out), *assigns, "--gpu", "-1", "--eval-processes", "1"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert trial.returncode == 0, trial.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    info = json.loads((out / "polyaxon.json").read_text())
    assert info["project"] == "lmao-imdb-1k" and info["managed"] is False
    read = subprocess.run([sys.executable, "-c", READ_BACK, str(out / "polyaxon.json")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert read.returncode == 0, read.stderr[-3000:]
    run = json.loads(read.stdout.strip().splitlines()[-1])
    assert run["status"] == "succeeded" and run["name"] == "dash-trial-0000"
    assert info["run_uuid"] in run["runs"]
    # inputs = params, per-epoch metrics, outputs = best score, artifacts = results.json
    assert run["inputs"]["width"] == 32 and run["inputs"]["learn_rate"] == pytest.approx(0.002)
    assert run["dev_score"]["step"] == [1, 2]
    assert run["dev_score"]["metric"] == pytest.approx([row["dev_score"] for row in results["epochs"]])
    assert run["train_loss"]["metric"] == pytest.approx([row["train_loss"] for row in results["epochs"]])
    assert run["outputs"]["best_dev_score"] == pytest.approx(results["best_dev_score"])
    assert run["outputs"]["best_epoch"] == results["best_epoch"]
    assert run["artifacts"]["results"].endswith("results.json")


def test_no_api_means_no_tracking(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("POLYAXON_HOST", raising=False)
    monkeypatch.delenv("POLYAXON_IS_MANAGED", raising=False)
    monkeypatch.delenv("LMAO_TRACKING", raising=False)
    tracker = make_tracker("lmao-imdb-1k", {"width": 32}, tmp_path / "t")
    assert isinstance(tracker, NoTracker)
    tracker.log_epoch({"epoch": 1, "dev_score": 0.5})
    tracker.finish({"status": "completed"})
    # Configured but down: a warning, no run, no error.
    monkeypatch.setenv("POLYAXON_HOST", f"http://127.0.0.1:{free_port()}")
    assert isinstance(make_tracker("lmao-imdb-1k", {}, tmp_path / "t"), NoTracker)
    assert "not reachable" in capsys.readouterr().err
    assert not (tmp_path / "t" / "polyaxon.json").exists()


START_ONLY = """
import sys, time
from pathlib import Path
from experiments.tracking import make_tracker
tracker = make_tracker("lmao-imdb-1k", {"width": 32}, Path(sys.argv[1]))
tracker.log_epoch({"epoch": 1, "dev_score": 0.5, "train_loss": 0.7})
print(type(tracker).__name__, flush=True)
time.sleep(600)  # still training when the sweep prunes it
"""

STATUS = """
import json, sys
from polyaxon.client import RunClient
info = json.load(open(sys.argv[1]))
client = RunClient(owner=info["owner"], project=info["project"], run_uuid=info["run_uuid"])
client.refresh_data()
print("STATUS", client.run_data.status)
"""


@pytest.mark.slow
def test_pruned_trial_run_is_marked_stopped(polyaxon_sandbox, tmp_path):
    """The sweep kills a pruned trial, which cannot close its run: mark_stopped does it for it."""
    env = {**os.environ, "HOME": polyaxon_sandbox["home"], "POLYAXON_HOST": polyaxon_sandbox["host"]}
    env.pop("LMAO_TRACKING", None)
    out = tmp_path / "study" / "trial-0007"
    trial = subprocess.Popen([sys.executable, "-c", START_ONLY, str(out)], cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert trial.stdout.readline().strip() == "PolyaxonTracker", trial.stderr.read()[-2000:]
    finally:
        stop_process(trial, grace=5)  # what the sweep does to a pruned trial
    assert trial.returncode == -signal.SIGTERM
    before = subprocess.run([sys.executable, "-c", STATUS, str(out / "polyaxon.json")], env=env,
                            capture_output=True, text=True, timeout=300)
    # Killed mid-training: the run is left open ("running", or still "created" when the client's async
    # status update had not reached the server before the kill), never in a final state.
    assert before.stdout.strip() in ("STATUS running", "STATUS created"), before.stdout + before.stderr[-2000:]
    stop = ("import sys; from pathlib import Path; from experiments.tracking import mark_stopped; "
            "print('MARKED', mark_stopped(Path(sys.argv[1]), 'pruned', 'pruned after epoch 1'))")
    marked = subprocess.run([sys.executable, "-c", stop, str(out)], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert "MARKED True" in marked.stdout, marked.stderr[-2000:]
    status = subprocess.run([sys.executable, "-c", STATUS, str(out / "polyaxon.json")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert "STATUS stopped" in status.stdout, status.stdout + status.stderr[-2000:]
