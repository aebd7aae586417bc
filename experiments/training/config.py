"""From an experiment folder + trial params to a filled spaCy config.

The experiment's ``config.cfg`` is an ordinary spaCy training config (``spacy train config.cfg`` runs
it). Trial params are applied as spaCy-style dotted overrides from one table, so what each knob touches
is visible in one place; ``--section.key value`` overrides from the command line go on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from spacy.util import load_config
from thinc.api import Config

from ..common.errors import InputError, read_user_yaml

TOK2VEC = "components.tok2vec.model"

# param -> the config paths it sets (spaCy's dotted override names), the same value at each. The
# [pretraining.objective] and [training.batcher] blocks, which several params shape together, are built
# whole by objective_section and batcher_section.
PARAM_PATHS: Dict[str, Tuple[str, ...]] = {
    # architecture
    "width": (f"{TOK2VEC}.embed.width", f"{TOK2VEC}.encode.width"),
    "depth": (f"{TOK2VEC}.encode.depth",),
    "embed_rows": (f"{TOK2VEC}.embed.rows",),
    "window_size": (f"{TOK2VEC}.encode.window_size",),
    "maxout_pieces": (f"{TOK2VEC}.encode.maxout_pieces",),
    "static_vectors_input": (f"{TOK2VEC}.embed.include_static_vectors",),
    # fine-tuning
    "seed": ("system.seed", "training.seed"),
    "dropout": ("training.dropout",),
    "max_epochs": ("training.max_epochs",),
    "learn_rate": ("training.optimizer.learn_rate",),
    "beta1": ("training.optimizer.beta1",),
    "beta2": ("training.optimizer.beta2",),
    "eps": ("training.optimizer.eps",),
    "L2": ("training.optimizer.L2",),
    "grad_clip": ("training.optimizer.grad_clip",),
    "patience": ("training.patience",),
    "eval_batch_size": ("nlp.batch_size",),
    # pretraining
    "pretrain_max_epochs": ("pretraining.max_epochs",),
    "pretrain_dropout": ("pretraining.dropout",),
    "pretrain_learn_rate": ("pretraining.optimizer.learn_rate",),
    "pretrain_batch_size": ("pretraining.batcher.size",),
}
# MultiHashEmbed takes one row count per embedded attribute; the param gives every attribute the same
# count, so its list is built once the attributes are final (config.cfg, then --x.y overrides).
EMBED = f"{TOK2VEC}.embed"


def param_values(params: Mapping[str, Any]) -> Dict[str, Any]:
    """The dotted config values the params set, from :data:`PARAM_PATHS` (``embed_rows`` aside:
    :func:`set_embed_rows`)."""
    values: Dict[str, Any] = {}
    for name, paths in PARAM_PATHS.items():
        if name != "embed_rows":
            values.update(dict.fromkeys(paths, params[name]))
    return values


def set_embed_rows(config: Config, rows: int, config_path: Path) -> None:
    """``embed.rows`` = ``rows`` for every attribute in ``embed.attrs``: as many counts as attributes,
    however many a config or an ``--...embed.attrs`` override names."""
    embed: Any = config
    for key in EMBED.split("."):
        embed = embed.get(key) if isinstance(embed, dict) else None
    attrs = embed.get("attrs") if isinstance(embed, dict) else None
    if not isinstance(attrs, (list, tuple)) or not attrs:
        raise InputError(config_path, f"[{EMBED}] needs a non-empty attrs list (MultiHashEmbed) for the "
                                      f"embed_rows param, got {attrs!r}")
    embed["rows"] = [rows] * len(attrs)


def objective_section(params: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``[pretraining.objective]`` block for the chosen LMAO objective."""
    objective = params["objective"]
    common = {"maxout_pieces": params["maxout_pieces"], "hidden_size": params["pretrain_hidden_size"]}
    if objective == "vectors":
        return {"@architectures": "spacy.PretrainVectors.v1", "loss": params["pretrain_loss"], **common}
    if objective == "characters":
        return {"@architectures": "spacy.PretrainCharacters.v1",
                "n_characters": params["pretrain_n_characters"], **common}
    if objective == "trigram":
        return {"@architectures": "lmao.PretrainTrigramVectors.v1", "loss": params["pretrain_loss"], **common}
    raise ValueError(f"unknown objective {objective!r}")


def batcher_section(params: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``[training.batcher]`` block: spaCy's sequence batcher, fixed or compounding size, or its
    word-count batcher with a compounding size (``words``: what ``spacy init config -p ner`` writes,
    100 -> 1000 words by 1.001).

    As in ``spacy train``, the batcher is called once per epoch, so a compounding size restarts
    from ``batch_start`` at every epoch.
    """
    compounding = {"@schedules": "compounding.v1", "start": params["batch_start"],
                   "stop": params["batch_stop"], "compound": params["batch_compound"], "t": 0.0}
    if params["batch_schedule"] == "words":
        return {"@batchers": "spacy.batch_by_words.v1", "size": compounding, "tolerance": 0.2,
                "discard_oversize": False, "get_length": None}
    size = compounding if params["batch_schedule"] == "compounding" else params["batch_size"]
    return {"@batchers": "spacy.batch_by_sequence.v1", "size": size, "get_length": None}


TEXTCAT = "components.textcat.model"


def bow_section(params: Mapping[str, Any], exclusive_classes: bool) -> Dict[str, Any]:
    """spaCy's hashed bag-of-words classifier, as ``spacy init config -p textcat`` writes it (spaCy 3.8:
    ``TextCatBOW.v3``, unigrams, 262,144 rows, its own output layer) unless the bow params say otherwise."""
    return {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": exclusive_classes,
            "ngram_size": params["bow_ngram_size"], "no_output_layer": False, "length": params["bow_rows"],
            "nO": None}


def set_textcat_arch(config: Config, params: Mapping[str, Any], config_path: Path) -> None:
    """Replace ``[components.textcat.model]`` for ``textcat_arch`` bow or ensemble (``reduce`` keeps
    ``config.cfg``'s block).

    ``bow`` is the stock efficiency config's model: the bag of words alone, so the tok2vec component
    leaves the pipeline (nothing would listen to it, and its weights would count in the model's size).
    ``ensemble`` is the stock accuracy config's: ``TextCatEnsemble.v2`` over the bag of words and the
    tok2vec that ``config.cfg``'s textcat listens to (attention pooling, then one softmax over both).
    """
    arch = params["textcat_arch"]
    textcat = config.get("components", {}).get("textcat", {}).get("model")
    if not isinstance(textcat, dict):
        raise InputError(config_path, f"textcat_arch={arch} needs a [{TEXTCAT}] block (a textcat experiment)")
    bow = bow_section(params, bool(textcat.get("exclusive_classes", True)))
    if arch == "ensemble":
        listener = textcat.get("tok2vec")
        if not isinstance(listener, dict):
            raise InputError(config_path, f"textcat_arch=ensemble needs [{TEXTCAT}.tok2vec] (the tok2vec it adds "
                                          "to the bag of words)")
        config["components"]["textcat"]["model"] = {"@architectures": "spacy.TextCatEnsemble.v2", "nO": None,
                                                    "tok2vec": listener, "linear_model": bow}
        return
    if params["static_vectors_input"] or params["pretrain_epochs"] > 0:
        raise InputError("-P", "textcat_arch=bow has no tok2vec: it takes neither static vectors as input nor "
                               "pretrained weights (set static_vectors_input=false and pretrain_epochs=0)")
    config["components"]["textcat"]["model"] = bow
    config["nlp"]["pipeline"] = [name for name in config["nlp"]["pipeline"] if name != "tok2vec"]
    config["components"].pop("tok2vec", None)


def needs_vectors(params: Mapping[str, Any], *, pretraining: bool) -> bool:
    """Static vectors are loaded when they are an input feature, or the target of the objective."""
    return bool(params["static_vectors_input"]) or (pretraining and params["objective"] in ("vectors", "trigram"))


def load_experiment(experiment_dir: Path) -> Dict[str, Any]:
    """``defaults.yml``: {name, task, params: {...}}; validated enough to fail early with the file name."""
    path = Path(experiment_dir) / "defaults.yml"
    if not path.exists():
        raise InputError(path, "experiment folder has no defaults.yml")
    data = read_user_yaml(path) or {}
    if data.get("task") not in ("textcat", "ner"):
        raise InputError(path, f"'task' must be textcat or ner, got {data.get('task')!r}")
    if not isinstance(data.get("params", {}), dict):
        raise InputError(path, "'params' must be a mapping of param names to values")
    data.setdefault("name", Path(experiment_dir).resolve().name)
    data.setdefault("params", {})
    return data


def build_config(
    experiment_dir: Path,
    params: Mapping[str, Any],
    *,
    corpus_dir: Path,
    vectors: Optional[Path],
    init_tok2vec: Optional[Path] = None,
    pretraining: bool = False,
    overrides: Optional[Mapping[str, Any]] = None,
    pretrain_dir: Optional[Path] = None,
):
    """Load ``config.cfg`` and apply paths, params and command-line overrides (in that order).

    The pretraining text is ``pretrain_dir``'s (a local copy of the ``pretrain_corpus`` param), else that
    param's folder, else ``corpus_dir``'s own.

    The result is the single source of the training settings: the loop reads only this config, so a
    ``--training.x`` override takes effect and ``spacy train`` on the saved config trains the same way.
    """
    config_path = Path(experiment_dir) / "config.cfg"
    if not config_path.exists():
        raise InputError(config_path, "experiment folder has no config.cfg")
    use_vectors = needs_vectors(params, pretraining=pretraining)
    values: Dict[str, Any] = {
        "paths.train": str(corpus_dir / "train.spacy"),
        "paths.dev": str(corpus_dir / "dev.spacy"),
        "paths.pretrain": str(Path(pretrain_dir or params.get("pretrain_corpus") or corpus_dir) / "pretrain"),
        "paths.vectors": str(vectors) if (use_vectors and vectors) else None,
        "paths.init_tok2vec": str(init_tok2vec) if init_tok2vec else None,
        "training.eval_frequency": 1_000_000_000,  # the trial evaluates once per epoch itself
    }
    values.update(param_values(params))
    config = load_config(config_path, overrides=values, interpolate=False)
    # Blocks a param replaces whole; then the command line goes on top of everything.
    config["pretraining"]["objective"] = objective_section(params)
    config["training"]["batcher"] = batcher_section(params)
    if params["textcat_arch"] != "reduce":
        set_textcat_arch(config, params, config_path)
    if overrides:
        config = Config().from_str(config.to_str(), overrides=dict(overrides), interpolate=False)
    has_tok2vec = "tok2vec" in config["components"]  # textcat_arch=bow drops it
    if has_tok2vec and f"{EMBED}.rows" not in (overrides or {}):  # an explicit --...embed.rows wins
        set_embed_rows(config, params["embed_rows"], config_path)
    if use_vectors and not vectors:
        raise InputError(config_path, f"objective {params['objective']!r} / static_vectors_input needs "
                                      "static vectors: run `lmao vectors train` or set -P vectors=PATH")
    return config
