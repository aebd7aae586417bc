"""The GKE path without GKE: the objects Polyaxon's Kubernetes agent would submit, compiled by Polyaxon
(experiments/polyaxon/k8s_manifests.py), checked against Kubernetes' schemas and terraform-gke/
(experiments/polyaxon/k8s_checks.py, each check with a mutation that makes it fail with one line), and the pod
executed on this machine (tests/pod_node.py: init containers, then the trial beside Polyaxon's sidecar)
against a gs:// artifacts store on the GCS emulator, including a Spot-style kill and the retry."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from typer.main import get_command

from experiments.cli import app as experiments_app

from experiments.polyaxon import k8s_checks as checks
from experiments.polyaxon.k8s_manifests import (OPERATIONS, RUNBOOK_PARAMS, Compiled, Operation, cluster_settings,
                                       compile_all, compile_operation, manifests_yaml, pod_of)
from tests.services import wait_for

REPO = Path(__file__).resolve().parents[1]
MAIN = checks.MAIN_CONTAINER
# the subcommands of `python -m experiments`, as `lmao polyaxonfile --k8s` passes them to the checks
COMMANDS = set(get_command(experiments_app).commands)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def compiled():
    return compile_all()


@pytest.fixture(scope="module")
def tf():
    return checks.read_terraform()


def _spec(c: Compiled) -> dict:
    return c.resource["batchJobSpec"]["template"]["spec"]


def _main(c: Compiled) -> dict:
    return next(x for x in _spec(c)["containers"] if x["name"] == MAIN)


def _mutated(c: Compiled, change) -> Compiled:
    resource = copy.deepcopy(c.resource)
    change(resource["batchJobSpec"]["template"]["spec"])
    return dataclasses.replace(c, resource=resource)


# ------------------------------------------------------------------------------------------ compiling


def test_every_cluster_operation_compiles_into_polyaxons_objects(compiled):
    """Each operation of OPERATIONS whose polyaxonfile exists compiles; the objects are what polyaxon 2.18.0's
    agent submits: an Operation (kind Job) whose pod runs Polyaxon's init containers, then the trial beside
    Polyaxon's sidecar, with the runbook's -P values filled in by Polyaxon."""
    names = {c.name for c in compiled}
    assert names == {n for n, op in OPERATIONS.items() if (REPO / op.polyaxonfile).exists()} and names
    settings = cluster_settings()
    for c in compiled:
        assert c.resource["kind"] == "Job" and c.resource["metadata"]["namespace"] == settings.namespace
        assert c.resource["termination"]["backoffLimit"] == 3  # polyaxonfile termination.maxRetries
        spec = _spec(c)
        assert [x["name"] for x in spec["containers"]] == [MAIN, "polyaxon-sidecar"]
        assert all(x["image"].startswith("polyaxon/polyaxon-init:") for x in spec["initContainers"])
        main = _main(c)
        assert main["image"] == f"{settings.registry}/lmao:TAG"
        if "polyaxonfile.tpe" in OPERATIONS[c.name].polyaxonfile:  # the TPE tuner: CPU pool, may reach the API
            assert "python -m experiments.polyaxon.tuner run" in main["args"][0]
            assert f"-P cache=gs://{settings.bucket}/cache" in main["args"][0].replace("'", "")
            assert spec["nodeSelector"] == {"lmao/pool": "cpu"}
            assert c.resource["batchJobSpec"]["template"]["metadata"]["labels"]["lmao/role"] == "tuner"
            continue
        assert f"--cache gs://{settings.bucket}/cache" in main["args"][0]
        assert spec["nodeSelector"] == {"lmao/pool": OPERATIONS[c.name].params["pool"]}
        # every sampled hyperparameter reached the command line
        for name in ("width", "learn_rate", "objective"):
            assert f"-P {name}={c.params[name]} " in main["args"][0]
        assert f"-P depth={int(c.params['depth'])} " in main["args"][0]  # int input: Polyaxon casts 4.0 to 4
    assert "kind: Job" in manifests_yaml(compiled) and "apiVersion: batch/v1" in manifests_yaml(compiled)


def test_a_plain_operation_compiles_and_passes_the_checks_too(tmp_path, tf):
    """OPERATIONS also takes an operation that is not a matrix (a tuner, say): `kind: "operation"`. Here the
    random polyaxonfile without its matrix: the component's own input defaults fill the command."""
    import yaml

    doc = yaml.safe_load((REPO / "lmao-imdb-1k" / "polyaxonfile.random.yml").read_text())
    doc.pop("matrix")
    path = tmp_path / "single.yml"
    path.write_text(yaml.safe_dump(doc))
    c = compile_operation("single", Operation(str(path), "operation", {**RUNBOOK_PARAMS, "pool": "gpu", "gpus": 1}),
                          cluster_settings())
    assert "-P width=96 " in _main(c)["args"][0]  # the input's default (params.py), resolved by Polyaxon
    assert checks.check_all([c], COMMANDS, tf) == []


def test_lmao_polyaxonfile_k8s_prints_the_objects_and_checks_them(tmp_path):
    out = tmp_path / "cluster.yml"
    done = subprocess.run([sys.executable, "-m", "experiments", "polyaxonfile", "lmao-imdb-1k", "--k8s",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "checks passed" in done.stdout
    import yaml

    docs = [d for d in yaml.safe_load_all(out.read_text()) if d]
    assert {d["kind"] for d in docs} == {"Job"} and {d["apiVersion"] for d in docs} == {"polyaxon.com/v1", "batch/v1"}


# ------------------------------------------------------------------------------------------ checks


def test_the_compiled_objects_pass_every_check(compiled, tf):
    assert checks.check_all(compiled, COMMANDS, tf) == []


def test_schema_versions_cover_what_the_validator_ships():
    import kubernetes_validate

    newest = kubernetes_validate.latest_version()
    assert newest.startswith(checks.K8S_VERSIONS[-1] + "."), (newest, checks.K8S_VERSIONS)


def _gpu(compiled):
    return next(c for c in compiled if OPERATIONS[c.name].params["pool"] == "gpu")


MUTATIONS = {
    "schema": (lambda s: s["containers"][0].update({"resource": {}}),
               checks.check_schema, "Pod invalid for Kubernetes 1.33"),
    "wrong-pool-label": (lambda s: s.update({"nodeSelector": {"lmao/pool": "gpus"}}),
                         "scheduling", "matches 0 node pools, not 1"),
    "missing-toleration": (lambda s: s.update({"tolerations": [t for t in s["tolerations"] if t["key"] != "lmao/pool"]}),
                           "scheduling", "no toleration for the gpu pool's taint lmao/pool=gpu:NoSchedule"),
    "request-too-big": (lambda s: s["containers"][0]["resources"]["requests"].update({"cpu": "7"}),
                        "resources", "3 trials sharing its GPUs"),
    "two-gpus": (lambda s: s["containers"][0]["resources"]["limits"].update({"nvidia.com/gpu": "4"}),
                 "resources", "requests nvidia.com/gpu 4 but a gpu node (g2-standard-8) offers 3"),
    "unbound-service-account": (lambda s: s.update({"serviceAccountName": "default"}),
                                "identity", "no Workload Identity binding to the trials account"),
    "foreign-image": (lambda s: s["containers"][0].update({"image": "docker.io/someone/lmao:1"}),
                      "images", "is not in the cluster's registry"),
    "sidecar-version": (lambda s: s["containers"][1].update({"image": "polyaxon/polyaxon-sidecar:2.17.0"}),
                        "images", "is not Polyaxon 2.18.0"),
    "entry-point": (lambda s: s["containers"][0].update({"args": [s["containers"][0]["args"][0].replace(
                        "python -m experiments trial", "python -m experiments trials")]}),
                    "entrypoint", "`lmao trials` is not a command of this package"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_check_fails_with_one_line(compiled, tf, mutation):
    change, check, expected = MUTATIONS[mutation]
    c = _mutated(_gpu(compiled), change)
    run = {"scheduling": lambda c: checks.check_scheduling(c, tf), "resources": lambda c: checks.check_resources(c, tf),
           "identity": lambda c: checks.check_identity(c, tf), "images": lambda c: checks.check_images(c, tf),
           "entrypoint": lambda c: checks.check_entrypoint(c, COMMANDS)}.get(check, check)
    problems = run(c)
    assert len(problems) == 1 and expected in problems[0] and "\n" not in problems[0], problems
    assert problems[0].startswith(f"{c.name} (pod plx-operation-")
    assert len(checks.check_all([c], COMMANDS, tf)) >= 1


def test_a_tuner_module_that_is_not_in_the_package_fails_with_one_line(compiled):
    tuner = next(c for c in compiled if "polyaxonfile.tpe" in OPERATIONS[c.name].polyaxonfile)
    assert checks.check_entrypoint(tuner, COMMANDS) == []
    c = _mutated(tuner, lambda s: s["containers"][0].update({"args": [s["containers"][0]["args"][0].replace(
        "experiments.polyaxon.tuner", "experiments.polyaxon.tuners")]}))
    [problem] = checks.check_entrypoint(c, COMMANDS)
    assert "`python -m experiments.polyaxon.tuners`" in problem and "\n" not in problem


def test_terraform_side_mutations_fail_too(compiled, tf):
    """The same checks catch a Terraform change that breaks the pod: more trials per GPU than the machine
    holds, a pool without the label, a machine type nobody described."""
    gpu = _gpu(compiled)
    crowded = dataclasses.replace(tf, gpu_trials_per_gpu=4)
    [problem] = checks.check_resources(gpu, crowded)
    assert "4 trials sharing its GPUs" in problem and "GiB" in problem
    pools = {**tf.pools, "gpu": dataclasses.replace(tf.pools["gpu"], labels={"lmao/pool": "accelerated"})}
    [problem] = checks.check_scheduling(gpu, dataclasses.replace(tf, pools=pools))
    assert "matches 0 node pools" in problem
    pools = {**tf.pools, "gpu": dataclasses.replace(tf.pools["gpu"], machine_type="a3-highgpu-8g")}
    [problem] = checks.check_resources(gpu, dataclasses.replace(tf, pools=pools))
    assert "a3-highgpu-8g" in problem and "MACHINE_TYPES" in problem
    pools = {**tf.pools, "cpu": dataclasses.replace(tf.pools["cpu"], machine_type="n2-standard-4")}
    cpu = next(c for c in compiled if OPERATIONS[c.name].params["pool"] == "cpu")
    [problem] = checks.check_resources(cpu, dataclasses.replace(tf, pools=pools))
    assert "the pod requests 4.10 CPU but a n2-standard-4 node" in problem


def test_gke_allocatable_follows_gkes_published_examples():
    """GKE's reservation rules give, for a 4-vCPU 16 GiB node, 3.92 CPU and 13.0 GiB (less 100 MiB eviction)."""
    alloc = checks.gke_allocatable("e2-standard-4")
    assert abs(alloc["cpu"] - 3.92) < 1e-9
    assert abs(alloc["memory"] - (16 - 1 - 0.8 - 0.8) * 2**30 + 100 * 2**20) < 1


def test_dockerfile_installs_what_pyproject_pins(tmp_path):
    assert checks.check_dockerfile_pins() == []
    bad = tmp_path / "Dockerfile"
    bad.write_text((REPO / "Dockerfile").read_text().replace('"spacy[cuda12x]>=3.8,<3.9"', '"spacy[cuda12x]>=3.7,<3.9"'))
    [problem] = checks.check_dockerfile_pins(bad)
    assert "spacy" in problem and "differs from pyproject.toml" in problem
    bad.write_text((REPO / "Dockerfile").read_text().replace('".[polyaxon]"', '".[polyaxn]"'))
    [problem] = checks.check_dockerfile_pins(bad)
    assert "no extra 'polyaxn'" in problem


# ------------------------------------------------------------------------------------------ executed

TINY_SWEEP = """direction: maximize
n_trials: 4
params:
  learn_rate: {loguniform: [1.0e-3, 3.0e-3]}
  dropout: {uniform: [0.1, 0.2]}
fixed:
  pretrain_epochs: 1
  objective: vectors
  width: 32
  depth: 1
  embed_rows: 1000
  pretrain_max_epochs: 1
  pretrain_batch_size: 2000
  pretrain_hidden_size: 64
  batch_size: 16
"""
TRIALS_GSA = "lmao-trials@PROJECT_ID.iam.gserviceaccount.com"


def _tiny_polyaxonfile(tmp: Path) -> Path:
    """The IMDB-1k polyaxonfile, generated by the same `lmao polyaxonfile` code from a tiny search space."""
    from experiments.polyaxon.polyaxonfile import render_polyaxonfile

    exp = tmp / "src" / "lmao-imdb-1k"
    shutil.copytree(REPO / "lmao-imdb-1k", exp, ignore=shutil.ignore_patterns("polyaxonfile.*", "README.md"))
    (exp / "sweep.yml").write_text(TINY_SWEEP)
    path = exp / "polyaxonfile.random.yml"
    path.write_text(render_polyaxonfile(exp, "random", "lmao-imdb-1k/polyaxonfile.random.yml"))
    return path


def _upload_code(bucket, matrix_uuid: str, experiment: Path) -> None:
    """What `polyaxon run -u` leaves in the store for a matrix: the code under <matrix>/uploads/."""
    files = [p for p in (REPO / "experiments").rglob("*.py")] + [p for p in experiment.rglob("*") if p.is_file()]
    for path in files:
        rel = path.relative_to(REPO) if path.is_relative_to(REPO) else Path("lmao-imdb-1k") / path.relative_to(experiment)
        bucket.blob(f"polyaxon/{matrix_uuid}/uploads/{rel.as_posix()}").upload_from_filename(str(path))


def _identity(tf):
    def bound(namespace: str, ksa: str):
        member = next(iter(tf.wi_members)).split("[")[0] + f"[{namespace}/{ksa}]"
        return TRIALS_GSA if member in tf.wi_members else None
    return bound


@pytest.fixture(scope="module")
def store(gcs_emulator, imdb_corpus, tmp_path_factory):
    """A bucket laid out as after runbook steps 4-8: the corpus published, the code uploaded for a matrix."""
    from experiments.storage.storage import upload_tree

    bucket = gcs_emulator.new_bucket()
    upload_tree(imdb_corpus, f"gs://{bucket.name}/corpus/imdb-small")
    tmp = tmp_path_factory.mktemp("cluster")
    polyaxonfile = _tiny_polyaxonfile(tmp)
    matrix_uuid = uuid.uuid4().hex
    _upload_code(bucket, matrix_uuid, polyaxonfile.parent)
    return {"bucket": bucket, "polyaxonfile": polyaxonfile, "matrix_uuid": matrix_uuid, "tmp": tmp}


def _compile_tiny(store, settings) -> Compiled:
    op = Operation(str(store["polyaxonfile"]), "matrix-child",
                   {**RUNBOOK_PARAMS, "corpus_dir": "gs://{bucket}/corpus/imdb-small", "pool": "cpu",
                    "max_epochs": 2, "patience": 0, "pretrain_max_words": 0})
    return compile_operation("tiny-random-child", op, settings, matrix_uuid=store["matrix_uuid"])


def _node(pod, root, gcs_emulator, tf, **kwargs):
    from tests.pod_node import Node

    # gcsfs >= 2026 asks the bucket's type over gRPC (storage control API), which the emulator lacks.
    env = {"STORAGE_EMULATOR_HOST": gcs_emulator.host, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    return Node(pod, root, env=env, identity=_identity(tf), **kwargs)


@pytest.mark.slow
def test_workload_identity_credentials_are_refused_by_polyaxon_2_18(store, gcs_emulator, tf, tmp_path):
    """The Terraform gives runs no key, only Workload Identity. polyaxon 2.18.0's GCS connection (vents 0.10,
    ``GCPService.credentials: Optional[google.oauth2.service_account.Credentials]``) refuses the credentials
    Workload Identity yields (google.auth.compute_engine.Credentials), so the pod's first init container
    fails before the trial starts. When this test fails, Polyaxon accepts them: drop the key secret."""
    c = _compile_tiny(store, cluster_settings(bucket=store["bucket"].name))
    node = _node(pod_of(c.resource), tmp_path / "node", gcs_emulator, tf)
    try:
        with pytest.raises(RuntimeError) as err:
            node.run_init(timeout=120)
    finally:
        node.close()
    assert "Input should be an instance of Credentials" in str(err.value)
    assert "<google.auth.compute_engi" in str(err.value)  # pydantic shortens the repr it prints


KEY_SECRET = "polyaxon-gcs-key"


def _key_secret():
    from tests.pod_node import service_account_key

    return {KEY_SECRET: {"GC_KEYFILE_DICT": lambda node: service_account_key(TRIALS_GSA, node.metadata.token_uri())}}


def _blobs(bucket, prefix):
    return {b.name[len(prefix):]: b for b in bucket.list_blobs(prefix=prefix)}


@pytest.mark.slow
def test_pod_runs_is_killed_and_its_retry_finishes_clean(store, gcs_emulator, tf, tmp_path):
    """Attempt 1: init containers, trial + sidecar; the trial is SIGKILLed after epoch 1 (what a Spot
    reclaim or an OOM kill does to it); the sidecar's last round uploads the partial outputs. Attempt 2, a
    new pod on a new node as the Job's backoffLimit (termination.maxRetries) makes it: the init container
    brings the partial attempt back, the trial starts clean, takes pretraining from the gs:// cache, and the
    bucket ends with one finished trial and nothing of attempt 1. Then `lmao report` reads it from gs://."""
    bucket = store["bucket"]
    # The Terraform with polyaxon_store_key_secret set: Polyaxon mounts that Secret (a key of the trials
    # account) into its init and sidecar containers; the trial keeps Workload Identity.
    settings = cluster_settings(bucket=bucket.name, store_key_secret=KEY_SECRET)
    assert settings.values["artifactsStore"]["secret"] == {"name": KEY_SECRET, "mountPath": "/plx-secret"}
    c = _compile_tiny(store, settings)
    assert checks.check_all([c], COMMANDS, tf) == []  # the executed pod passes the same checks
    pod = pod_of(c.resource)
    prefix = f"polyaxon/{c.run_uuid}/"
    started = time.monotonic()

    first = _node(pod, tmp_path / "node-1", gcs_emulator, tf, secrets=_key_secret())
    outputs1 = first.root / "plx-context" / "artifacts" / c.run_uuid / "outputs"
    try:
        first.run_init()
        assert (first.root / "plx-context/artifacts" / c.run_uuid / "uploads/lmao-imdb-1k/config.cfg").exists()
        first.start_containers()

        def one_epoch() -> bool:
            try:
                return len(json.loads((outputs1 / "results.json").read_text())["epochs"]) >= 1
            except (OSError, ValueError, KeyError):
                return False

        wait_for(one_epoch, 240, "epoch 1 of attempt 1", interval=0.5)
        first.kill(MAIN)
        codes = first.wait_all(120)
        assert codes[MAIN] == 137 and codes["polyaxon-sidecar"] == 0, (codes, first.log(MAIN)[-2000:])
    finally:
        first.close()
    partial = json.loads(_blobs(bucket, prefix)["outputs/results.json"].download_as_bytes())
    assert partial["status"] == "running" and partial["epochs"], "the sidecar's last round uploaded the partial trial"
    attempt1 = set(_blobs(bucket, prefix))

    second = _node(pod, tmp_path / "node-2", gcs_emulator, tf, secrets=_key_secret())
    outputs2 = second.root / "plx-context" / "artifacts" / c.run_uuid / "outputs"
    try:
        second.run_init()
        restored = json.loads((outputs2 / "results.json").read_text())
        assert restored["status"] == "running"  # the retry really meets attempt 1's leftovers
        second.start_containers()
        codes = second.wait_all(300)
        assert codes == {MAIN: 0, "polyaxon-sidecar": 0}, (codes, second.log(MAIN)[-3000:])
        local = {str(p.relative_to(outputs2)) for p in outputs2.rglob("*") if p.is_file()}
    finally:
        second.close()
    elapsed = time.monotonic() - started

    blobs = _blobs(bucket, prefix)
    results = json.loads(blobs["outputs/results.json"].download_as_bytes())
    assert results["status"] == "completed" and [e["epoch"] for e in results["epochs"]] == [1, 2]
    assert results["pretraining"]["cached"] is True  # built by attempt 1, read back from gs://.../cache
    assert results["pretraining"]["cache_key"] == partial["pretraining"]["cache_key"]
    stored_outputs = {k[len("outputs/"):] for k in blobs if k.startswith("outputs/")}
    assert stored_outputs == local, (stored_outputs ^ local)  # nothing of attempt 1 beside attempt 2's files
    assert "model-best/config.cfg" in stored_outputs and not [k for k in stored_outputs if k.endswith(".tmp")]
    # metrics: Polyaxon's event files, one row per epoch of the finished attempt only
    events = blobs["events/metric/dev_score.plx"].download_as_text().strip().splitlines()
    assert events[0] == "step|timestamp|metric"  # traceml's CSV events
    assert [int(line.split("|")[0]) for line in events[1:]] == [1, 2], events
    assert any(k.startswith("plxlogs/") for k in blobs) and "outputs/spec.json" in blobs
    assert attempt1 - set(blobs) <= {k for k in attempt1 if k.startswith(("outputs/", "events/"))}

    report = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "lmao", "report", "--gcs", f"gs://{bucket.name}/polyaxon",
                           "--out", str(report), "--no-readmes"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "LMAO_TRACKING": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    table = (report / "lmao-imdb-1k.md").read_text()
    assert f"{results['best_dev_score'] * 100:.1f}" in table or f"{results['best_dev_score']:.4f}" in table, table
    print(f"attempt 1 killed + retry: {elapsed:.0f} s; containers (s): attempt 1 {first.durations()}, "
          f"attempt 2 {second.durations()}")
