"""Trial parameters: one flat namespace shared by experiment defaults, ``-P name=value`` overrides,
search spaces and result files. Each name means the same thing everywhere.

Where a value comes from, last one wins: the built-in default here, the experiment's ``defaults.yml``,
``lmao trial -P name=value``; unknown names are an error (a typo must not silently run the default).

This table owns every param's default, and ``defaults.yml`` lists only what an experiment changes from
it. A param that sets spaCy config values (``experiments.training.config.PARAM_PATHS``) always overwrites them, so
the numbers at those keys of an experiment's ``config.cfg`` (e.g. the tok2vec ``width = 96``) matter only
to ``spacy train`` run on that file alone. The metric is not a param: the task sets it
(``experiments.training.finetune.METRICS``).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..common.errors import InputError


@dataclass(frozen=True)
class Param:
    type: type
    default: Any
    help: str
    choices: Optional[Tuple[Any, ...]] = None


PARAMS: Dict[str, Param] = {
    # data
    "corpus_dir": Param(str, "corpus/imdb-1k", "prepared corpus folder (from `lmao data ...`)"),
    "vectors": Param(str, "", "static vectors: a spaCy vectors or pipeline folder, or an installed pipeline "
                              "package (en_core_web_lg); default: CORPUS/vectors"),
    # architecture (tok2vec = embed -> encode)
    "width": Param(int, 96, "tok2vec width"),
    "depth": Param(int, 4, "encoder depth (CNN layers)"),
    "embed_rows": Param(int, 2000, "hash embedding rows per attribute"),
    "window_size": Param(int, 1, "CNN window: tokens on each side"),
    "maxout_pieces": Param(int, 3, "maxout pieces in the encoder"),
    "static_vectors_input": Param(bool, False, "also feed the static vectors as an input feature"),
    # text classifier head (textcat experiments; spaCy's architectures)
    "textcat_arch": Param(str, "reduce", "textcat model: the tok2vec pooled (TextCatReduce), a bag of words alone "
                                         "(TextCatBOW, no tok2vec: spaCy's stock efficiency config), or both "
                                         "(TextCatEnsemble: spaCy's stock accuracy config)",
                          ("reduce", "bow", "ensemble")),
    "bow_ngram_size": Param(int, 1, "bow/ensemble: longest n-gram the bag of words counts"),
    "bow_rows": Param(int, 262144, "bow/ensemble: hash rows of the bag of words (spaCy's stock length)"),
    # pretraining
    "objective": Param(str, "vectors", "LMAO objective", ("vectors", "characters", "trigram")),
    "pretrain_loss": Param(str, "cosine", "distance for the vectors/trigram objectives", ("cosine", "L2")),
    "pretrain_epochs": Param(int, 0, "pretraining epochs used to initialise (0 = baseline, no pretraining)"),
    "pretrain_max_epochs": Param(int, 3, "epochs of the (cached) pretraining run the checkpoints come from"),
    "pretrain_max_words": Param(int, 0, "stop pretraining after this many words (0 = no limit)"),
    "pretrain_save_every_words": Param(int, 0, "extra checkpoint every N words (0 = per epoch only)"),
    "pretrain_dropout": Param(float, 0.2, "input dropout in pretraining (makes it a cloze task)"),
    "pretrain_learn_rate": Param(float, 0.001, "Adam learn rate for pretraining"),
    "pretrain_batch_size": Param(int, 3000, "pretraining batch size in words"),
    "pretrain_hidden_size": Param(int, 300, "hidden layer of the pretraining output head"),
    "pretrain_n_characters": Param(int, 4, "first/last N characters for the characters objective"),
    "pretrain_corpus": Param(str, "", "prepared corpus (`lmao data ...`) whose pretraining text to use (its pretrain/ "
                             "shards), e.g. another corpus's or raw text; empty = corpus_dir's own"),
    "pretrain_seed": Param(int, -1, "seed of the pretraining run (-1 = the trial's seed); one fixed value lets "
                                    "one cached pretraining run serve every fine-tuning seed"),
    "pretrain_workers": Param(int, 1, "processes sharing each pretraining batch (data-parallel, one optimizer step; "
                                      "0 = every core); the weights depend on it, so the cache key does too"),
    # fine-tuning
    "learn_rate": Param(float, 0.001, "Adam learn rate"),
    "beta1": Param(float, 0.9, "Adam beta1"),
    "beta2": Param(float, 0.999, "Adam beta2"),
    "eps": Param(float, 1e-8, "Adam epsilon"),
    "L2": Param(float, 0.01, "L2 weight decay"),
    "grad_clip": Param(float, 1.0, "gradient norm clipping"),
    "dropout": Param(float, 0.1, "dropout while fine-tuning"),
    "batch_schedule": Param(str, "fixed", "batch size schedule: fixed docs per batch, compounding docs, or "
                                         "compounding words (spaCy's NER default)", ("fixed", "compounding", "words")),
    "batch_size": Param(int, 32, "docs per batch (fixed schedule)"),
    "batch_start": Param(float, 4.0, "compounding/words schedules: first batch size (docs/words)"),
    "batch_stop": Param(float, 32.0, "compounding/words schedules: largest batch size (docs/words)"),
    "batch_compound": Param(float, 1.001, "compounding/words schedules: growth factor per batch"),
    "max_epochs": Param(int, 10, "fine-tuning epochs at most"),
    "patience": Param(int, 3, "stop after this many epochs without a better dev score (0 = never)"),
    "eval_batch_size": Param(int, 128, "docs per batch when evaluating (does not change the score)"),
    "seed": Param(int, 0, "random seed for everything (pretraining, init, batching)"),
    # compute
    "cpu_gemm": Param(str, "numpy", "matrix multiply on CPU: numpy's BLAS (one thread per process) or thinc's "
                                    "bundled BLIS; the same math to float rounding", ("numpy", "blis")),
}


# Valid values of numeric params, inclusive (None: no bound); a value outside is an error before anything
# runs (a negative width or a dropout of 2 would otherwise fail, or train nonsense, much later).
RANGES: Dict[str, Tuple[Optional[float], Optional[float]]] = {
    "width": (1, None), "depth": (1, None), "embed_rows": (1, None), "window_size": (0, None),
    "maxout_pieces": (1, None), "bow_ngram_size": (1, None), "bow_rows": (1, None),
    "pretrain_epochs": (0, None), "pretrain_max_epochs": (1, None),
    "pretrain_max_words": (0, None), "pretrain_save_every_words": (0, None), "pretrain_dropout": (0, 1),
    "pretrain_learn_rate": (0, None), "pretrain_batch_size": (1, None), "pretrain_hidden_size": (1, None),
    "pretrain_n_characters": (1, None), "pretrain_seed": (-1, 2**32 - 1), "pretrain_workers": (0, None),
    "learn_rate": (0, None), "beta1": (0, 1), "beta2": (0, 1), "eps": (0, None), "L2": (0, None),
    "grad_clip": (0, None), "dropout": (0, 1), "batch_size": (1, None), "batch_start": (1, None),
    "batch_stop": (1, None), "batch_compound": (1, None), "max_epochs": (1, None), "patience": (0, None),
    "eval_batch_size": (1, None), "seed": (0, 2**32 - 1),  # numpy seeds are 32-bit
}


def check_range(name: str, value: Any) -> None:
    """ValueError when a numeric param is not finite or outside :data:`RANGES`."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"param {name!r}: expected a finite number, got {value!r}")
    low, high = RANGES.get(name, (None, None))
    if low is not None and value < low:
        raise ValueError(f"param {name!r}: must be at least {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"param {name!r}: must be at most {high}, got {value!r}")


# Params added after result files already existed, with the value an older trial ran with: a report reads a
# results.json that lacks one as that value, so old and new trials of one configuration compare as one.
ADDED_LATER: Dict[str, Any] = {"pretrain_workers": 1, "cpu_gemm": "blis", "pretrain_corpus": "",
                               "textcat_arch": "reduce", "bow_ngram_size": 1, "bow_rows": 262144}


def did_you_mean(name: Any) -> str:
    """``; did you mean 'width'?`` for a misspelt param name (empty when nothing is close)."""
    close = difflib.get_close_matches(str(name), PARAMS, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_param(name: Any) -> str:
    """The message for a name that is not a param: the closest name, then every known one."""
    return f"unknown param {name!r}{did_you_mean(name)} (known: {', '.join(sorted(PARAMS))})"


def coerce(name: str, value: Any) -> Any:
    """Convert ``value`` (often a string from the command line) to the param's type, or raise ValueError."""
    if name not in PARAMS:
        raise ValueError(unknown_param(name))
    spec = PARAMS[name]
    if spec.type is bool:
        if isinstance(value, bool):
            out: Any = value
        elif str(value).lower() in ("1", "true", "yes", "on"):
            out = True
        elif str(value).lower() in ("0", "false", "no", "off"):
            out = False
        else:
            raise ValueError(f"param {name!r}: expected true/false, got {value!r}")
    else:
        try:
            out = spec.type(value)
        except (TypeError, ValueError):
            raise ValueError(f"param {name!r}: expected {spec.type.__name__}, got {value!r}") from None
        if spec.type is int and isinstance(value, float) and value != int(value):
            raise ValueError(f"param {name!r}: expected an integer, got {value!r}")
    if spec.choices and out not in spec.choices:
        raise ValueError(f"param {name!r}: {out!r} is not one of {list(spec.choices)}")
    if spec.type in (int, float):
        check_range(name, out)
    return out


def coerce_all(values: Mapping[str, Any], source: Union[str, Path], key: str = "") -> Dict[str, Any]:
    """:func:`coerce` every value of a mapping; a bad name or value is an :class:`InputError` naming
    ``source`` (a file, or ``-P``) and, with ``key``, the key (``fixed.width``)."""
    out: Dict[str, Any] = {}
    for name, value in values.items():
        try:
            out[name] = coerce(name, value)
        except ValueError as err:
            raise InputError(source, f"{key}.{name}: {err}" if key else str(err)) from None
    return out


def resolve(defaults: Mapping[str, Any], overrides: Mapping[str, Any], *,
            defaults_source: Union[str, Path] = "defaults", overrides_source: str = "-P") -> Dict[str, Any]:
    """Built-in defaults <- experiment defaults <- overrides, every value type-checked.

    A bad name or value is an :class:`InputError` naming where it came from (``defaults_source``, e.g.
    the experiment's ``defaults.yml``, or ``overrides_source``)."""
    params = {name: spec.default for name, spec in PARAMS.items()}
    params.update(coerce_all(defaults, defaults_source))
    params.update(coerce_all(overrides, overrides_source))
    return params


def _type_name(spec: Param) -> str:
    return "|".join(map(str, spec.choices)) if spec.choices else spec.type.__name__


def params_help() -> str:
    """Every param with its type, default and help: the epilog of ``lmao trial --help``."""
    width = max(len(name) for name in PARAMS) + 2
    lines: List[str] = ["Params (-P name=value; an experiment's defaults.yml sets its own defaults):", "", "\b"]
    for name, spec in PARAMS.items():
        default = "''" if spec.default == "" else str(spec.default).lower() if spec.type is bool else spec.default
        lines.append(f"  {name:<{width}}{_type_name(spec)} = {default}: {spec.help}")
    return "\n".join(lines)


def parse_assignments(items, option: str = "-P") -> Dict[str, str]:
    """Parse ``["width=128", "objective=trigram"]`` from ``-P`` (or ``--meta``) options."""
    out: Dict[str, str] = {}
    for item in items or ():
        if "=" not in item:
            raise InputError(option, f"expected name=value, got {item!r}")
        name, value = item.split("=", 1)
        out[name.strip()] = value.strip()
    return out
