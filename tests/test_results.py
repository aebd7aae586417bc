"""The result file's one owner (experiments.training.results): create, update per epoch, mark, read, validate."""

from __future__ import annotations

import json
import re

from experiments.training import results
from experiments.training.results import RESULTS_FILE, SCHEMA_VERSION


def started(tmp_path):
    data = results.new_results(experiment="lmao-imdb-1k", task="textcat", metric="accuracy",
                               params={"seed": 3, "width": 16}, meta={"study": "s"}, final=False)
    results.save(tmp_path, data)
    return data


def test_new_results_then_epochs_keep_the_best(tmp_path):
    data = started(tmp_path)
    assert data["schema_version"] == SCHEMA_VERSION and data["status"] == "running" and data["seed"] == 3
    assert data["pretraining"]["objective"] is None and data["epochs"] == [] and data["finished_at"] is None
    for epoch, score in ((1, 0.6), (2, 0.8), (3, 0.7)):
        results.add_epoch(data, {"epoch": epoch, "dev_score": score})
    assert (data["best_epoch"], data["best_dev_score"]) == (2, 0.8)
    results.add_epoch(data, {"epoch": 4, "dev_score": 0.8})  # a tie: the later epoch, as model-best
    assert (data["best_epoch"], data["best_dev_score"]) == (4, 0.8)
    results.finish(data, "completed")
    results.save(tmp_path, data)
    on_disk = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert on_disk == results.load_results(tmp_path) == results.load_results(tmp_path / RESULTS_FILE)
    assert on_disk["status"] == "completed" and on_disk["finished_at"]
    assert results.problem(on_disk) is None


def test_mark_keeps_epochs_and_creates_a_minimal_file(tmp_path):
    data = started(tmp_path)
    results.add_epoch(data, {"epoch": 1, "dev_score": 0.5})
    results.save(tmp_path, data)
    results.mark(tmp_path, "pruned")
    pruned = results.read(tmp_path)
    assert pruned["status"] == "pruned" and pruned["epochs"] == data["epochs"] and pruned["finished_at"]
    assert pruned["error"] is None
    results.mark(tmp_path / "never-started", "failed", "worker lost")
    lost = results.read(tmp_path / "never-started")
    assert lost == {"schema_version": SCHEMA_VERSION, "params": {}, "epochs": [], "status": "failed",
                    "error": "worker lost", "finished_at": lost["finished_at"]}
    assert results.read(tmp_path / "nowhere") is None


def test_problem_names_why_a_file_is_not_usable():
    ok = {"schema_version": 1, "experiment": "e", "task": "ner", "status": "pruned", "params": {}, "epochs": []}
    assert results.problem(ok) is None
    assert results.problem([]) == "not a JSON object"
    assert results.problem({**ok, "schema_version": 7}) == "unsupported schema_version 7"
    assert results.problem({"status": "completed"}) == "missing keys: experiment, task, params, epochs"
    assert results.problem({**ok, "status": "running"}) == "partial: trial still running"
    assert results.problem({**ok, "status": "failed", "error": "boom"}) == "partial: trial failed (boom)"
    assert results.problem({**ok, "status": "done"}) == "unknown status 'done'"
    assert results.problem({**ok, "status": "completed"}) == "completed but no best_dev_score"
    assert results.problem({**ok, "task": "../x"}, re.compile(r"[a-z]+")) == "bad task '../x' (expected a folder-style name)"
