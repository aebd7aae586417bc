"""experiments.storage.storage against a real local GCS server (tests/gcs_emulator.py) and local folders."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from google.api_core import exceptions

from experiments.storage import storage
from experiments.storage.storage import AlreadyPublishedError, IncompleteEntryError, MARKER


def make_tree(root: Path, tag: str = "a") -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "results.json").write_text(json.dumps({"tag": tag}))
    (root / "sub" / "model.bin").write_bytes(bytes(range(256)) * 100 + tag.encode())
    (root / "sub" / "deeper" / "empty.txt").write_text("")
    return root


def read_tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_parse_gs_url():
    assert storage.parse_gs_url("gs://bkt/a/b/") == storage.GsUrl("bkt", "a/b")
    assert storage.parse_gs_url("gs://bkt") == storage.GsUrl("bkt", "")
    assert storage.GsUrl("bkt", "a").key("x", "y.json") == "a/x/y.json"
    assert str(storage.GsUrl("bkt", "a/b")) == "gs://bkt/a/b"
    for bad in ("s3://bkt/a", "gs://", "gs:///a", "gs://bkt/a//b", "gs://bkt/../x", "/local/path"):
        with pytest.raises(ValueError, match="gs://|bucket|segments"):
            storage.parse_gs_url(bad)


def test_emulator_enforces_generation_preconditions(gcs_emulator):
    """The atomic publish relies on GCS answering 412; the test server must do the same."""
    bucket = gcs_emulator.new_bucket()
    blob = bucket.blob("lock")
    blob.upload_from_string("first", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("lock").upload_from_string("second", if_generation_match=0)
    assert bucket.blob("lock").download_as_text() == "first"
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("lock").delete(if_generation_match=blob.generation + 1)
    bucket.blob("lock").delete(if_generation_match=blob.generation)
    assert bucket.get_blob("lock") is None


def test_gcs_round_trip(gcs_emulator, tmp_path):
    bucket = gcs_emulator.new_bucket()
    src = make_tree(tmp_path / "src")
    url = f"gs://{bucket.name}/sweep/trial-1"
    manifest = storage.upload_tree(src, url)
    assert sorted(manifest["files"]) == ["results.json", "sub/deeper/empty.txt", "sub/model.bin"]
    assert storage.is_complete(url)
    assert storage.read_manifest(url)["files"] == manifest["files"]

    dest = tmp_path / "dest"
    storage.download_tree(url, dest)
    got = read_tree(dest)
    assert json.loads(got.pop(MARKER))["files"] == manifest["files"]
    assert got == read_tree(src)
    assert list(storage.list_complete(f"gs://{bucket.name}/sweep")) == [url]


def test_gcs_incomplete_entry_is_invisible(gcs_emulator, tmp_path):
    """Files without the marker (a publisher still uploading, or one that crashed) are never read."""
    bucket = gcs_emulator.new_bucket()
    url = f"gs://{bucket.name}/entry"
    bucket.blob("entry/data-x/results.json").upload_from_string("{}")
    assert not storage.is_complete(url)
    with pytest.raises(IncompleteEntryError, match="_COMPLETE"):
        storage.download_tree(url, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert list(storage.list_complete(f"gs://{bucket.name}")) == []


def test_gcs_second_publisher_cannot_overwrite(gcs_emulator, tmp_path):
    bucket = gcs_emulator.new_bucket()
    url = f"gs://{bucket.name}/entry"
    storage.upload_tree(make_tree(tmp_path / "one", "one"), url)
    with pytest.raises(AlreadyPublishedError):
        storage.upload_tree(make_tree(tmp_path / "two", "two"), url)
    storage.download_tree(url, tmp_path / "dest")
    assert json.loads((tmp_path / "dest" / "results.json").read_text()) == {"tag": "one"}


def test_gcs_racing_publishers_one_wins_untouched(gcs_emulator, tmp_path):
    """Both pass the 'already published?' check, both upload; the marker precondition picks one,
    the loser's data is removed and the winner's files are intact."""
    bucket = gcs_emulator.new_bucket()
    url = f"gs://{bucket.name}/entry"
    trees = [make_tree(tmp_path / f"t{i}", f"t{i}") for i in range(4)]
    barrier = threading.Barrier(len(trees))
    outcome: dict = {}

    def publish(i: int) -> None:
        barrier.wait()
        try:
            outcome[i] = storage.upload_tree(trees[i], url)
        except AlreadyPublishedError:
            outcome[i] = None

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(len(trees))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, m in outcome.items() if m is not None]
    assert len(winners) == 1
    storage.download_tree(url, tmp_path / "dest")
    tag = json.loads((tmp_path / "dest" / "results.json").read_text())["tag"]
    assert tag == f"t{winners[0]}"
    data_dirs = {b.name.split("/")[1] for b in bucket.list_blobs(prefix="entry/data-")}
    assert data_dirs == {outcome[winners[0]]["data"]}


def test_download_detects_corruption(gcs_emulator, tmp_path):
    bucket = gcs_emulator.new_bucket()
    url = f"gs://{bucket.name}/entry"
    manifest = storage.upload_tree(make_tree(tmp_path / "src"), url)
    bucket.blob(f"entry/{manifest['data']}/results.json").upload_from_string('{"tag": "evil"}')
    with pytest.raises(storage.StorageError, match="results.json does not match"):
        storage.download_tree(url, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_local_round_trip_and_no_overwrite(tmp_path):
    src = make_tree(tmp_path / "src")
    target = tmp_path / "published" / "trial-1"
    storage.upload_tree(src, target)
    assert storage.is_complete(target)
    with pytest.raises(AlreadyPublishedError):
        storage.upload_tree(make_tree(tmp_path / "other", "other"), target)
    storage.download_tree(str(target), tmp_path / "dest")
    got = read_tree(tmp_path / "dest")
    got.pop(MARKER)
    assert got == read_tree(src)
    assert list(storage.list_complete(tmp_path / "published")) == [str(target)]
    assert [p.name for p in (tmp_path / "published").iterdir()] == ["trial-1"]  # no temp leftovers


def test_local_incomplete_entry_is_invisible(tmp_path):
    make_tree(tmp_path / "half")  # files but no marker: a crashed copy
    assert not storage.is_complete(tmp_path / "half")
    with pytest.raises(IncompleteEntryError):
        storage.download_tree(str(tmp_path / "half"), tmp_path / "dest")


def test_upload_of_missing_folder_names_it(tmp_path):
    with pytest.raises(storage.StorageError, match="nope: not a folder"):
        storage.upload_tree(tmp_path / "nope", "gs://bkt/x")


def test_gcs_layout_seen_by_readers(gcs_emulator, tmp_path):
    """find_files/file_url resolve published entries to their data folders, so a reader (the report)
    needs to know nothing of the layout: a published file under its entry's name, a plain object as it
    is, and an entry whose marker is missing marked incomplete."""
    from analysis.load import read_gcs, read_result_dir

    bucket = gcs_emulator.new_bucket()
    done, partial = f"gs://{bucket.name}/runs/s/trial-1", f"gs://{bucket.name}/runs/s/trial-2"
    storage.upload_tree(make_tree(tmp_path / "a", "a"), done)
    storage.upload_tree(make_tree(tmp_path / "b", "b"), partial)
    bucket.blob("runs/s/trial-2/" + MARKER).delete()
    bucket.blob("runs/s/trial-3/results.json").upload_from_string(json.dumps({"tag": "plain"}))
    found = storage.find_files(f"gs://{bucket.name}/runs", "results.json")
    assert [(f.logical, f.complete) for f in found] == [
        ("runs/s/trial-1/results.json", True), ("runs/s/trial-2/results.json", False),
        ("runs/s/trial-3/results.json", True)]
    assert found[0].name.startswith("runs/s/trial-1/data-") and found[2].name == "runs/s/trial-3/results.json"
    assert json.loads(storage.read_bytes(found[0].url)) == {"tag": "a"}
    assert storage.file_url(done, "results.json") == found[0].url
    assert storage.file_url(f"gs://{bucket.name}/runs/s/trial-3", "results.json") == found[2].url
    items = read_gcs(f"gs://{bucket.name}/runs")
    assert [(i.data, i.meta) for i in items if not i.error] == [({"tag": "a"}, {"study": "s"}),
                                                               ({"tag": "plain"}, {"study": "s"})]
    assert [i.error for i in items if i.error] == [
        "partial: published entry has no _COMPLETE marker (upload unfinished or abandoned)"]
    assert read_result_dir(done, {}, rank=2).data == {"tag": "a"}
