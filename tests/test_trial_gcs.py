"""A trial whose outputs and pretraining cache live on GCS (a real local GCS server, tests/gcs_emulator.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.load import read_gcs
from experiments.storage import download_tree, is_complete
from experiments.trial import run_trial

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # trains a (tiny) model


def test_trial_artifacts_and_cache_on_gcs(gcs_emulator, imdb_corpus, tiny_trial_params, tmp_path, monkeypatch):
    monkeypatch.setenv("LMAO_CACHE_DIR", str(tmp_path / "mirror"))
    bucket = gcs_emulator.new_bucket()
    artifacts, cache = f"gs://{bucket.name}/sweep-a", f"gs://{bucket.name}/cache"
    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 1, "max_epochs": 1}
    first = run_trial(REPO / "lmao-imdb-1k", tmp_path / "trial-0000", params, artifacts=artifacts, cache=cache)
    assert first["pretraining"]["cached"] is False
    assert first["artifacts_url"] == f"{artifacts}/trial-0000" and is_complete(first["artifacts_url"])
    download_tree(first["artifacts_url"], tmp_path / "back")
    assert json.loads((tmp_path / "back" / "results.json").read_text()) == first
    assert (tmp_path / "back" / "model-best" / "config.cfg").exists()
    # The second trial with the same architecture reuses the pretraining run from the bucket.
    second = run_trial(REPO / "lmao-imdb-1k", tmp_path / "trial-0001", {**params, "learn_rate": 0.003},
                       artifacts=artifacts, cache=cache)
    assert second["pretraining"]["cached"] is True
    assert second["pretraining"]["cache_key"] == first["pretraining"]["cache_key"]
    # Re-running a published trial (a retried job) never overwrites the first publication.
    again = run_trial(REPO / "lmao-imdb-1k", tmp_path / "trial-0000", params, artifacts=artifacts, cache=cache)
    assert again["artifacts_url"].startswith(f"{artifacts}/trial-0000-retry-")
    # The report reads the published trials back, grouped under the prefix's study name.
    items = read_gcs(artifacts)
    assert sorted(i.data["artifacts_url"] for i in items if i.data) == sorted(
        [first["artifacts_url"], second["artifacts_url"], again["artifacts_url"]])
    assert {i.meta.get("study") for i in items} == {"sweep-a"} and not [i for i in items if i.error]
