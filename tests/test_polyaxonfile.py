"""The polyaxonfiles are generated from sweep.yml: no drift, `polyaxon check` accepts them, and a matrix
child renders to the `lmao trial` command line a local sweep would run."""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments.training.params import coerce
from experiments.polyaxon.polyaxonfile import MAX_RETRIES, generated_files, render_polyaxonfile
from experiments.sweeps.search_space import load_search_space

REPO = Path(__file__).resolve().parents[1]
POLYAXON = Path(sys.executable).parent / "polyaxon"
FILES = generated_files(REPO)
IDS = [name for _, _, _, name in FILES]
# The matrices (random, bayes); polyaxonfile.tpe.yml is a tuner run (experiments/polyaxon/tuner.py).
MATRIX_FILES = [f for f in FILES if f[1] != "tpe"]
MATRIX_IDS = [name for _, _, _, name in MATRIX_FILES]
TUNER_FILES = [f for f in FILES if f[1] == "tpe"]


@pytest.mark.parametrize("experiment_dir, search, path, name", FILES, ids=IDS)
def test_no_drift(experiment_dir, search, path, name):
    assert path.exists(), f"{name} missing: run `make polyaxonfiles`"
    expected = render_polyaxonfile(experiment_dir, search, name)
    assert path.read_text(encoding="utf-8") == expected, f"{name} is stale: run `make polyaxonfiles`"


def test_root_polyaxonfile_is_the_imdb_random_sweep():
    doc = yaml.safe_load((REPO / "polyaxonfile.yml").read_text())
    assert doc["kind"] == "operation" and doc["matrix"]["kind"] == "random"
    assert doc["name"] == "lmao-imdb-1k-random"
    assert "experiments trial lmao-imdb-1k " in doc["component"]["run"]["container"]["args"][0]


@pytest.mark.parametrize("experiment_dir, search, path, name", MATRIX_FILES, ids=MATRIX_IDS)
def test_matrix_matches_search_space(experiment_dir, search, path, name):
    doc = yaml.safe_load(path.read_text())
    space = load_search_space(experiment_dir)
    matrix, component = doc["matrix"], doc["component"]
    assert matrix["kind"] == search
    assert set(matrix["params"]) == set(space.params)
    inputs = {i["name"]: i for i in component["inputs"]}
    assert set(space.params) | set(space.fixed) | {"image", "cpu", "memory", "gpus", "cache"} <= set(inputs)
    for param, gen in matrix["params"].items():
        dim = space.params[param]
        if dim.kind == "int":
            assert gen == {"kind": "range", "value": [dim.low, dim.high + 1, 1]}
        elif dim.kind == "loguniform" and search == "random":  # Polyaxon samples exp(uniform(low, high))
            assert gen["kind"] == "loguniform"
            assert [math.exp(v) for v in gen["value"]] == pytest.approx([dim.low, dim.high], rel=1e-5)
        elif dim.kind == "loguniform":
            assert gen["kind"] == "logspace"
            assert 10 ** gen["value"]["start"] == pytest.approx(dim.low, rel=1e-5)
    if search == "random":
        assert matrix["numRuns"] == space.n_trials
    else:
        assert matrix["numInitialRuns"] + matrix["maxIterations"] == space.n_trials
        assert matrix["metric"] == {"name": "best_dev_score", "optimization": space.direction}


CHECK_MANY = """
import json, sys
from polyaxon.cli import cli  # the `polyaxon` command itself, imported once for every file
codes = []
for args in json.loads(sys.argv[1]):
    try:
        cli.main(["check", *args], prog_name="polyaxon", standalone_mode=False)
        codes.append(0)
    except SystemExit as exc:
        codes.append(exc.code)
print("CODES", json.dumps(codes))
"""


def polyaxon_env(home: Path) -> dict:
    env = {**os.environ, "HOME": str(home)}
    env.pop("POLYAXON_HOST", None)
    return env


def test_polyaxon_check_cli_accepts_the_root_file(tmp_path):
    """The `polyaxon check` binary on the file `polyaxon run -u` picks up from the repo root."""
    run = subprocess.run([str(POLYAXON), "check", "-f", str(REPO / "polyaxonfile.yml")], capture_output=True,
                         text=True, env=polyaxon_env(tmp_path), timeout=300)
    assert run.returncode == 0 and "Polyaxonfile valid" in run.stdout, run.stdout + run.stderr


def test_polyaxon_check_accepts_every_file_and_rejects_a_bad_param(tmp_path):
    """`polyaxon check -f FILE` for every generated file (one process: its imports take seconds), and
    proof that the check means something: a param value of the wrong type fails it."""
    cases = [["-f", str(path)] for _, _, path, _ in FILES]
    cases.append(["-f", str(REPO / "polyaxonfile.yml"), "-P", "gpus=many"])
    run = subprocess.run([sys.executable, "-c", CHECK_MANY, json.dumps(cases)], capture_output=True, text=True,
                         env=polyaxon_env(tmp_path), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    codes = json.loads(run.stdout.split("CODES", 1)[1])
    assert codes == [0] * len(FILES) + [1], run.stdout[-3000:]
    assert run.stdout.count("Polyaxonfile valid") == len(FILES)
    assert "gpus" in run.stdout


def compile_as_polyaxon(path, params, drop_matrix: bool = False):
    """A polyaxonfile compiled as Polyaxon's CLI and scheduler do (polyaxon 2.18.0), with ``params`` applied
    and the run's output paths filled in (``drop_matrix``: one child of a matrix, its params given)."""
    from polyaxon._polyaxonfile import CompiledOperationSpecification, OperationSpecification, check_polyaxonfile
    from polyaxon.schemas import V1Param

    op = check_polyaxonfile(polyaxonfile=str(path), is_cli=False, to_op=True)
    if drop_matrix:
        op.matrix = None
    compiled = OperationSpecification.compile_operation(op)
    compiled = CompiledOperationSpecification.apply_params(
        compiled, params={k: V1Param(value=v) for k, v in params.items()})
    compiled = CompiledOperationSpecification.apply_operation_contexts(compiled)
    return CompiledOperationSpecification.apply_runtime_contexts(compiled, contexts={
        "globals": {"run_outputs_path": "/plx/run/outputs", "run_artifacts_path": "/plx/run"}})


@pytest.mark.parametrize("experiment_dir, search, path, name", MATRIX_FILES[::2], ids=MATRIX_IDS[::2])
def test_matrix_child_renders_the_trial_command(experiment_dir, search, path, name):
    """Compile one child as Polyaxon's scheduler does; its command must be the trial with these params."""
    space = load_search_space(experiment_dir)
    chosen = {}
    for param, dim in space.params.items():
        chosen[param] = dim.values[-1] if dim.kind == "choice" else dim.high
    chosen.update(pool="gpu", gpus=1, image="europe-docker.pkg.dev/p/r/lmao:abc", cache="gs://b/cache")
    compiled = compile_as_polyaxon(path, chosen, drop_matrix=True)
    container = compiled.run.container
    assert container.image == chosen["image"] and container.working_dir == "/plx/run/uploads"
    assert container.resources["limits"]["nvidia.com/gpu"] == 1
    assert compiled.run.environment.node_selector == {"lmao/pool": "gpu"}
    assert compiled.termination.max_retries == MAX_RETRIES >= 1  # a preempted Spot trial runs again
    argv = shlex.split(container.args[0])
    assert argv[:6] == ["exec", "python", "-m", "experiments", "trial", experiment_dir.name]
    assert argv[argv.index("--out") + 1] == "/plx/run/outputs"
    assert argv[argv.index("--cache") + 1] == "gs://b/cache"
    given = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-P")
    for param, value in chosen.items():
        if param in space.params:
            assert coerce(param, given[param]) == pytest.approx(value) if isinstance(value, float) \
                else coerce(param, given[param]) == value
    for param, value in space.fixed.items():
        assert coerce(param, given[param]) == value


@pytest.mark.parametrize("experiment_dir, search, path, name", TUNER_FILES, ids=[f[3] for f in TUNER_FILES])
def test_tuner_file_renders_the_tuner_command(experiment_dir, search, path, name):
    """Compile the tuner run as Polyaxon does: it runs our tuner on the CPU pool with the tuner's label,
    its settings come from sweep.yml, and every input of the trial component it does not search is
    passed on to the trials (-P), with the value given to the tuner."""
    from experiments.polyaxon.tuner import TUNER_LABEL

    space = load_search_space(experiment_dir)
    trial = yaml.safe_load((experiment_dir / "polyaxonfile.random.yml").read_text())["component"]
    chosen = {"pool": "gpu", "gpus": 1, "image": "europe-docker.pkg.dev/p/r/lmao:abc", "cache": "gs://b/cache",
              "n_trials": 7, "storage": "postgresql://tuner@db/optuna"}
    compiled = compile_as_polyaxon(path, chosen)
    container = compiled.run.container
    assert container.image == chosen["image"] and container.working_dir == "/plx/run/uploads"
    assert compiled.run.environment.node_selector == {"lmao/pool": "cpu"}  # the tuner trains nothing
    assert compiled.run.environment.labels == TUNER_LABEL  # what the NetworkPolicy lets reach the API
    assert "nvidia.com/gpu" not in container.resources["limits"]
    argv = shlex.split(container.args[0])
    assert argv[:5] == ["exec", "python", "-m", "experiments.polyaxon.tuner", "run"]
    options = dict(a.split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    assert options["--n-trials"] == "7" and options["--storage"] == chosen["storage"]
    assert options["--sweep-file"] == f"{experiment_dir.name}/sweep.yml"
    assert options["--trial-file"] == f"{experiment_dir.name}/polyaxonfile.random.yml"
    assert argv[argv.index("--outputs") + 1] == "/plx/run/outputs"
    given = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-P")
    assert set(given) == {i["name"] for i in trial["inputs"]} - set(space.params)
    assert given["pool"] == "gpu" and given["gpus"] == "1" and given["cache"] == "gs://b/cache"


UNIGNORED = """
import json, os
from polyaxon._managers.ignore import IgnoreConfigManager
from polyaxon._client.run import RunClient  # what `polyaxon run -u` calls: upload_artifacts_dir(dirpath=None)
print("FILES", json.dumps(sorted(IgnoreConfigManager.get_unignored_filepaths(
    addtional_patterns=IgnoreConfigManager.get_push_patterns()))))
"""


def test_polyaxonignore_uploads_code_not_venvs_runs_or_providers(tmp_path):
    """Polyaxon's own matcher, run from a tree shaped like the repo root with this repo's .polyaxonignore."""
    keep = ["experiments/training/trial.py", "lmao-imdb-1k/sweep.yml", "lmao-imdb-1k/polyaxonfile.random.yml",
            "polyaxonfile.yml", "pyproject.toml", "terraform-gke/main.tf", "analysis/imdb-1k-campaign/baseline/seed-0/results.json",
            "tests/test_trial.py"]
    drop = [".venv/bin/python", ".venv-dashboard/bin/haupt", ".venv-checkov/x", ".git/HEAD",
            "terraform-gke/.terraform/providers/google.zip", "terraform-gke/terraform.tfstate",
            "terraform-gke/terraform.tfvars", "runs/study/trial-0000/results.json", "runs/optuna.sqlite3",
            "corpus/imdb-1k/train.spacy", ".polyaxon-sandbox/sandbox/db.sqlite3", "analysis/results/epochs.csv", "analysis/imdb-1k-campaign/baseline/seed-0/model-best/config.cfg",
            "analysis/imdb-1k-campaign/cache/abc/model0.bin",
            "experiments/__pycache__/trial.cpython-311.pyc", "lmao.egg-info/PKG-INFO", ".polyaxon/.run"]
    for rel in keep + drop:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / ".polyaxonignore").write_text((REPO / ".polyaxonignore").read_text())
    run = subprocess.run([sys.executable, "-c", UNIGNORED], cwd=tmp_path, capture_output=True, text=True,
                         env=polyaxon_env(tmp_path), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    files = {f[2:] if f.startswith("./") else f for f in json.loads(run.stdout.split("FILES", 1)[1])}
    assert files == set(keep) | {".polyaxonignore"}
