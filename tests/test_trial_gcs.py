"""A trial whose outputs and pretraining cache live on GCS (a real local GCS server, tests/gcs_emulator.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.load import read_gcs
from experiments.storage.storage import download_tree, is_complete
from experiments.training.trial import run_trial

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
    # The second trial with the same architecture reuses the pretraining run from the bucket. It runs on
    # another machine, as a sweep's next pod would: a fresh local cache folder, so only the bucket has it.
    key = first["pretraining"]["cache_key"]
    built = Path(first["pretraining"]["checkpoint"])
    assert built.is_relative_to(tmp_path / "mirror") and built.parent.name == key
    monkeypatch.setenv("LMAO_CACHE_DIR", str(tmp_path / "other-machine"))
    second = run_trial(REPO / "lmao-imdb-1k", tmp_path / "trial-0001", {**params, "learn_rate": 0.003},
                       artifacts=artifacts, cache=cache)
    assert second["pretraining"]["cached"] is True and second["pretraining"]["seconds"] == 0.0
    assert second["pretraining"]["cache_key"] == key
    downloaded = Path(second["pretraining"]["checkpoint"])
    assert downloaded == tmp_path / "other-machine" / "gcs" / bucket.name / "cache" / key / built.name
    assert downloaded.read_bytes() == built.read_bytes()
    in_bucket = {b.name for b in bucket.list_blobs(prefix=f"cache/{key}/")}
    assert any(name.endswith("/" + built.name) for name in in_bucket), in_bucket
    # Re-running a published trial (a retried job) never overwrites the first publication.
    again = run_trial(REPO / "lmao-imdb-1k", tmp_path / "trial-0000", params, artifacts=artifacts, cache=cache)
    assert again["artifacts_url"].startswith(f"{artifacts}/trial-0000-retry-")
    # The report reads the published trials back, grouped under the prefix's study name.
    items = read_gcs(artifacts)
    assert sorted(i.data["artifacts_url"] for i in items if i.data) == sorted(
        [first["artifacts_url"], second["artifacts_url"], again["artifacts_url"]])
    assert {i.meta.get("study") for i in items} == {"sweep-a"} and not [i for i in items if i.error]


def test_trial_reads_a_published_corpus_from_gcs(gcs_emulator, imdb_corpus, tiny_trial_params, tmp_path,
                                                 monkeypatch):
    """`lmao data upload` publishes a prepared corpus; `-P corpus_dir=gs://...` trains on a verified local
    copy; a killed earlier attempt in the trial folder is cleared first (a retry starts clean)."""
    import os
    import subprocess
    import sys

    import pytest

    from experiments.common.errors import InputError
    from experiments.storage.storage import StorageError, local_corpus, parse_gs_url

    bucket = gcs_emulator.new_bucket()
    url = f"gs://{bucket.name}/corpus/imdb-small"
    env = {**os.environ, "LMAO_TRACKING": "0"}
    up = subprocess.run([sys.executable, "-m", "experiments", "data", "upload", str(imdb_corpus), url],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0 and "files published" in up.stdout, up.stderr[-2000:]
    # publishing twice never overwrites
    again = subprocess.run([sys.executable, "-m", "experiments", "data", "upload", str(imdb_corpus), url],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "already published" in again.stderr

    mirror = tmp_path / "mirror"
    monkeypatch.setenv("LMAO_CACHE_DIR", str(mirror))
    out = tmp_path / "trial-0003"
    (out / "model-best").mkdir(parents=True)
    (out / "model-best" / "stale.bin").write_bytes(b"from the killed attempt")
    (out / "results.json").write_text(json.dumps({"status": "running", "epochs": [{"epoch": 1}, {"epoch": 2}]}))
    params = {**tiny_trial_params, "corpus_dir": url, "pretrain_epochs": 0, "max_epochs": 1}
    results = run_trial(REPO / "lmao-imdb-1k", out, params, gpu="-1", eval_processes=1)
    assert results["status"] == "completed" and results["params"]["corpus_dir"] == url
    assert [row["epoch"] for row in results["epochs"]] == [1]
    assert not (out / "model-best" / "stale.bin").exists() and (out / "model-best" / "config.cfg").exists()
    copies = list((mirror / "corpus" / bucket.name / "corpus" / "imdb-small").iterdir())
    assert len(copies) == 1 and results["corpus"]["dir"] == str(copies[0])
    for name in ("train.spacy", "dev.spacy", "manifest.json"):
        assert (copies[0] / name).read_bytes() == (imdb_corpus / name).read_bytes()
    assert local_corpus(url) == copies[0]  # reused, not downloaded again
    # A finished trial's folder is never cleared by a re-run's start.
    from experiments.training.results import clear_unfinished
    assert clear_unfinished(out) is False and (out / "model-best" / "config.cfg").exists()

    # A corrupted object in the bucket is caught on download (size/sha256 against the manifest).
    marker = json.loads(bucket.blob("corpus/imdb-small/_COMPLETE").download_as_bytes())
    gs = parse_gs_url(url)
    bucket.blob(gs.key(marker["data"], "dev.spacy")).upload_from_string(b"not a DocBin")
    with pytest.raises(StorageError, match=r"dev\.spacy does not match its manifest"):
        local_corpus(url, mirror_root=tmp_path / "fresh-mirror")
    assert not list((tmp_path / "fresh-mirror").rglob("dev.spacy"))  # nothing half-written stays
    # A prefix nobody published: one error naming the marker and how to publish.
    with pytest.raises(InputError, match=r"imdb-none/_COMPLETE: not a published corpus.*lmao data upload"):
        local_corpus(f"gs://{bucket.name}/corpus/imdb-none")
