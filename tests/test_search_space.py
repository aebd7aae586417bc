"""sweep.yml: the repo's search spaces load; every kind of mistake fails naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from experiments.common.errors import InputError
from experiments.training.params import PARAMS
from experiments.sweeps.search_space import load_search_space

REPO = Path(__file__).resolve().parents[1]
GOOD = """
metric: accuracy
direction: maximize
n_trials: 7
pruner: {kind: hyperband, min_resource: 1, reduction_factor: 3}
fixed: {max_epochs: 2}
params:
  width: {choice: [32, 64]}
  depth: {int: [1, 3]}
  dropout: {uniform: [0.0, 0.3]}
  learn_rate: {loguniform: [1e-4, 1.0e-2]}
  objective: {choice: [vectors, characters]}
"""


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "exp"
    folder.mkdir(exist_ok=True)
    (folder / "sweep.yml").write_text(text)
    return folder


@pytest.mark.parametrize("experiment", ["lmao-imdb-1k", "ontonotes-ner"])
def test_repo_search_spaces_load(experiment):
    space = load_search_space(REPO / experiment)
    assert space.experiment == experiment and space.direction == "maximize"
    assert {"width", "depth", "embed_rows", "pretrain_epochs", "objective", "learn_rate", "beta1", "beta2",
            "eps", "dropout", "batch_size", "L2", "grad_clip"} <= set(space.params)
    assert (space.params["pretrain_epochs"].low, space.params["pretrain_epochs"].high) == (0, 3)
    assert space.pruner.kind in ("median", "hyperband")


def test_good_file_samples_inside_its_ranges(tmp_path):
    space = load_search_space(write(tmp_path, GOOD))
    assert space.n_trials == 7 and space.fixed == {"max_epochs": 2} and space.metric == "accuracy"
    assert space.params["learn_rate"].low == pytest.approx(1e-4)  # YAML reads 1e-4 as a string
    assert isinstance(space.pruner.build(), optuna.pruners.HyperbandPruner)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = space.sample(study.ask())
        assert values["width"] in (32, 64) and 1 <= values["depth"] <= 3
        assert isinstance(values["depth"], int) and 0.0 <= values["dropout"] <= 0.3
        assert 1e-4 <= values["learn_rate"] <= 1e-2 and values["objective"] in PARAMS["objective"].choices
    trial = study.ask()
    values = space.sample(trial, {"width": 48, "max_epochs": 2})  # fixed values win and are not sampled
    assert values["width"] == 48 and values["max_epochs"] == 2 and "width" not in trial.params
    assert set(values) == set(space.params) | {"max_epochs"}


@pytest.mark.parametrize("change, key", [
    (("width: {choice: [32, 64]}", "widht: {choice: [32, 64]}"), "params.widht"),
    (("width: {choice: [32, 64]}", "width: {choice: []}"), "params.width.choice"),
    (("depth: {int: [1, 3]}", "depth: {int: [3, 1]}"), "params.depth.int"),
    (("dropout: {uniform: [0.0, 0.3]}", "dropout: {uniform: [0.3, 0.3]}"), "params.dropout.uniform"),
    (("dropout: {uniform: [0.0, 0.3]}", "dropout: {uniform: [0.0, high]}"), "params.dropout.uniform"),
    (("depth: {int: [1, 3]}", "depth: {int: [1, 2.5]}"), "params.depth.int"),
    (("depth: {int: [1, 3]}", "depth: {uniform: [1, 3]}"), "params.depth.uniform"),
    (("dropout: {uniform: [0.0, 0.3]}", "dropout: {int: [0, 1]}"), "params.dropout.int"),
    (("learn_rate: {loguniform: [1e-4, 1.0e-2]}", "learn_rate: {loguniform: [0, 1.0e-2]}"),
     "params.learn_rate.loguniform"),
    (("objective: {choice: [vectors, characters]}", "objective: {choice: [vectors, bigram]}"),
     "params.objective.choice"),
    (("width: {choice: [32, 64]}", "width: {choice: [32, wide]}"), "params.width.choice"),
    (("width: {choice: [32, 64]}", "width: {range: [32, 64]}"), "params.width"),
    (("width: {choice: [32, 64]}", "width: [32, 64]"), "params.width"),
    (("fixed: {max_epochs: 2}", "fixed: {width: 16}"), "fixed.width"),
    (("fixed: {max_epochs: 2}", "fixed: {max_epochs: two}"), "fixed.max_epochs"),
    (("direction: maximize", "direction: up"), "direction"),
    (("n_trials: 7", "n_trials: 0"), "n_trials"),
    (("n_trials: 7", "n_trial: 7"), "n_trial"),
    (("reduction_factor: 3", "n_startup_trials: 3"), "pruner.n_startup_trials"),
    (("kind: hyperband", "kind: asha"), "pruner.kind"),
])
def test_bad_file_names_file_and_key(tmp_path, change, key):
    old, new = change
    assert old in GOOD
    folder = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(InputError) as err:
        load_search_space(folder)
    message = str(err.value)
    assert message.startswith(str(folder / "sweep.yml")), message
    assert key in message, message


def test_missing_or_empty_file(tmp_path):
    with pytest.raises(InputError, match="no search space file"):
        load_search_space(tmp_path)
    with pytest.raises(InputError, match="params: expected a non-empty mapping"):
        load_search_space(write(tmp_path, "metric: accuracy\nparams: {}\n"))
    with pytest.raises(InputError, match="not valid YAML"):
        load_search_space(write(tmp_path, "params: {width: [\n"))


@pytest.mark.parametrize("experiment, metric", [("lmao-imdb-1k", "accuracy"), ("ontonotes-ner", "ents_f")])
def test_the_task_sets_the_metric(tmp_path, experiment, metric):
    """The metric is named once, by the task: sweep.yml may leave it out, and may not contradict it."""
    assert load_search_space(REPO / experiment).metric == metric
    without = GOOD.replace("metric: accuracy\n", "")
    folder = write(tmp_path, without)
    (folder / "defaults.yml").write_text((REPO / experiment / "defaults.yml").read_text())
    assert load_search_space(folder).metric == metric
    other = "ents_f" if metric == "accuracy" else "accuracy"
    with pytest.raises(InputError, match=rf"metric: \w+ trials score '{metric}', not '{other}'"):
        load_search_space(write(tmp_path, f"metric: {other}\n" + without))
