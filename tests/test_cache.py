"""experiments.storage.cache: one builder per key, no half entries, stale-lock recovery; local and GCS. And the
pretraining cache key: what changes the pretrained weights changes it, fine-tuning settings do not."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from experiments.storage import storage
from experiments.storage.cache import ArtifactCache, CacheResult, CacheTimeoutError, cache_key
from experiments.storage.storage import MARKER

FAST = dict(poll_s=0.05, heartbeat_s=0.1, stale_after_s=1.0)


def slow_build(log: Path, seconds: float = 0.5):
    """A build that takes a while and records each run in ``log`` (one line per build)."""

    def build(out: Path) -> None:
        with log.open("a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(seconds)
        (out / "epoch-1").mkdir()
        (out / "epoch-1" / "model.bin").write_bytes(b"\x00weights" * 1000)
        (out / "log.jsonl").write_text('{"epoch": 1}\n')

    return build


def entry_files(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_cache_key_is_canonical_and_strict():
    a = cache_key({"width": 96, "objective": {"type": "vectors", "loss": "cosine"}})
    b = cache_key({"objective": {"loss": "cosine", "type": "vectors"}, "width": 96})
    assert a == b and len(a) == 64
    assert cache_key({"width": 128}) != cache_key({"width": 96})
    assert cache_key({"width": 96}) != cache_key({"width": "96"})
    with pytest.raises(ValueError, match="inputs.path: PosixPath is not plain JSON"):
        cache_key({"path": Path("/x")})
    with pytest.raises(ValueError, match="not a string"):
        cache_key({"nested": {1: "a"}})
    with pytest.raises(ValueError, match="finite"):
        cache_key({"lr": float("nan")})


def test_bad_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cache key"):
        ArtifactCache(tmp_path).get_or_create("../escape", slow_build(tmp_path / "log"))


# -- local root -----------------------------------------------------------------------------------


def _local_worker(root: str, key: str, log: str, queue) -> None:
    result = ArtifactCache(root).get_or_create(key, slow_build(Path(log)))
    queue.put((str(result.path), result.hit))


def test_local_concurrent_processes_build_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    key, log = cache_key({"t": "local"}), tmp_path / "builds.log"
    procs = [ctx.Process(target=_local_worker, args=(str(tmp_path / "c"), key, str(log), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert len(log.read_text().splitlines()) == 1
    assert sorted(hit for _, hit in results) == [False, True, True]
    assert {path for path, _ in results} == {str(tmp_path / "c" / key)}
    assert "epoch-1/model.bin" in entry_files(tmp_path / "c" / key)


def test_local_failed_build_leaves_nothing_and_unlocks(tmp_path):
    cache = ArtifactCache(tmp_path / "c")
    key = cache_key({"t": "fail"})

    def broken(out: Path) -> None:
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_create(key, broken)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [".locks"]
    result = cache.get_or_create(key, slow_build(tmp_path / "log", 0))
    assert result == CacheResult(tmp_path / "c" / key, False, key)
    assert cache.get_or_create(key, broken).hit  # built entries are reused, build not called


def _hold_lock_then_hang(root: str, key: str) -> None:
    def hang(out: Path) -> None:
        (out / "partial").write_text("half written")
        time.sleep(600)

    ArtifactCache(root).get_or_create(key, hang)


def test_local_crashed_builder_releases_lock(tmp_path):
    """A builder killed mid-build (SIGKILL: no cleanup runs) neither blocks others nor leaves an entry."""
    key, root = cache_key({"t": "crash"}), tmp_path / "c"
    proc = multiprocessing.get_context("fork").Process(target=_hold_lock_then_hang, args=(str(root), key))
    proc.start()
    try:
        deadline = time.monotonic() + 20
        while not list(root.glob(f".{key}.*.tmp/partial")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(root.glob(f".{key}.*.tmp/partial")), "the crashing builder never started"
        with pytest.raises(CacheTimeoutError):  # it really holds the lock while alive
            ArtifactCache(root, wait_timeout_s=0.3).get_or_create(key, slow_build(tmp_path / "log"))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    result = ArtifactCache(root, wait_timeout_s=10).get_or_create(key, slow_build(tmp_path / "log", 0))
    assert not result.hit and "partial" not in entry_files(result.path)


# -- GCS root -------------------------------------------------------------------------------------


def test_gcs_concurrent_writers_one_builds_other_reuses(gcs_emulator, tmp_path):
    """Two machines (own mirrors) ask for one entry at once: exactly one builds, both get its files."""
    bucket = gcs_emulator.new_bucket()
    key, log = cache_key({"t": "gcs-race"}), tmp_path / "builds.log"
    caches = [ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / f"m{i}", **FAST) for i in range(2)]
    barrier = threading.Barrier(2)
    results: dict = {}

    def run(i: int) -> None:
        barrier.wait()
        results[i] = caches[i].get_or_create(key, slow_build(log))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(log.read_text().splitlines()) == 1
    assert sorted(r.hit for r in results.values()) == [False, True]
    files = [entry_files(r.path) for r in results.values()]
    assert files[0] == files[1] and "epoch-1/model.bin" in files[0]
    assert all(r.path.is_relative_to(tmp_path / f"m{i}") for i, r in results.items())
    assert bucket.get_blob(f"cache/{key}/_LOCK") is None  # released after publishing
    assert storage.is_complete(f"gs://{bucket.name}/cache/{key}")
    # a third machine later: plain download, no build
    later = ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / "m3", **FAST)
    assert later.get_or_create(key, slow_build(log)).hit
    assert len(log.read_text().splitlines()) == 1


def test_gcs_stale_lock_is_broken(gcs_emulator, tmp_path):
    """A lock left by a crashed builder (never refreshed) is broken after stale_after_s."""
    bucket = gcs_emulator.new_bucket()
    key = cache_key({"t": "stale"})
    bucket.blob(f"cache/{key}/_LOCK").upload_from_string(json.dumps({"owner": "dead"}), if_generation_match=0)
    cache = ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / "m", **FAST)
    start = time.monotonic()
    result = cache.get_or_create(key, slow_build(tmp_path / "log", 0))
    waited = time.monotonic() - start
    assert not result.hit and FAST["stale_after_s"] <= waited < FAST["stale_after_s"] + 5
    assert bucket.get_blob(f"cache/{key}/_LOCK") is None


def test_gcs_live_lock_is_respected(gcs_emulator, tmp_path):
    """A builder slower than stale_after_s keeps its lock by heartbeat: the waiter does not build."""
    bucket = gcs_emulator.new_bucket()
    key, log = cache_key({"t": "slow"}), tmp_path / "builds.log"
    root = f"gs://{bucket.name}/cache"
    slow = threading.Thread(
        target=lambda: ArtifactCache(root, mirror_dir=tmp_path / "m1", **FAST).get_or_create(
            key, slow_build(log, FAST["stale_after_s"] * 2)
        )
    )
    slow.start()
    while not log.exists():
        time.sleep(0.02)
    result = ArtifactCache(root, mirror_dir=tmp_path / "m2", **FAST).get_or_create(key, slow_build(log, 0))
    slow.join(timeout=30)
    assert result.hit and len(log.read_text().splitlines()) == 1


def test_gcs_half_published_entry_is_not_used(gcs_emulator, tmp_path):
    """Data uploaded without a marker (a builder that died while uploading) is ignored and rebuilt."""
    bucket = gcs_emulator.new_bucket()
    key = cache_key({"t": "half"})
    bucket.blob(f"cache/{key}/data-dead/epoch-1/model.bin").upload_from_string("truncated")
    cache = ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / "m", **FAST)
    result = cache.get_or_create(key, slow_build(tmp_path / "log", 0))
    assert not result.hit
    assert entry_files(result.path)["epoch-1/model.bin"] == b"\x00weights" * 1000
    assert MARKER in entry_files(result.path)


def test_gcs_failed_build_releases_lock(gcs_emulator, tmp_path):
    bucket = gcs_emulator.new_bucket()
    key = cache_key({"t": "gcs-fail"})
    cache = ArtifactCache(f"gs://{bucket.name}/cache", mirror_dir=tmp_path / "m", **FAST)

    def broken(out: Path) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_create(key, broken)
    assert bucket.get_blob(f"cache/{key}/_LOCK") is None
    assert not cache.get_or_create(key, slow_build(tmp_path / "log", 0)).hit


def test_gcs_lock_created_by_our_own_retried_request_is_ours(gcs_emulator):
    """The client retries a conditional create whose response was lost: the 412 it then gets is
    for our own lock, which must count as acquired (else we would wait for ourselves)."""
    from experiments.storage.cache import _GcsLock

    bucket = gcs_emulator.new_bucket()
    mine, theirs = _GcsLock(bucket.blob("k/_LOCK"), 60), _GcsLock(bucket.blob("k/_LOCK"), 60)
    bucket.blob("k/_LOCK").upload_from_string(mine._body(), if_generation_match=0)  # "first attempt"
    assert not theirs.acquire()
    assert mine.acquire()
    mine.release()
    assert bucket.get_blob("k/_LOCK") is None


# -- the pretraining cache key ----------------------------------------------------------------------
# The key hashes the filled config a pretraining run reads (paths as content fingerprints), the run's
# limits, library versions and arithmetic. Each case below builds the trial's pretraining config the way
# `lmao trial` does (params, then `--section.key` overrides) and compares its key with the default's.

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO / "lmao-imdb-1k"


@pytest.fixture(scope="module")
def key_corpus(tmp_path_factory) -> Path:
    """A prepared-corpus folder as far as pretraining reads one: pretraining shards and vectors."""
    import numpy
    import spacy

    from experiments.data.docbins import write_pretraining_corpus

    corpus = tmp_path_factory.mktemp("key") / "corpus"
    nlp = spacy.blank("en")
    write_pretraining_corpus((nlp(t) for t in ["A fine film.", "Dull and long.", "Loved it!"]), corpus / "pretrain")
    for word, row in (("film", 0), ("dull", 1), ("fine", 2)):
        nlp.vocab.set_vector(word, numpy.full(4, row, dtype="f"))
    nlp.to_disk(corpus / "vectors")
    return corpus


@pytest.fixture(scope="module")
def default_key(key_corpus) -> str:
    return pretraining_key(key_corpus)


def pretraining_key(corpus: Path, params=None, config_overrides=None, experiment: Path = IMDB) -> str:
    from experiments.training.config import load_experiment
    from experiments.training.params import resolve
    from experiments.training.pretrain import pretraining_inputs
    from experiments.training.trial import pretraining_setup, resolve_vectors

    defaults = load_experiment(experiment)["params"]
    resolved = resolve(defaults, {"corpus_dir": str(corpus), **(params or {})}, defaults_source="defaults.yml")
    pre_params, config = pretraining_setup(experiment, resolved, corpus, resolve_vectors(resolved, corpus),
                                           config_overrides)
    return cache_key(pretraining_inputs(config, pre_params, gpu_id=-1))


# (params, --section.key overrides): each changes the pretrained weights, so each must change the key.
CHANGES_WEIGHTS = [
    ({}, {"pretraining.dropout": 0.5}),
    ({}, {"components.tok2vec.model.embed.attrs": ["NORM", "PREFIX", "SUFFIX", "LOWER"]}),
    ({}, {"pretraining.batcher.tolerance": 0.3}),
    ({}, {"pretraining.batcher.discard_oversize": True}),
    ({}, {"pretraining.optimizer.L2": 0.0}),
    ({}, {"pretraining.objective.hidden_size": 128}),
    ({}, {"corpora.pretrain.limit": 2}),
    ({}, {"training.seed": 7}),  # pretraining seeds its RNG from [training] seed
    ({}, {"initialize.vectors": None, "components.tok2vec.model.embed.include_static_vectors": False,
          "pretraining.objective": {"@architectures": "spacy.PretrainCharacters.v1", "maxout_pieces": 3,
                                    "hidden_size": 300, "n_characters": 4}}),
    ({"objective": "characters"}, {}),
    ({"objective": "trigram"}, {}),
    ({"pretrain_loss": "L2"}, {}),
    ({"width": 64}, {}),
    ({"depth": 2}, {}),
    ({"embed_rows": 500}, {}),
    ({"window_size": 2}, {}),
    ({"maxout_pieces": 2}, {}),
    ({"static_vectors_input": False}, {}),
    ({"pretrain_max_epochs": 4}, {}),
    ({"pretrain_max_words": 1000}, {}),
    ({"pretrain_save_every_words": 1000}, {}),
    ({"pretrain_dropout": 0.5}, {}),
    ({"pretrain_learn_rate": 0.01}, {}),
    ({"pretrain_batch_size": 1000}, {}),
    ({"pretrain_hidden_size": 64}, {}),
    ({"seed": 1}, {}),  # pretrain_seed -1: the trial's seed is the pretraining seed
    ({"pretrain_seed": 5}, {}),
    ({"pretrain_workers": 2}, {}),
    ({"cpu_gemm": "blis"}, {}),
]

# Fine-tuning only: the same pretraining run serves all of these.
FINE_TUNING_ONLY = [
    ({"learn_rate": 0.01}, {}),
    ({"dropout": 0.3}, {}),
    ({"max_epochs": 3}, {}),
    ({"batch_size": 8}, {}),
    ({"batch_schedule": "compounding"}, {}),
    ({"patience": 0}, {}),
    ({"L2": 0.0}, {}),
    ({"grad_clip": 5.0}, {}),
    ({"eval_batch_size": 16}, {}),
    ({"pretrain_epochs": 2}, {}),  # a later checkpoint of the same run
    ({}, {"training.optimizer.learn_rate": 0.01}),
    ({}, {"training.dropout": 0.3}),
    ({}, {"training.max_epochs": 2}),
    ({}, {"training.batcher.size": 8}),
    ({}, {"components.textcat.threshold": 0.3}),
    ({}, {"components.textcat.model.use_reduce_max": True}),
    ({}, {"corpora.train.max_length": 100}),
    ({}, {"paths.train": "/elsewhere/train.spacy"}),
    ({}, {"nlp.batch_size": 16}),
]


def _case_id(case) -> str:
    params, overrides = case
    return ",".join([*(f"{k}={v}" for k, v in params.items()), *(f"--{k}" for k in overrides)])


@pytest.mark.parametrize("case", CHANGES_WEIGHTS, ids=_case_id)
def test_what_changes_the_weights_changes_the_pretraining_key(key_corpus, default_key, case):
    params, overrides = case
    assert pretraining_key(key_corpus, params, overrides) != default_key


@pytest.mark.parametrize("case", FINE_TUNING_ONLY, ids=_case_id)
def test_fine_tuning_settings_keep_the_pretraining_key(key_corpus, default_key, case):
    params, overrides = case
    assert pretraining_key(key_corpus, params, overrides) == default_key


def test_fine_tuning_seed_keeps_the_key_when_pretrain_seed_is_fixed(key_corpus):
    fixed = {"pretrain_seed": 0}
    assert pretraining_key(key_corpus, {**fixed, "seed": 1}) == pretraining_key(key_corpus, {**fixed, "seed": 2})


def test_pretrain_corpus_pretrains_on_that_corpus_text(key_corpus, default_key, tmp_path):
    """-P pretrain_corpus=OTHER: the pretraining run reads OTHER's shards, and the cache key follows their
    bytes (a copy of the same text in another folder is the same run; other text is another run)."""
    import shutil

    import spacy

    from experiments.data.docbins import write_pretraining_corpus
    from experiments.training.trial import pretraining_setup

    same = tmp_path / "same"
    shutil.copytree(key_corpus / "pretrain", same / "pretrain")
    other = tmp_path / "other"
    write_pretraining_corpus((spacy.blank("en")(t) for t in ["Mary lives in Paris."]), other / "pretrain")
    assert pretraining_key(key_corpus, {"pretrain_corpus": str(same)}) == default_key
    assert pretraining_key(key_corpus, {"pretrain_corpus": str(other)}) != default_key
    from experiments.training.config import load_experiment
    from experiments.training.params import resolve

    params = resolve(load_experiment(IMDB)["params"], {"corpus_dir": str(key_corpus), "pretrain_corpus": str(other)},
                     defaults_source="defaults.yml")
    _, config = pretraining_setup(IMDB, params, key_corpus, key_corpus / "vectors")
    assert config["paths"]["pretrain"] == str(other / "pretrain")


def test_edited_config_cfg_changes_the_key_and_a_comment_does_not(key_corpus, default_key, tmp_path):
    import shutil

    original = (IMDB / "config.cfg").read_text(encoding="utf-8")
    base = default_key

    def key_with(text: str, name: str) -> str:
        experiment = shutil.copytree(IMDB, tmp_path / name)
        (experiment / "config.cfg").write_text(text, encoding="utf-8")
        return pretraining_key(key_corpus, experiment=experiment)

    assert key_with("# a comment\n" + original, "comment") == base
    for name, old, new in [("attrs", 'attrs = ["NORM","PREFIX","SUFFIX","SHAPE"]',
                            'attrs = ["NORM","PREFIX","SUFFIX","LOWER"]'),
                           ("tolerance", "tolerance = 0.2", "tolerance = 0.25"),
                           ("lang", 'lang = "en"', 'lang = "de"')]:
        assert original.count(old) == 1
        assert key_with(original.replace(old, new), name) != base, name
    # A fine-tuning-only edit: the classifier's pooling.
    edited = original.replace("use_reduce_max = false", "use_reduce_max = true")
    assert edited != original and key_with(edited, "pooling") == base


def test_key_follows_file_contents_not_paths(key_corpus, default_key, tmp_path):
    import shutil

    base = default_key
    moved = shutil.copytree(key_corpus, tmp_path / "moved")
    assert pretraining_key(moved) == base  # the same bytes elsewhere (a downloaded copy) hit
    vectors = next(p for p in sorted((moved / "vectors").rglob("vectors")) if p.is_file())
    vectors.write_bytes(vectors.read_bytes()[:-4] + b"\x00\x00\x80\x3f")  # one weight of the vectors
    assert pretraining_key(moved) != base
    shutil.rmtree(moved)
    moved = shutil.copytree(key_corpus, tmp_path / "moved2")
    shard = moved / "pretrain" / "000000.spacy"
    from experiments.data.docbins import write_pretraining_corpus
    import spacy

    shard.unlink()
    write_pretraining_corpus([spacy.blank("en")("Another text.")], moved / "pretrain")
    assert pretraining_key(moved) != base
    # Vectors that a characters objective without static inputs never loads do not enter the key.
    chars = {"objective": "characters", "static_vectors_input": False}
    other = shutil.copytree(key_corpus, tmp_path / "other-vectors")
    vectors = next(p for p in sorted((other / "vectors").rglob("vectors")) if p.is_file())
    vectors.write_bytes(vectors.read_bytes()[:-4] + b"\x00\x00\x80\x3f")
    assert pretraining_key(other, chars) == pretraining_key(key_corpus, chars)


def test_key_inputs_name_versions_arithmetic_and_the_filled_config(key_corpus):
    from experiments.training.config import load_experiment
    from experiments.training.params import resolve
    from experiments.training.pretrain import pretraining_inputs
    from experiments.training.trial import pretraining_setup

    params = resolve(load_experiment(IMDB)["params"], {"corpus_dir": str(key_corpus)})
    pre_params, config = pretraining_setup(IMDB, params, key_corpus, key_corpus / "vectors")
    inputs = pretraining_inputs(config, pre_params)
    assert inputs["versions"]["spacy"] and inputs["versions"]["thinc"] and inputs["versions"]["numpy"]
    assert inputs["arithmetic"]["device"] == "cpu" and inputs["arithmetic"]["cpu_gemm"] == "numpy"
    assert inputs["arithmetic"]["workers"] == 1
    filled = inputs["config"]
    # Filled: defaults config.cfg leaves out are in (the reader's limit, the objective's fields).
    assert filled["corpora"]["corpora.pretrain"]["limit"] == 0
    assert filled["pretraining"]["objective"]["@architectures"] == "spacy.PretrainVectors.v1"
    # Paths are content fingerprints; fine-tuning sections are not there.
    assert filled["corpora"]["corpora.pretrain"]["path"].startswith("sha256:")
    assert filled["initialize"]["vectors"].startswith("sha256:")
    assert set(filled["components"]) == {"tok2vec"} and "batch_size" not in filled["nlp"]
    assert set(filled["training"]) == {"seed"}
    assert str(key_corpus) not in json.dumps(inputs)
    assert cache_key(inputs) == cache_key(pretraining_inputs(config, pre_params))  # stable


def test_ner_experiment_key(key_corpus):
    ner = REPO / "ontonotes-ner"
    base = pretraining_key(key_corpus, experiment=ner)
    assert pretraining_key(key_corpus, {"max_epochs": 2}, {"components.ner.model.hidden_width": 32},
                           experiment=ner) == base
    assert pretraining_key(key_corpus, {}, {"pretraining.dropout": 0.4}, experiment=ner) != base


@pytest.mark.slow
def test_trials_differing_only_in_a_pretraining_override_do_not_share_weights(imdb_corpus, tiny_trial_params,
                                                                               tmp_path):
    from experiments.training.trial import run_trial

    params = {**tiny_trial_params, "corpus_dir": str(imdb_corpus), "pretrain_epochs": 1, "max_epochs": 1}
    cache = str(tmp_path / "cache")
    first = run_trial(IMDB, tmp_path / "a", params, cache=cache, gpu="-1")["pretraining"]
    again = run_trial(IMDB, tmp_path / "b", {**params, "learn_rate": 0.01}, cache=cache, gpu="-1")["pretraining"]
    other = run_trial(IMDB, tmp_path / "c", params, config_overrides={"pretraining.dropout": 0.5}, cache=cache,
                      gpu="-1")["pretraining"]
    assert (first["cached"], again["cached"], other["cached"]) == (False, True, False)
    assert first["cache_key"] == again["cache_key"] != other["cache_key"]
    assert Path(first["checkpoint"]).read_bytes() != Path(other["checkpoint"]).read_bytes()
    inputs = json.loads((Path(other["checkpoint"]).parent / "inputs.json").read_text())
    assert inputs["config"]["pretraining"]["dropout"] == 0.5
