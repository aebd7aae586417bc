"""`polyaxon run -u` on the real polyaxonfile, scheduled by Polyaxon's own server and run by our process agent
on this machine: the path `make sweep-polyaxon` takes and, but for Kubernetes, the path of a GKE sweep.

Everything is real: haupt sandbox 2.18.0 (tools/dashboard.sh, started with the agent by
tools/polyaxon_sweep.sh exactly as the make target does), the `polyaxon` CLI, the matrix scheduler, the
trials (`lmao trial` on a tiny corpus, training budget cut with `-P max_epochs=2`), Polyaxon's artifacts
store, `lmao report` and a headless Chromium on the dashboard. Server and agent are stopped by PID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.services import HAUPT, free_port, unavailable

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "polyaxon_sweep.sh"
RANDOM = "lmao-imdb-1k/polyaxonfile.random.yml"
BUDGET = ["-P", "max_epochs=2", "-P", "patience=0"]

READ = """
import json, sys
from polyaxon.client import RunClient
from experiments.polyaxon.agent import sweep_children
project, matrix = sys.argv[1], sys.argv[2]
out = []
for run in sweep_children(project, matrix):
    client = RunClient(owner="default", project=project, run_uuid=run.uuid)
    metrics = client.get_metrics(names=["dev_score"]) if run.status == "succeeded" else {}
    statuses = client.get_statuses()[1] or []
    out.append({"uuid": run.uuid, "status": run.status, "outputs": run.outputs, "inputs": run.inputs,
                "steps": (metrics.get("dev_score") or {}).get("data", {}).get("step"),
                "messages": [c.message for c in statuses if c.message]})
print("RUNS", json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def tiny_corpus(shared_data, tmp_path_factory) -> Path:
    """Smaller than tests/corpora.py's slices: a sweep trains several trials at once on 2 cores."""
    from experiments.data.imdb import prepare_imdb
    from experiments.training.vectors import train_vectors

    out = tmp_path_factory.mktemp("plx-corpus") / "imdb-tiny"
    prepare_imdb(shared_data / "imdb" / "imdb.jsonl.gz", out, n_train=100, n_dev=60, n_test=20,
                 max_pretrain_docs=150, seed=0)
    train_vectors(out / "pretrain", out / "vectors", dims=8, min_count=2, epochs=1, seed=0)
    return out


def pid_of(path: Path) -> int:
    return int(path.read_text().strip())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def local_polyaxon(tmp_path_factory):
    """Server + agent started by tools/polyaxon_sweep.sh (as `make sweep-polyaxon` does), stopped by PID."""
    if not HAUPT.exists():
        unavailable(f"{HAUPT} missing: run `make dashboard-venv` (make test does)")
    root = tmp_path_factory.mktemp("plx-local")
    data, home = root / "data", root / "home"
    home.mkdir()
    port = free_port()
    env = {**os.environ, "HOME": str(home)}  # the CLI's own HOME: never the user's ~/.polyaxon
    env.pop("POLYAXON_HOST", None)
    env.pop("LMAO_TRACKING", None)
    started = time.monotonic()
    up = subprocess.run(["bash", str(SCRIPT), "up", str(data), str(port)], env=env, capture_output=True,
                        text=True, timeout=300)
    pids = [p for p in (data / "server.pid", data / "agent.pid") if p.exists()]
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "cluster-only fields (image, nodeSelector, tolerations, resources) are ignored" in up.stdout
        host = f"http://127.0.0.1:{port}"
        yield {"host": host, "data": data, "env": {**env, "POLYAXON_HOST": host}, "port": port,
               "up_seconds": time.monotonic() - started}
    finally:
        pids = [pid_of(p) for p in pids if p.exists()]
        down = subprocess.run(["bash", str(SCRIPT), "down", str(data)], env=env, capture_output=True, text=True,
                              timeout=120)
        for pid in pids:  # whatever `down` missed: by PID, never by name
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not any(alive(pid) for pid in pids)


def launch(local, project: str, polyaxonfile: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "experiments.polyaxon.agent", "launch", polyaxonfile, "-p", project,
                           "--out-dir", str(local["data"] / "sweeps"), *args], cwd=REPO, env=local["env"],
                          capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def matrix_of(done: subprocess.CompletedProcess) -> str:
    return re.search(r"^MATRIX ([0-9a-f]{32})$", done.stdout, re.M).group(1)


def wait(local, project: str, matrix: str, timeout: int = 280) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.polyaxon.agent", "wait", matrix, "-p", project,
                           "--timeout", str(timeout)], cwd=REPO, env=local["env"], capture_output=True, text=True,
                          timeout=timeout + 60)


def children(local, project: str, matrix: str) -> list:
    done = subprocess.run([sys.executable, "-c", READ, project, matrix], cwd=REPO, env=local["env"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("RUNS", 1)[1])


def until(condition, timeout: float, what: str, poll: float = 1.0, state=None):
    """Poll ``condition`` until it returns something truthy; on timeout, say what ``state()`` saw then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    seen = f"; at the timeout: {state()}" if state else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{seen}")


def sweep_state(local, project: str, matrix: str) -> str:
    """The children's statuses, the agent's running trials and the agent log's tail: what a stall shows."""
    runs = [(r["uuid"][:8], r["status"]) for r in children(local, project, matrix)]
    agent_log = local["data"] / "agent.log"
    tail = agent_log.read_text().splitlines()[-15:] if agent_log.exists() else []
    return f"children {runs}, agent running {sorted(agent_runs(local))}, agent.log tail:\n" + "\n".join(tail)


@pytest.fixture(scope="module")
def random_sweep(local_polyaxon, tiny_corpus, tmp_path_factory):
    """`polyaxon run -u` of the real random polyaxonfile with 2 children, 2 at a time, waited for."""
    local = local_polyaxon
    project = f"sweep-{uuid.uuid4().hex[:6]}"
    t0 = time.monotonic()
    done = launch(local, project, RANDOM, "--runs", "2", "--concurrency", "2", "-P", f"corpus_dir={tiny_corpus}",
                  "-P", f"cache={tmp_path_factory.mktemp('plx-cache')}", *BUDGET)
    matrix = matrix_of(done)
    waited = wait(local, project, matrix)
    seconds = time.monotonic() - t0
    print(f"\nsandbox+agent up in {local['up_seconds']:.0f} s; 2-child sweep launched and done in {seconds:.0f} s")
    return {"project": project, "matrix": matrix, "waited": waited, "seconds": seconds,
            "runs": children(local, project, matrix)}


@pytest.mark.slow
def test_polyaxon_run_u_runs_the_random_sweep(local_polyaxon, random_sweep, tiny_corpus, tmp_path):
    """The end-to-end check: 2 children of the real random polyaxonfile succeed, with their results and
    models in Polyaxon's artifacts store, their metrics, and the report's table read from the store."""
    local, sweep = local_polyaxon, random_sweep
    variant = (local["data"] / "sweeps" / "lmao-imdb-1k.random.local.yml").read_text()
    assert "numRuns: 2" in variant and "concurrency: 2" in variant
    assert sweep["waited"].returncode == 0, sweep["waited"].stdout + sweep["waited"].stderr
    assert "children: 2 succeeded" in sweep["waited"].stdout, sweep["waited"].stdout
    runs = sweep["runs"]
    assert len(runs) == 2 and {r["status"] for r in runs} == {"succeeded"}
    for run in runs:
        stored = local["data"] / "sandbox" / run["uuid"] / "outputs"  # the sandbox's artifacts store
        results = json.loads((stored / "results.json").read_text())
        assert results["status"] == "completed" and len(results["epochs"]) == 2
        assert results["params"]["corpus_dir"] == str(tiny_corpus) and results["params"]["max_epochs"] == 2
        assert results["params"]["width"] == run["inputs"]["width"]  # the matrix's sample reached the trial
        assert run["outputs"]["best_dev_score"] == pytest.approx(results["best_dev_score"])
        assert run["steps"] == [1, 2]  # per-epoch metrics, logged by the trial itself
        assert (stored / "model-last" / "meta.json").exists()
        assert not [p for p in stored.rglob("*.tmp")], "temporary files of atomic writes reached the store"

    report_dir = tmp_path / "report"
    report = subprocess.run([sys.executable, "-m", "analysis", "--polyaxon-project", f"default/{sweep['project']}",
                             "--out", str(report_dir), "--no-readmes", "--no-plots"], cwd=REPO, env=local["env"],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr[-3000:]
    # The matrix run holds no trial by design: left out, quietly (no 404 probes, not counted as skipped).
    assert "report: 2 trials (2 completed), 0 skipped" in report.stdout
    assert f"polyaxon:default/{sweep['project']}: read 2 run(s): " in report.stdout
    assert "left out 1 run(s) that hold no trial: matrix " in report.stdout
    assert "failed with status code" not in report.stdout + report.stderr
    table = (report_dir / "lmao-imdb-1k.md").read_text()
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| ")]
    assert sum(int(cells[7]) for cells in rows if cells[7].strip().isdigit()) == 2, table  # "n trials"


VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def VoidAwareGridCells():
    """tests/test_dashboard.py's grid parser, for pages whose cells hold void elements (a matrix's runs
    list has a selection checkbox, an <input> that never closes)."""
    from tests.test_dashboard import GridCells

    class Parser(GridCells):
        def handle_starttag(self, tag, attrs):
            if tag not in VOID_TAGS:
                super().handle_starttag(tag, attrs)

        def handle_startendtag(self, tag, attrs):
            pass

    return Parser()


@pytest.mark.slow
def test_dashboard_lists_the_children_with_their_scores(local_polyaxon, random_sweep, tmp_path):
    """Headless Chromium on the sandbox's runs page of the sweep's project (as tests/test_dashboard.py)."""
    from experiments.polyaxon.tracking import runs_page_url
    from tests.test_dashboard import chromium_binary, headless

    browser = chromium_binary()
    if browser is None:
        unavailable("no Chromium: apt-get install chromium (.ci/run installs it when run as root)")
    url = runs_page_url(local_polyaxon["host"], random_sweep["project"])
    scores = sorted(round(r["outputs"]["best_dev_score"], 3) for r in random_sweep["runs"])
    shown = []
    for attempt in range(3):  # the grid renders after the API answers; a busy machine may need a reload
        dom = headless(browser, tmp_path / "profile", "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        parser = VoidAwareGridCells()
        parser.feed(dom.stdout)
        shown = sorted(round(float(text), 3) for (_, column), text in parser.cells.items()
                       if column == "out.best_dev_score" and text)
        if len(shown) >= 2:
            break
    assert shown == scores, f"dashboard rows {shown} != children {scores}"


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    """No server needed: every check runs before anything is written or sent."""
    out = tmp_path / "sweeps"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    env = {**os.environ, "HOME": str(tmp_path), "POLYAXON_HOST": f"http://127.0.0.1:{free_port()}"}
    cases = [
        (["-P", "width=wide", "-P", f"corpus_dir={corpus}"], "width=wide: expected int"),
        (["-P", f"corpus_dir={corpus}"], "train.spacy: prepared corpus file missing"),
        (["-P", "corpus_dir=/nonexistent/imdb"], "/nonexistent/imdb/train.spacy: prepared corpus file missing"),
        (["-P", "colour=red"], "-P colour: not an input of the component"),
        (["--runs", "0"], "--runs: expected a positive whole number"),
    ]
    ready = tmp_path / "ready"
    ready.mkdir()
    for name in ("train.spacy", "dev.spacy"):
        (ready / name).write_bytes(b"x")
    cases.append((["-P", f"corpus_dir={ready}"], "Polyaxon API not reachable"))
    cases.append((["-P", f"corpus_dir={ready}"], "cannot run a bayes matrix"))
    for i, (args, message) in enumerate(cases):
        target = "lmao-imdb-1k/polyaxonfile.bayes.yml" if "bayes" in message else RANDOM
        done = subprocess.run([sys.executable, "-m", "experiments.polyaxon.agent", "launch", target, "-p", "x",
                               "--out-dir", str(out), *args], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), (args, done.stderr)
        assert message in lines[0], (message, lines[0])
        assert not out.exists(), f"{args}: wrote {list(out.iterdir())}"


def agent_runs(local) -> dict:
    """The agent's record of the runs it is running: {uuid: process group}."""
    out = {}
    for path in (local["data"] / "agent" / "runs").glob("*.json"):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if info.get("pgid"):
            out[info["run_uuid"]] = info["pgid"]
    return out


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_failing_trial_stop_and_agent_restart(local_polyaxon, tiny_corpus, tmp_path):
    """A failing trial fails its child with the error in Polyaxon's logs; `polyaxon ops stop` on the matrix
    ends its children's whole process groups; a killed agent's running child ends failed and a restarted
    agent continues the queue without rerunning a succeeded child; a bayes matrix fails on the server."""
    local = local_polyaxon
    cache = ["-P", f"cache={tmp_path / 'cache'}"]
    polyaxon = str(Path(sys.executable).parent / "polyaxon")

    # 1. A trial that fails: a corpus whose files pass the launcher's check but are not spaCy DocBins.
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("train.spacy", "dev.spacy"):
        (broken / name).write_bytes(b"not a DocBin")
    project = f"fail-{uuid.uuid4().hex[:6]}"
    matrix = matrix_of(launch(local, project, RANDOM, "--runs", "1", "-P", f"corpus_dir={broken}", *cache, *BUDGET))
    waited = wait(local, project, matrix, timeout=300)
    assert "children: 1 failed" in waited.stdout, waited.stdout + waited.stderr
    (child,) = children(local, project, matrix)
    (message,) = [m for m in child["messages"] if "exited with code 1" in m]
    error = [line for line in message.splitlines() if line.startswith("error: ")]
    assert error, message  # the trial's own one-line error, as the child's status message ...
    logs = subprocess.run([polyaxon, "ops", "logs", "-p", project, "-uid", child["uuid"]], cwd=REPO,
                          env=local["env"], capture_output=True, text=True, timeout=120)
    assert error[-1] in logs.stdout, logs.stdout[-3000:]  # ... and in Polyaxon's logs of the run

    # 2. Stop the matrix while both children train: their process groups end, nothing is left behind.
    project = f"stop-{uuid.uuid4().hex[:6]}"
    matrix = matrix_of(launch(local, project, RANDOM, "--runs", "2", "--concurrency", "2", "-P",
                              f"corpus_dir={tiny_corpus}", *cache, "-P", "max_epochs=200", "-P", "patience=0"))
    groups = until(lambda: agent_runs(local) if len(agent_runs(local)) == 2 else None, 120, "2 running children")
    stop = subprocess.run([polyaxon, "ops", "stop", "-p", project, "-uid", matrix, "-y"], cwd=REPO,
                          env=local["env"], capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    until(lambda: not any(group_alive(g) for g in groups.values()), 60, "the stopped children's process groups")
    until(lambda: {r["status"] for r in children(local, project, matrix)} == {"stopped"}, 60, "children stopped",
          poll=3)

    # 3. Kill the agent (SIGKILL) while a child trains; restart it: the child ends failed, the queue goes on.
    project = f"kill-{uuid.uuid4().hex[:6]}"
    matrix = matrix_of(launch(local, project, RANDOM, "--runs", "3", "--concurrency", "1", "-P",
                              f"corpus_dir={tiny_corpus}", *cache, "-P", "max_epochs=1", "-P", "patience=0"))

    def second_running():
        runs = children(local, project, matrix)
        done = [r for r in runs if r["status"] == "succeeded"]
        running = {u: g for u, g in agent_runs(local).items() if u not in {r["uuid"] for r in done}}
        return (done[0]["uuid"], running) if done and running else None

    first, running = until(second_running, 420, "a succeeded child and the next one running", poll=2,
                           state=lambda: sweep_state(local, project, matrix))
    agent_pid = pid_of(local["data"] / "agent.pid")
    os.kill(agent_pid, signal.SIGKILL)
    until(lambda: not any(group_alive(g) for g in running.values()), 30, "the killed agent's trial to die")
    up = subprocess.run(["bash", str(SCRIPT), "up", str(local["data"]), str(local["port"])], env=local["env"],
                        capture_output=True, text=True, timeout=300)
    assert up.returncode == 0 and "agent: starting" in up.stdout, up.stdout + up.stderr
    waited = wait(local, project, matrix, timeout=240)
    runs = {r["uuid"]: r for r in children(local, project, matrix)}
    assert len(runs) == 3, runs
    (killed,) = running
    assert runs[killed]["status"] == "failed"
    assert any("killed" in m for m in runs[killed]["messages"]), runs[killed]["messages"]
    assert runs[first]["status"] == "succeeded"
    assert [r["status"] for u, r in runs.items() if u not in (first, killed)] == ["succeeded"]
    agent_log = (local["data"] / "agent.log").read_text()
    assert agent_log.count(f"{first[:8]} ({project}, ") == 1, "a succeeded child ran again"

    # 4. A bayes matrix: haupt 2.18.0 cannot create its tuner run (the launcher refuses it for this reason).
    project = f"bayes-{uuid.uuid4().hex[:6]}"
    made = subprocess.run([polyaxon, "project", "create", "--name", project], cwd=REPO, env=local["env"],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    for attempt in range(3):  # the local server is haupt on SQLite: a busy machine can fail a write (HTTP error)
        run = subprocess.run([polyaxon, "run", "-f", "lmao-imdb-1k/polyaxonfile.bayes.yml", "-p", project, "-P",
                              f"corpus_dir={tiny_corpus}"], cwd=REPO, env={**local["env"], "COLUMNS": "400"},
                             capture_output=True, text=True, timeout=120)
        if run.returncode == 0 or "Could not create a run" not in run.stdout + run.stderr:
            break
        time.sleep(5)
    created = re.search(r"@([0-9a-f]{32})", run.stdout)
    assert run.returncode == 0 and created, run.stdout + run.stderr
    bayes = created.group(1)
    statuses = subprocess.run([polyaxon, "ops", "statuses", "-p", project, "-uid", bayes], cwd=REPO,
                              env={**local["env"], "COLUMNS": "400"}, capture_output=True, text=True, timeout=120)
    assert "Could not create a tuner" in statuses.stdout, statuses.stdout


@pytest.mark.parametrize("path", ["lmao-imdb-1k/polyaxonfile.random.yml", "ontonotes-ner/polyaxonfile.random.yml",
                                  "polyaxonfile.yml", "lmao-imdb-1k/polyaxonfile.bayes.yml"])
def test_local_variant_differs_only_in_counts(path):
    """The count-adjusted copy a local sweep launches is the committed (drift-checked) file but for the
    matrix's counts and the description: what runs locally is what runs on GKE."""
    import yaml

    from experiments.polyaxon.polyaxonfile import local_variant

    committed = yaml.safe_load((REPO / path).read_text())
    bayes = committed["matrix"]["kind"] == "bayes"
    text = local_variant(REPO / path, runs=3, concurrency=2, iterations=2 if bayes else None)
    variant = yaml.safe_load(text)
    assert text.startswith("# GENERATED by `make sweep-polyaxon`")
    changed = {"concurrency": 2, **({"numInitialRuns": 3, "maxIterations": 2} if bayes else {"numRuns": 3})}
    assert {k: variant["matrix"][k] for k in changed} == changed
    assert {k: v for k, v in variant["matrix"].items() if k not in changed} == \
        {k: v for k, v in committed["matrix"].items() if k not in changed}
    assert {k: v for k, v in variant.items() if k not in ("matrix", "description")} == \
        {k: v for k, v in committed.items() if k not in ("matrix", "description")}


def test_agent_survives_an_empty_state_answer():
    """A failed state poll (the sandbox's occasional 500) reaches the loop as an empty response; polyaxon's
    own check would raise comparing None with LiveState and end the agent. Ours waits for the next poll,
    and still acts on a real state (an archived agent ends)."""
    from polyaxon._runner.agent.base_agent import BaseAgent
    from polyaxon.schemas import LiveState, V1AgentStateResponse

    from experiments.polyaxon.agent import _agent_classes

    agent_cls = _agent_classes()
    with pytest.raises(TypeError):
        BaseAgent._check_status(object(), V1AgentStateResponse.model_construct())
    ended = []
    fake = agent_cls.__new__(agent_cls)  # the loop's object, without connecting to a server
    fake.end = lambda sleep=None: ended.append(sleep)
    assert agent_cls._check_status(fake, V1AgentStateResponse.model_construct()) is None and not ended
    agent_cls._check_status(fake, V1AgentStateResponse.model_construct(live_state=LiveState.ARCHIVED))
    assert len(ended) == 1
    # The loop then reads `state.full`: a failed poll (here: no client to ask) must answer an empty state.
    from polyaxon._runner.agent.sync_agent import BaseSyncAgent

    assert BaseSyncAgent.process(fake, pool=None).state is None  # polyaxon's own answer: `.full` would raise
    answer = agent_cls.process(fake, pool=None)
    assert getattr(answer, "live_state", None) is None and not answer.state.full
