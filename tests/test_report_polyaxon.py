"""``lmao report --polyaxon-project`` against Polyaxon's own local server (``haupt sandbox``, the
``polyaxon_sandbox`` session fixture from tests/services.py): runs tracked the way trials track them
(``experiments.tracking.PolyaxonTracker``) are read back through the real Polyaxon client.

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
from experiments.tracking import PolyaxonTracker
project = sys.argv[1]
for arg in sys.argv[2:]:
    out = Path(arg)
    spec = json.loads((out / "spec.json").read_text())
    if spec["with_file"]:
        (out / "results.json").write_text(json.dumps(spec["results"]))
    tracker = PolyaxonTracker(project, spec["results"]["params"], out, managed=False)
    for row in spec["results"]["epochs"]:
        tracker.log_epoch(row)
    tracker.finish(spec["results"])
    assert tracker.enabled, "tracking failed"
"""


@pytest.mark.slow
def test_report_reads_polyaxon_runs(polyaxon_sandbox, tmp_path):
    env = {**os.environ, "HOME": polyaxon_sandbox["home"], "POLYAXON_HOST": polyaxon_sandbox["host"],
           "PYTHONPATH": str(REPO)}
    project = f"report-{uuid.uuid4().hex[:8]}"
    trials = [(f"t{seed}", result(curve=[score - 0.02, score], seed=seed), True) for seed, score in enumerate(BASE)]
    lost = result(curve=[0.5], seed=9)
    lost["status"] = "failed"
    trials.append(("lost", lost, False))  # a run that never uploaded its result file
    script = tmp_path / "track.py"
    script.write_text(TRACK)
    dirs = []
    for name, data, with_file in trials:  # one process tracks them all: the client takes seconds to import
        out = tmp_path / name
        out.mkdir()
        (out / "spec.json").write_text(json.dumps({"results": data, "with_file": with_file}))
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
    md = (report_out / "lmao-imdb-1k.md").read_text()
    assert cell(md, "baseline", "best (%)") == "84.0" and cell(md, "baseline", "mean ± std (%)") == "82.0 ± 2.0"
    manifest = json.loads((report_out / "manifest.json").read_text())
    sources = manifest["tables"]["lmao-imdb-1k.md"]["sources"]
    assert len(sources) == 3 and all(s.startswith(f"polyaxon:default/{project}/") for s in sources)
