"""The TPE tuner on Polyaxon (experiments/polyaxon/tuner.py), for real: `polyaxon run -u` of the generated
lmao-imdb-1k/polyaxonfile.tpe.yml on haupt sandbox 2.18.0 with our process agent (tools/polyaxon_sweep.sh,
as `make sweep-polyaxon PLX_SEARCH=tpe`), trials on a tiny corpus, the study in PostgreSQL (Debian's
server, tests/services.py) or in SQLite (the default). The tuner reads the sweep settings from a small
sweep file beside a copy of the experiment's defaults.yml (2 searched params, a few fixed ones), a path
on this machine, as `-P sweep_file=` allows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from experiments.polyaxon.retry import retry_405
from tests.services import free_port
from tests.test_polyaxon_sweep import (SCRIPT, agent_runs, group_alive, launch, local_polyaxon,  # noqa: F401
                                       matrix_of, tiny_corpus, until)
from tests.test_sweep import tpe_suggested

REPO = Path(__file__).resolve().parents[1]
TPE = "lmao-imdb-1k/polyaxonfile.tpe.yml"
HOPELESS = {"learn_rate": 1e-7, "dropout": 0.1}  # stays at its first epoch's score

READ = """
import json, sys
from polyaxon.client import RunClient
from experiments.polyaxon.tuner import tuner_trials
project, tuner = sys.argv[1], sys.argv[2]
out = []
for run in tuner_trials(project, tuner):
    out.append({"uuid": run.uuid, "name": run.name, "status": run.status, "inputs": run.inputs,
                "pipeline": {"uuid": run.pipeline.uuid, "kind": run.pipeline.kind, "name": run.pipeline.name}})
me = RunClient(owner="default", project=project, run_uuid=tuner)
me.refresh_data()
statuses = me.get_statuses()[1] or []
print("RUNS", json.dumps({"trials": out, "tuner": {"status": me.run_data.status, "outputs": me.run_data.outputs,
                                                  "messages": [c.message for c in statuses if c.message]}},
                         default=str))
"""


def write_sweep(root: Path, n_trials: int, pruner: str) -> Path:
    """A small sweep file; defaults.yml beside it makes its metric the experiment's (accuracy)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "lmao-imdb-1k" / "defaults.yml", root / "defaults.yml")
    path = root / "sweep.yml"
    path.write_text(f"""direction: maximize
n_trials: {n_trials}
pruner: {pruner}
fixed: {{width: 32, depth: 1, embed_rows: 1000, pretrain_epochs: 0, batch_size: 16}}
params:
  learn_rate: {{loguniform: [2.0e-3, 5.0e-3]}}
  dropout: {{uniform: [0.1, 0.3]}}
""")
    return path


def read_sweep(local, project: str, tuner: str) -> dict:
    done = subprocess.run([sys.executable, "-c", READ, project, tuner], cwd=REPO, env=local["env"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("RUNS", 1)[1])


def wait_tuner(local, project: str, tuner: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.polyaxon.tuner", "wait", tuner, "-p", project,
                           "--timeout", str(timeout)], cwd=REPO, env=local["env"], capture_output=True, text=True,
                          timeout=timeout + 60)


def tuner_log(local, tuner: str) -> str:
    """What the tuner printed, from Polyaxon's logs of its run in the artifacts store."""
    path = local["data"] / "sandbox" / tuner / "plxlogs" / "process-agent.jsonl"
    lines = [json.loads(line).get("value", "") for line in path.read_text().splitlines() if line.strip()]
    return "\n".join(lines)


def trial_fates(local, project: str, tuner: str, running: dict) -> dict:
    """{trial uuid: "alive" while its process group runs, else its run's status}."""
    statuses = {r["uuid"]: r["status"] for r in read_sweep(local, project, tuner)["trials"]}
    return {u: "alive" if group_alive(g) else statuses.get(u) for u, g in running.items()}


def stored_results(local, run_uuid: str) -> dict:
    return json.loads((local["data"] / "sandbox" / run_uuid / "outputs" / "results.json").read_text())


def budget(corpus: Path, cache: Path, sweep: Path, epochs: int) -> list:
    return ["-P", f"corpus_dir={corpus}", "-P", f"cache={cache}", "-P", f"max_epochs={epochs}", "-P", "patience=0",
            "-P", f"sweep_file={sweep}", "-P", "startup_trials=2", "-P", "poll=2"]


@pytest.fixture(scope="module")
def tpe_sweep(local_polyaxon, tiny_corpus, postgres_url, tmp_path_factory):
    """5 trials, 2 at a time, the study in PostgreSQL: 2 random start-up trials, then a hopeless trial
    queued in the study while they run (the next free slot asks it), then TPE's own suggestions."""
    import optuna

    local = local_polyaxon
    root = tmp_path_factory.mktemp("tpe")
    sweep = write_sweep(root / "space", 5, "{kind: median, n_startup_trials: 1, n_warmup_steps: 8}")
    project = f"tpe-{uuid.uuid4().hex[:6]}"
    study_name = f"study-{project}"
    optuna.create_study(study_name=study_name, storage=postgres_url, direction="maximize")
    t0 = time.monotonic()
    tuner = matrix_of(launch(local, project, TPE, "--runs", "5", "--concurrency", "2",
                             *budget(tiny_corpus, root / "cache", sweep, 60),
                             "-P", f"storage={postgres_url}", "-P", f"study={study_name}"))

    def study():
        return optuna.load_study(study_name=study_name, storage=postgres_url)

    until(lambda: len(study().get_trials()) >= 2, 180, "the start-up batch", poll=2)
    study().enqueue_trial(HOPELESS)
    waited = wait_tuner(local, project, tuner)
    seconds = time.monotonic() - t0
    print(f"\nTPE sweep: 5 trials launched and done in {seconds:.0f} s")
    return {"project": project, "tuner": tuner, "waited": waited, "seconds": seconds,
            "trials": study().get_trials(), "sweep": read_sweep(local, project, tuner)}


@pytest.mark.slow
def test_tpe_tuner_runs_trials_as_polyaxon_runs_and_prunes(local_polyaxon, tpe_sweep):
    """The tuner asks, launches each batch as a mapping matrix of the trial component, prunes the hopeless
    trial by stopping its run, tells the final scores read from the artifacts store, and ends with the
    best params as its outputs; the trials after the start-up ones are TPE's choices."""
    local, sweep = local_polyaxon, tpe_sweep
    assert sweep["waited"].returncode == 0, sweep["waited"].stdout + sweep["waited"].stderr
    trials = {t.number: t for t in sweep["trials"]}
    assert sorted(trials) == [0, 1, 2, 3, 4]
    runs = {r["uuid"]: r for r in sweep["sweep"]["trials"]}
    assert len(runs) == 5 and {t.user_attrs["run_uuid"] for t in trials.values()} == set(runs)  # one run each
    for t in trials.values():
        run = runs[t.user_attrs["run_uuid"]]
        assert run["pipeline"]["kind"] == "matrix" and run["pipeline"]["name"] == t.user_attrs["batch_name"]
        assert run["pipeline"]["uuid"] == t.user_attrs["batch_uuid"]
        assert run["inputs"]["learn_rate"] == pytest.approx(t.params["learn_rate"])
        assert run["inputs"]["width"] == 32 and run["inputs"]["max_epochs"] == 60  # fixed and budget inputs
    # Start-up: the first two at random; the queued hopeless trial; then the model's suggestions.
    assert [tpe_suggested(trials[n]) for n in (0, 1)] == [False, False]
    assert tpe_suggested(trials[3]) and tpe_suggested(trials[4])
    assert trials[2].params == pytest.approx(HOPELESS)
    # Pruned: reported epochs past the warm-up, then its run stopped through the API before max_epochs.
    hopeless = trials[2]
    assert hopeless.state.name == "PRUNED" and runs[hopeless.user_attrs["run_uuid"]]["status"] == "stopped"
    assert 8 <= hopeless.user_attrs["pruned_at"] == max(hopeless.intermediate_values) < 60  # warm-up: 8
    # Told: each complete trial's value is the best_dev_score of its results.json in the artifacts store.
    complete = [t for t in trials.values() if t.state.name == "COMPLETE"]
    assert len(complete) >= 2 and {t.state.name for t in trials.values()} == {"COMPLETE", "PRUNED"}
    for t in complete:
        results = stored_results(local, t.user_attrs["run_uuid"])
        assert results["status"] == "completed" and t.value == pytest.approx(results["best_dev_score"])
        assert sorted(t.intermediate_values) == [row["epoch"] for row in results["epochs"]]
    best = max(complete, key=lambda t: t.value)
    tuner = sweep["sweep"]["tuner"]
    assert tuner["status"] == "succeeded" and tuner["outputs"]["best_dev_score"] == pytest.approx(best.value)
    assert json.loads(tuner["outputs"]["best_params"]) == pytest.approx(best.params)
    stored = json.loads((local["data"] / "sandbox" / sweep["tuner"] / "outputs" / "best.json").read_text())
    assert stored["best_trial"] == best.number and stored["states"] == {"complete": len(complete),
                                                                          "pruned": 5 - len(complete)}
    report = (local["data"] / "sandbox" / sweep["tuner"] / "outputs" / "report" / "lmao-imdb-1k.md").read_text()
    assert "| baseline |" in report
    log = tuner_log(local, sweep["tuner"])
    assert f"trial 2 ({hopeless.user_attrs['run_uuid'][:8]}): pruned after epoch {hopeless.user_attrs['pruned_at']}" in log
    assert "(postgresql+psycopg2://postgres@127.0.0.1:" in log  # the study's storage (a password is masked)


@pytest.mark.slow
def test_tpe_tuner_killed_and_resumed(local_polyaxon, tiny_corpus, tmp_path):
    """SIGKILL the tuner while its first batch trains, remove its folder, then `polyaxon ops resume` it: the
    study (SQLite, restored from the copy in the artifacts store) resumes, the trials it left (running, or finished
    meanwhile) are re-attached, not launched again, none is lost, and the sweep finishes its budget."""
    local = local_polyaxon
    sweep = write_sweep(tmp_path / "space", 3, "none")
    project = f"restart-{uuid.uuid4().hex[:6]}"
    polyaxon = str(Path(sys.executable).parent / "polyaxon")
    tuner = matrix_of(launch(local, project, TPE, "--runs", "3", "--concurrency", "2",
                             *budget(tiny_corpus, tmp_path / "cache", sweep, 60)))
    running = until(lambda: (lambda r: r if len(r) == 2 else None)(
        {u: g for u, g in agent_runs(local).items() if u != tuner}), 180, "the first batch's 2 trials running")
    os.killpg(agent_runs(local)[tuner], signal.SIGKILL)
    until(lambda: read_sweep(local, project, tuner)["tuner"]["status"] == "failed", 60, "the killed tuner failed",
          poll=2)
    # Each trial lives on, or (60 tiny epochs take ~40 s, as long as a slow kill-and-fail) finished on its own.
    until(lambda: all(fate in ("alive", "succeeded") for fate in trial_fates(local, project, tuner, running).values()),
          60, "the trials to outlive the tuner", poll=2, state=lambda: trial_fates(local, project, tuner, running))
    # As on a fresh pod: the tuner's own folder and its outputs are gone; only the store keeps its study.
    shutil.rmtree(local["data"] / "agent" / "home" / ".cache" / "lmao-tuner" / tuner)
    (local["data"] / "context" / "artifacts" / tuner / "outputs" / "optuna.sqlite3").unlink()
    # The sandbox's spurious 405 (experiments/polyaxon/retry.py) refuses a POST and changes nothing: try again,
    # as a user would.
    resumed = retry_405(lambda: subprocess.run([polyaxon, "ops", "resume", "-p", project, "-uid", tuner], cwd=REPO,
                                               env=local["env"], capture_output=True, text=True, timeout=120),
                        retry_result=lambda done: done.returncode != 0 and "Status: 405" in done.stdout + done.stderr)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    waited = wait_tuner(local, project, tuner)
    assert waited.returncode == 0, waited.stdout + waited.stderr

    store = local["data"] / "sandbox" / tuner / "outputs" / "optuna.sqlite3"  # the tuner's copy in the store
    with sqlite3.connect(store) as db:
        states = dict(db.execute("select number, state from trials").fetchall())
        attrs = db.execute("select t.number, a.value_json from trial_user_attributes a join trials t "
                           "using (trial_id) where a.key = 'run_uuid'").fetchall()
    run_of = {n: json.loads(v) for n, v in attrs}
    runs = read_sweep(local, project, tuner)["trials"]
    duplicated = len(runs) - len({r["uuid"] for r in runs}) + len(runs) - len(set(run_of.values()))
    lost = [n for n, s in states.items() if s != "COMPLETE"] + [r["uuid"] for r in runs
                                                                 if r["uuid"] not in run_of.values()]
    print(f"\nrestart: {len(runs)} trial runs for {len(states)} trials, {duplicated} duplicated, {len(lost)} lost")
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "COMPLETE"} and duplicated == 0 and not lost
    assert {run_of[0], run_of[1]} == set(running)  # re-attached: the runs started before the kill
    agent_log = (local["data"] / "agent.log").read_text()
    assert all(agent_log.count(f"{u[:8]} ({project}, ") == 1 for u in run_of.values()), "a trial ran twice"
    log = tuner_log(local, tuner)
    assert "study restored from the last copy in the artifacts store" in log
    assert "0 of 3 trials done, 2 running" in log and log.count("trials 0, 1 launched") == 1


@pytest.mark.slow
def test_tpe_tuner_crashing_trial_is_told_failed(local_polyaxon, tmp_path):
    """A trial that crashes is told to the study as failed with its one error line; a tuner whose every
    trial failed fails itself with one line naming the cause."""
    local = local_polyaxon
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("train.spacy", "dev.spacy"):
        (broken / name).write_bytes(b"not a DocBin")
    sweep = write_sweep(tmp_path / "space", 1, "none")
    project = f"crash-{uuid.uuid4().hex[:6]}"
    tuner = matrix_of(launch(local, project, TPE, "--runs", "1", *budget(broken, tmp_path / "cache", sweep, 2)))
    waited = wait_tuner(local, project, tuner)
    assert waited.returncode == 1 and "tuner " + tuner[:8] + ": failed" in waited.stdout, waited.stdout
    sweep_state = read_sweep(local, project, tuner)
    (trial,) = sweep_state["trials"]
    assert trial["status"] == "failed"
    errors = [line for line in tuner_log(local, tuner).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "all 1 trials failed, 1 with: " in errors[0], errors
    assert "trial 0 (" + trial["uuid"][:8] + ") failed: " in tuner_log(local, tuner)


def test_tuner_bad_input_and_unreachable_server_are_one_line(tmp_path):
    """No server: a wrong param and an API that never answers each end the tuner with one error line."""
    sweep = write_sweep(tmp_path / "space", 2, "none")
    env = {**os.environ, "HOME": str(tmp_path), "POLYAXON_HOST": f"http://127.0.0.1:{free_port()}",
           "POLYAXON_RUN_INSTANCE": f"default.nowhere.runs.{uuid.uuid4().hex}"}
    base = [sys.executable, "-m", "experiments.polyaxon.tuner", "run", "--outputs", str(tmp_path / "out"),
            "--n-trials", "2", "--sweep-file", str(sweep), "--trial-file", "lmao-imdb-1k/polyaxonfile.random.yml",
            "--work-dir", str(tmp_path / "work"), "--api-patience", "2"]
    cases = [
        (["-P", "colour=red"], "-P: colour: not an input of the trial component"),
        (["-P", "max_epochs=many"], "-P: max_epochs=many: expected int"),
        (["-P", "learn_rate=0.1"], "learn_rate: searched by"),
        (["--storage", "postgresql://nobody:secret@127.0.0.1:1/none"],
         "--storage: cannot open postgresql://nobody:***@127.0.0.1:1/none"),
        ([], "Polyaxon API not reachable for 2 s ("),
    ]
    for args, message in cases:
        done = subprocess.run([*base, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), (args, done.stderr)
        assert message in lines[0], (message, lines[0])
