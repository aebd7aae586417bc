"""``lmao report --polyaxon-project`` against Polyaxon's own local server (``haupt sandbox``, the
``polyaxon_sandbox`` session fixture from tests/services.py): runs tracked the way trials track them
(``experiments.polyaxon.tracking.PolyaxonTracker``), or with only a ``results`` output, are read back through the
real Polyaxon client, one API page or several.

Separate from test_report.py because the sandbox and the Polyaxon client take tens of seconds to start;
both run in subprocesses with their own HOME so no Polyaxon config leaks into other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.test_report import BASE, cell, result

REPO = Path(__file__).resolve().parents[1]

TRACK = """
import json, sys
from pathlib import Path
from polyaxon.client import RunClient
from experiments.polyaxon.tracking import PolyaxonTracker
project = sys.argv[1]
for arg in sys.argv[2:]:
    out = Path(arg)
    spec = json.loads((out / "spec.json").read_text())
    if spec["how"] == "results output":  # no file: the whole result as the run's `results` output
        client = RunClient(owner="default", project=project)
        client.create(name=out.name)
        client.log_outputs(results=spec["results"])
        client.log_succeeded()
        continue
    if spec["how"] == "tuner":  # a TPE tuner run (tagged as experiments/polyaxon/tuner.py tags it): no trial
        client = RunClient(owner="default", project=project)
        client.create(name=out.name, tags=["lmao-imdb-1k", "sweep", "tpe", "tuner"])
        client.log_succeeded()
        continue
    if spec["how"] == "file":
        (out / "results.json").write_text(json.dumps(spec["results"]))
    tracker = PolyaxonTracker(project, spec["results"]["params"], out, managed=False)
    for row in spec["results"]["epochs"]:
        tracker.log_epoch(row)
    tracker.finish(spec["results"])
    assert tracker.enabled, "tracking failed"
"""

# Every run of the project through analysis.load.read_polyaxon, one API page of N runs at a time.
READ_PAGES = """
import json, sys
from analysis.load import read_polyaxon
pages = {}
for size in map(int, sys.argv[2:]):
    items = read_polyaxon(sys.argv[1], page_size=size)
    pages[size] = [[i.source, i.data.get("seed") if i.data else None, i.error] for i in items]
print(json.dumps(pages))
"""


@pytest.mark.slow
def test_report_reads_polyaxon_runs(polyaxon_sandbox, tmp_path):
    env = {**os.environ, "HOME": polyaxon_sandbox["home"], "POLYAXON_HOST": polyaxon_sandbox["host"],
           "PYTHONPATH": str(REPO)}
    project = f"report-{uuid.uuid4().hex[:8]}"
    trials = [(f"t{seed}", result(curve=[score - 0.02, score], seed=seed), "file") for seed, score in enumerate(BASE)]
    trials[2] = (trials[2][0], trials[2][1], "results output")
    lost = result(curve=[0.5], seed=9)
    lost["status"] = "failed"
    trials.append(("lost", lost, "nothing"))  # a run that never uploaded its result file
    trials.append(("tpe-tuner", lost, "tuner"))  # holds no trial by design: left out, quietly
    script = tmp_path / "track.py"
    script.write_text(TRACK)
    dirs = []
    for name, data, how in trials:  # one process tracks them all: the client takes seconds to import
        out = tmp_path / name
        out.mkdir()
        (out / "spec.json").write_text(json.dumps({"results": data, "how": how}))
        dirs.append(str(out))
    done = subprocess.run([sys.executable, str(script), project, *dirs], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]

    report_out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "analysis", "--polyaxon-project", f"default/{project}", "--out", str(report_out),
         "--no-readmes"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "report: 3 trials (3 completed), 1 skipped, 1 table(s)" in done.stdout
    assert "no results.json artifact and no 'results' output (run status failed)" in done.stdout
    read = next(line for line in done.stdout.splitlines() if line.startswith(f"polyaxon:default/{project}: read "))
    assert read.startswith(f"polyaxon:default/{project}: read 4 run(s): ") and "t0 (" in read and "tuner" not in read
    assert f"polyaxon:default/{project}: left out 1 run(s) that hold no trial: tuner tpe-tuner (" in done.stdout
    assert "failed with status code" not in done.stdout + done.stderr  # probing for a missing file is quiet
    md = (report_out / "lmao-imdb-1k.md").read_text()
    assert cell(md, "baseline", "best (%)") == "84.0" and cell(md, "baseline", "mean ± std (%)") == "82.0 ± 2.0"
    manifest = json.loads((report_out / "manifest.json").read_text())
    sources = manifest["tables"]["lmao-imdb-1k.md"]["sources"]
    assert len(sources) == 3 and all(s.startswith(f"polyaxon:default/{project}/") for s in sources)

    # More runs than one page of the API: pages of 1 and of 3 runs read the same runs as one page of 100.
    script = tmp_path / "pages.py"
    script.write_text(READ_PAGES)
    done = subprocess.run([sys.executable, str(script), f"default/{project}", "100", "3", "1"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    pages = json.loads(done.stdout.splitlines()[-1])
    assert pages["3"] == pages["1"] == pages["100"]
    assert sorted(seed for _source, seed, _error in pages["100"] if seed is not None) == [0, 1, 2]
    assert [error for _source, seed, error in pages["100"] if seed is None] == [
        "no results.json artifact and no 'results' output (run status failed)"]
    assert len({source for source, _seed, _error in pages["100"]}) == 4


class _FakeRuns:
    """A Polyaxon ``RunClient`` stand-in for read_polyaxon: a project's listed runs and their artifacts."""

    runs: list = []
    artifacts: dict = {}
    downloads: list = []

    def __init__(self, owner=None, project=None, run_uuid=None):
        self.run_uuid = run_uuid

    def list(self, limit, offset, sort):
        from types import SimpleNamespace

        return SimpleNamespace(results=self.runs[offset:offset + limit], next=None)

    def get_artifacts_lineage(self, limit):
        raise RuntimeError("no lineage")

    def download_artifact(self, path, path_to):
        import logging

        self.downloads.append((self.run_uuid, path))
        if (self.run_uuid, path) not in self.artifacts:
            logging.getLogger("polyaxon.cli").error("Request to %s failed with status code %s.", path, 404)
            raise RuntimeError("404")
        target = Path(path_to) / "results.json"
        target.write_text(json.dumps(self.artifacts[(self.run_uuid, path)]))
        return str(target)


def test_report_leaves_out_matrix_and_tuner_runs_quietly(capsys, caplog):
    """A matrix (and the TPE tuner's batches), Polyaxon's pipeline kinds and our TPE tuner job hold no trial by
    design: read_polyaxon asks nothing of them, and says which runs it read and which it left out."""
    import logging
    from types import SimpleNamespace

    from analysis.load import load_all

    def run(uuid_hex, name, kind="job", tags=None, outputs=None, status="succeeded"):
        return SimpleNamespace(uuid=uuid_hex, name=name, kind=kind, tags=tags or [], outputs=outputs or {},
                               inputs={}, pipeline=None, status=status, created_at=uuid_hex)

    trial = result(curve=[0.8, 0.84], seed=0)
    _FakeRuns.runs = [run("1" * 32, "lmao-imdb-1k-random", kind="matrix"),
                      run("2" * 32, "t0"),
                      run("3" * 32, "lmao-imdb-1k-tpe", tags=["lmao-imdb-1k", "sweep", "tpe", "tuner"]),
                      run("4" * 32, "t1", outputs={"results": json.dumps(result(curve=[0.8, 0.82], seed=1))}),
                      run("5" * 32, "batch-0", kind="matrix", tags=["lmao-imdb-1k", "sweep", "tpe", "tuner-33333333"])]
    _FakeRuns.artifacts = {("2" * 32, "results.json"): trial}
    _FakeRuns.downloads = []
    with caplog.at_level(logging.ERROR, logger="polyaxon.cli"):
        loaded = load_all(polyaxon_projects=["default/p"], polyaxon_client_cls=_FakeRuns)
    assert {uuid_hex for uuid_hex, _path in _FakeRuns.downloads} == {"2" * 32, "4" * 32}
    assert len(loaded.trials) == 2 and loaded.skipped.empty
    assert loaded.notes == [
        "polyaxon:default/p: read 2 run(s): t0 (22222222), t1 (44444444)",
        "polyaxon:default/p: left out 3 run(s) that hold no trial: matrix lmao-imdb-1k-random (11111111), "
        "tuner lmao-imdb-1k-tpe (33333333), matrix batch-0 (55555555)"]
    assert not [r for r in caplog.records if "failed with status code" in r.getMessage()]
    assert logging.getLogger("polyaxon.cli").level != logging.CRITICAL  # restored after the probes
