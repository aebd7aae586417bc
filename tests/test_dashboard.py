"""Tracking: a real trial tracked into Polyaxon's own local server (`haupt sandbox`, what `make dashboard`
starts), read back through the Polyaxon client; and no tracking (no error) when no API is there."""

from __future__ import annotations

import html.parser
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.sweeps.sweep import stop_process
from experiments.polyaxon.tracking import NoTracker, make_tracker, runs_page_url
from tests.corpora import TINY_TRIAL_PARAMS
from tests.services import free_port, unavailable

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


@pytest.fixture(scope="module")
def tracked_trial(polyaxon_sandbox, imdb_corpus, tmp_path_factory):
    """A real 2-epoch trial tracked into the sandbox: (env, trial folder, results)."""
    env = {**os.environ, "HOME": polyaxon_sandbox["home"], "POLYAXON_HOST": polyaxon_sandbox["host"]}
    env.pop("LMAO_TRACKING", None)
    out = tmp_path_factory.mktemp("dash-runs") / "dash" / "trial-0000"
    params = {**TINY_TRIAL_PARAMS, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 0, "max_epochs": 2}
    assigns = [a for k, v in params.items() for a in ("-P", f"{k}={v}")]
    trial = subprocess.run([sys.executable, "-m", "experiments", "trial", str(REPO / "lmao-imdb-1k"), "--out",
                            str(out), *assigns, "--gpu", "-1", "--eval-processes", "1"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert trial.returncode == 0, trial.stderr[-3000:]
    return env, out, json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_sandbox_tracks_a_trial(tracked_trial):
    env, out, results = tracked_trial
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
    # the last epoch's score too (logged as an output after every epoch, for the runs list)
    assert run["outputs"]["epoch"] == 2 and run["outputs"]["dev_score"] == pytest.approx(
        results["epochs"][-1]["dev_score"])
    assert run["artifacts"]["results"].endswith("results.json")


def chromium_binary():
    """Debian's `chromium` (.ci/run installs it as root, like PostgreSQL), or another Chrome on PATH."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium page load: the page's scripts run until the network is idle or the virtual
    time budget is spent (virtual time: not a wall-clock wait)."""
    flags = ["--headless", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
             "--window-size=1600,900", "--virtual-time-budget=30000"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HOME": str(profile)})


class GridCells(html.parser.HTMLParser):
    """The runs table's cells: {(row index, column id): text} from the rendered data grid."""

    def __init__(self):
        super().__init__()
        self.cells, self._cell, self._depth = {}, None, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._cell is not None:
            self._depth += 1
        elif attrs.get("role") == "gridcell" and "data-gridcell-column-id" in attrs:
            self._cell = (int(attrs["data-gridcell-row-index"]), attrs["data-gridcell-column-id"])
            self.cells[self._cell], self._depth = "", 0

    def handle_endtag(self, tag):
        if self._cell is not None:
            if self._depth == 0:
                self._cell = None
            else:
                self._depth -= 1

    def handle_data(self, data):
        if self._cell is not None:
            self.cells[self._cell] += data.strip()


@pytest.mark.slow
def test_dashboard_ui_shows_the_run_and_its_score(tracked_trial, polyaxon_sandbox, tmp_path):
    """A real headless browser renders the sandbox's runs page offline (the machine has no internet, so the
    page works only with the bundled vendor scripts): the trial's run and its best_dev_score are in it."""
    browser = chromium_binary()
    if browser is None:
        unavailable("no Chromium: apt-get install chromium (.ci/run installs it when run as root)")
    env, out, results = tracked_trial
    name = f"{out.parent.name}-{out.name}"
    url = runs_page_url(polyaxon_sandbox["host"], "lmao-imdb-1k")
    cells = {}
    for attempt in range(3):  # the grid renders after the API answers; a busy machine may need a reload
        dom = headless(browser, tmp_path / "profile", "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        parser = GridCells()
        parser.feed(dom.stdout)
        cells = parser.cells
        if any(text == name for (_, column), text in cells.items() if column == "name"):
            break
    assert "React is not defined" not in dom.stderr
    rows = [row for (row, column), text in cells.items() if column == "name" and text == name]
    assert len(rows) == 1, f"run {name} not on the runs page; cells: {sorted(cells.items())[:40]}"
    row = rows[0]
    assert float(cells[(row, "out.best_dev_score")]) == pytest.approx(results["best_dev_score"], abs=5e-4)
    assert float(cells[(row, "out.dev_score")]) == pytest.approx(results["epochs"][-1]["dev_score"], abs=5e-4)
    assert cells[(row, "out.epoch")] == str(len(results["epochs"]))
    shot = tmp_path / "runs.png"
    picture = headless(browser, tmp_path / "profile", f"--screenshot={shot}", url)
    assert picture.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("LMAO_SCREENSHOT")
    if keep:  # look at it: LMAO_SCREENSHOT=/tmp/runs.png pytest tests/test_dashboard.py
        shutil.copyfile(shot, keep)


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
from experiments.polyaxon.tracking import make_tracker
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
    stop = ("import sys; from pathlib import Path; from experiments.polyaxon.tracking import mark_stopped; "
            "print('MARKED', mark_stopped(Path(sys.argv[1]), 'pruned', 'pruned after epoch 1'))")
    marked = subprocess.run([sys.executable, "-c", stop, str(out)], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert "MARKED True" in marked.stdout, marked.stderr[-2000:]
    status = subprocess.run([sys.executable, "-c", STATUS, str(out / "polyaxon.json")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert "STATUS stopped" in status.stdout, status.stdout + status.stderr[-2000:]
