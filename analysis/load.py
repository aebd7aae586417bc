"""Load trial result files from any mix of sources into pandas tables.

Every result file ends up in exactly one place: the trials table (``completed`` and ``pruned`` trials),
or the skipped table with the reason (unreadable JSON, wrong schema, or a partial trial: ``running`` /
``failed``). Nothing is dropped silently.

Pruned trials are kept: their epochs are in the per-epoch table and they count in sweep progress, but they
are never "best" candidates and never enter a mean/CI (their scores stop early, by design of the pruner).

Columns of the trials table: ``source`` (where the file came from), the top-level scalars of the schema,
``params.<name>`` for every param, ``pretraining.<key>``, ``data.<key>``, ``study`` / ``search`` /
``trial_number`` when a source knows them, and the derived ``setting`` (label), ``setting_order``,
``objective`` (None = baseline), ``amount`` and ``amount_unit`` (pretraining epochs, or words seen for NER).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import pandas as pd

from experiments.common.errors import InputError
from experiments.training.params import ADDED_LATER
from experiments.training.results import RESULTS_FILE, problem
from experiments.storage import storage as store  # the GCS layout and client (the name `storage` is an Optuna URL here)

OBJECTIVE_ORDER = {"vectors": 0, "trigram": 1, "characters": 2}
TOP_LEVEL = (
    "experiment", "task", "status", "error", "seed", "metric", "best_epoch", "best_dev_score",
    "model_size_bytes", "inference_words_per_second", "final_evaluation", "test_score",
    "git_commit", "host", "device", "started_at", "finished_at", "wall_seconds", "model_dir",
)
META_KEYS = ("study", "search", "trial_number")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # experiment/task names become file and folder names


@dataclass
class RawResult:
    """One result file as read from a source, before validation."""

    source: str  # shown in tables/manifest: a path relative to cwd, gs:// URL, optuna:/polyaxon: id
    key: str  # identity for de-duplication (absolute path or URL)
    data: Optional[Any] = None
    error: Optional[str] = None
    meta: Dict[str, Any] = field(default_factory=dict)
    meta_rank: int = 0  # metadata from a higher rank wins when one file comes from two sources


@dataclass
class Loaded:
    """The loaded runs: one row per trial, one row per (trial, epoch), and what was skipped and why."""

    trials: pd.DataFrame
    epochs: pd.DataFrame
    skipped: pd.DataFrame
    notes: List[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.trials.empty


# ---------------------------------------------------------------------------------------------- sources


def display_path(path: Path) -> str:
    """A path relative to the working directory when below it (stable across checkouts)."""
    path = path.resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _study_from(rel_parts: Sequence[str], root_name: str) -> Optional[str]:
    """``<root>/<study>/trial-0001/results.json``: the folder above the trial folder names the study
    (the root itself when it is the study folder)."""
    if len(rel_parts) >= 3:
        return rel_parts[-3]
    return (root_name or None) if len(rel_parts) == 2 else None


def parse_json_bytes(raw: bytes) -> Tuple[Optional[Any], Optional[str]]:
    try:
        return json.loads(raw.decode("utf-8")), None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable JSON: {err}"


def read_file(path: Path, meta: Optional[Dict[str, Any]] = None, rank: int = 0) -> RawResult:
    """Read one local result file (a ``results.json`` or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    out = RawResult(source=display_path(path), key=str(path.resolve()), meta=dict(meta or {}), meta_rank=rank)
    try:
        out.data, out.error = parse_json_bytes(path.read_bytes())
    except OSError as err:
        out.error = f"cannot read: {err.strerror or err}"
    return out


def read_local(roots: Iterable[Path]) -> Tuple[List[RawResult], List[str]]:
    """Every ``results.json`` below each root (a folder, or one result file); notes for missing roots."""
    found: List[RawResult] = []
    notes: List[str] = []
    for root in roots:
        root = Path(root)
        if not root.exists():
            notes.append(f"runs folder not found: {root}")
            continue
        if root.is_file():
            found.append(read_file(root))
            continue
        for path in sorted(root.rglob(RESULTS_FILE)):
            if not path.is_file():
                continue
            rel = path.relative_to(root).parts
            study = _study_from(rel, root.resolve().name)
            found.append(read_file(path, {"study": study} if study else {}))
    return found, notes


def read_gcs(url: str, client: Any = None) -> List[RawResult]:
    """Every ``*/results.json`` under a ``gs://bucket/prefix`` (honours ``STORAGE_EMULATOR_HOST``).

    Trials published by ``lmao trial --artifacts`` are found in their entries (``experiments.storage.storage``
    owns that layout): the entry folder names the trial, and an entry without its marker is partial."""
    gs = store.parse_gs_url(url)
    found: List[RawResult] = []
    for stored in store.find_files(url, RESULTS_FILE, client):
        rel = stored.logical[len(gs.prefix) + 1:] if gs.prefix else stored.logical
        study = _study_from(rel.split("/"), gs.prefix.rsplit("/", 1)[-1])
        item = RawResult(source=stored.url, key=stored.url, meta={"study": study} if study else {})
        if not stored.complete:
            item.error = "partial: published entry has no _COMPLETE marker (upload unfinished or abandoned)"
        else:
            _download(item, stored.url, client)
        found.append(item)
    return found


def _download(item: RawResult, url: str, client: Any = None) -> None:
    """Fill ``item`` from the object at ``url``; network or permission errors are its error, not ours."""
    try:
        item.data, item.error = parse_json_bytes(store.read_bytes(url, client))
    except Exception as err:  # list the file, keep going
        item.error = f"cannot download: {type(err).__name__}: {err}"


def read_result_dir(location: str, meta: Dict[str, Any], rank: int, gcs_client: Any = None) -> RawResult:
    """A result folder named by a sweep (local path or gs:// URL)."""
    if not store.is_gs_url(location):
        return read_file(Path(location), meta, rank)
    url = location
    if not location.rstrip("/").endswith(RESULTS_FILE):
        try:
            url = store.file_url(location, RESULTS_FILE)
        except Exception:  # the download below says what is wrong
            url = f"{location.rstrip('/')}/{RESULTS_FILE}"
    item = RawResult(source=url, key=url, meta=meta, meta_rank=rank)
    _download(item, url, gcs_client)
    return item


def _search_of(attrs: Dict[str, Any]) -> Optional[str]:
    for name in ("search", "sampler", "search_method"):
        if attrs.get(name):
            return str(attrs[name])
    return None


def read_optuna(storage: str, study_name: Optional[str] = None, gcs_client: Any = None) -> List[RawResult]:
    """Trials of one Optuna study (or every study in the storage), via each trial's ``result_dir`` attr."""
    import optuna

    names = [study_name] if study_name else sorted(optuna.get_all_study_names(storage=storage))
    found: List[RawResult] = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        search = _search_of(study.user_attrs) or _search_of(study.system_attrs)
        for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
            meta = {"study": name, "trial_number": trial.number}
            if search or _search_of(trial.user_attrs):
                meta["search"] = _search_of(trial.user_attrs) or search
            result_dir = trial.user_attrs.get("result_dir")
            if result_dir:
                found.append(read_result_dir(str(result_dir), meta, rank=2, gcs_client=gcs_client))
            elif isinstance(trial.user_attrs.get("results"), dict):
                source = f"optuna:{name}/{trial.number}"
                found.append(RawResult(source, source, trial.user_attrs["results"], meta=meta, meta_rank=2))
            else:
                source = f"optuna:{name}/{trial.number}"
                reason = f"no result_dir user attr (trial state {trial.state.name})"
                found.append(RawResult(source, source, error=reason, meta=meta, meta_rank=2))
    return found


def _artifact_candidates(run_uuid: str, lineage: Iterable[Any]) -> List[str]:
    """Paths where a run's results.json may sit: lineage entries first, then the usual places."""
    out: List[str] = []
    for entry in lineage:
        path = str(getattr(entry, "path", "") or "")
        if not path.endswith(RESULTS_FILE):
            continue
        if run_uuid and f"{run_uuid}/" in path:
            out.append(path.split(f"{run_uuid}/", 1)[1])
        out.append(path)
    out += [RESULTS_FILE, f"outputs/{RESULTS_FILE}", f"assets/{RESULTS_FILE}"]
    return list(dict.fromkeys(out))


def read_polyaxon(project: str, client_cls: Any = None, page_size: int = 100,
                  notes: Optional[List[str]] = None) -> List[RawResult]:
    """Runs of a Polyaxon project (``owner/project``): each run's ``results.json`` artifact, else its
    ``results`` output. Runs that hold no trial by design (a matrix, a tuner: experiments.polyaxon.not_a_trial)
    are left out without asking for their files; ``notes`` gets one line naming the runs read and one naming
    those left out."""
    import tempfile

    from experiments.polyaxon import not_a_trial

    if client_cls is None:
        from polyaxon.client import RunClient as client_cls  # noqa: N813
    owner, _, name = project.rpartition("/")
    lister = client_cls(owner=owner or None, project=name)
    runs: List[Any] = []
    offset = 0
    while True:
        page = lister.list(limit=page_size, offset=offset, sort="created_at")
        results = list(getattr(page, "results", None) or [])
        runs += results
        if len(results) < page_size or not getattr(page, "next", None):
            break
        offset += page_size
    found: List[RawResult] = []
    read: List[str] = []
    left_out: List[str] = []
    for run in sorted(runs, key=lambda r: (str(getattr(r, "created_at", "")), str(r.uuid))):
        label = f"{getattr(run, 'name', None) or '?'} ({str(run.uuid)[:8]})"
        role = not_a_trial(run)
        if role:
            left_out.append(f"{role} {label}")
            continue
        read.append(label)
        source = f"polyaxon:{project}/{run.uuid}"
        outputs = getattr(run, "outputs", None) or {}
        inputs = getattr(run, "inputs", None) or {}
        pipeline = getattr(run, "pipeline", None)  # the matrix (sweep) a run belongs to, if any
        group = getattr(pipeline, "name", None) or getattr(pipeline, "uuid", None)
        meta = {"study": f"polyaxon:{project}" + (f"/{group}" if group else ""),
                "search": _search_of(inputs) or _search_of(outputs)}
        item = RawResult(source, source, meta={k: v for k, v in meta.items() if v}, meta_rank=1)
        client = client_cls(owner=owner or None, project=name, run_uuid=run.uuid)
        try:
            lineage = getattr(client.get_artifacts_lineage(limit=1000), "results", None) or []
        except Exception:
            lineage = []
        with tempfile.TemporaryDirectory() as tmp:
            for candidate in _artifact_candidates(str(run.uuid), lineage):
                try:
                    with _quiet_polyaxon_client():  # a candidate that is not there is an expected 404
                        local = client.download_artifact(path=candidate, path_to=tmp)
                except Exception:
                    continue
                if local and Path(local).is_file():
                    item.data, item.error = parse_json_bytes(Path(local).read_bytes())
                    break
        if item.data is None and item.error is None:
            results = outputs.get("results")
            if isinstance(results, str):
                item.data, item.error = parse_json_bytes(results.encode("utf-8"))
            elif isinstance(results, dict):
                item.data = results
            else:
                item.error = f"no {RESULTS_FILE} artifact and no 'results' output (run status {run.status})"
        found.append(item)
    if notes is not None:
        notes.append(f"polyaxon:{project}: read {len(read)} run(s)" + (f": {', '.join(read)}" if read else ""))
        if left_out:
            notes.append(f"polyaxon:{project}: left out {len(left_out)} run(s) that hold no trial: "
                         + ", ".join(left_out))
    return found


class _quiet_polyaxon_client:  # noqa: N801 - used as a context manager
    """The Polyaxon client logs every failed request as an error ("Request to ... failed with status code
    404") before it raises; probing for a file that may not be there is not an error."""

    def __enter__(self) -> None:
        import logging

        self.logger = logging.getLogger("polyaxon.cli")
        self.level = self.logger.level
        self.logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: Any) -> None:
        self.logger.setLevel(self.level)


# ------------------------------------------------------------------------------------------ validation


def words_label(n: float) -> str:
    """50_002_345 -> '50M': two significant figures, so runs that overshoot a word budget group together."""
    if n <= 0:
        return "0"
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k"), (1, "")):
        if n >= factor:
            value = float(f"{n / factor:.2g}")
            return f"{value:g}{suffix}"
    return f"{n:g}"


def round_words(n: float) -> float:
    """Two significant figures (the grouping unit for words-based pretraining amounts)."""
    return float(f"{n:.2g}") if n > 0 else 0.0


def setting_label(objective: Optional[str], amount: float, unit: str = "epochs") -> str:
    """'baseline', '1 epoch (vectors)', '50M words (trigram)'."""
    if not objective or not amount:
        return "baseline"
    if unit == "words":
        return f"{words_label(amount)} words ({objective})"
    return f"{amount:g} epoch{'s' if amount != 1 else ''} ({objective})"


def pretraining_setting(task: str, params: Dict[str, Any], pretraining: Dict[str, Any]) -> Dict[str, Any]:
    """Which column/row a trial belongs to: baseline, or (objective, amount in epochs or words)."""
    epochs = params.get("pretrain_epochs", pretraining.get("epochs")) or 0
    words = pretraining.get("words_seen") or 0
    objective = pretraining.get("objective") or (params.get("objective") if epochs else None)
    if task == "ner" and (words or not epochs):  # NER counts words seen (the baseline: 0 words)
        amount, unit = round_words(words), "words"
    else:
        amount, unit = float(epochs), "epochs"
    if not objective or not amount:
        return {"setting": "baseline", "setting_order": (0, 0, 0.0), "objective": None,
                "amount": 0.0, "amount_unit": unit}
    label = setting_label(objective, amount, unit)
    order = (1, OBJECTIVE_ORDER.get(objective, 9), amount)
    return {"setting": label, "setting_order": order, "objective": objective, "amount": amount,
            "amount_unit": unit}


def corpus_label(corpus: Any) -> Optional[str]:
    """Which data a trial read, from the manifest `lmao data` wrote (results.json's ``corpus``): file names
    of the sources, so a table can say e.g. that an ``ontonotes-ner`` run used WNUT-17."""
    manifest = corpus.get("manifest") if isinstance(corpus, dict) else None
    if not isinstance(manifest, dict):
        return None
    sources = manifest.get("sources") or {"source": manifest.get("source")}
    names = [Path(str(v)).name for k, v in sorted(sources.items()) if v and k in ("train", "dev", "source")]
    return " + ".join(names) or None


def corpus_name(corpus: Any) -> Optional[str]:
    """A short name for the annotated data a trial read: the folder of its training source
    (``.../wnut17/wnut17train.conll`` -> ``wnut17``), so results on two NER corpora get a table each."""
    manifest = corpus.get("manifest") if isinstance(corpus, dict) else None
    sources = manifest.get("sources") if isinstance(manifest, dict) else None
    train = sources.get("train") if isinstance(sources, dict) else None
    if not train:
        return None
    name = Path(str(train)).parent.name or Path(str(train)).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._") or None


def provenance_columns(data: Dict[str, Any]) -> Dict[str, Any]:
    """``meta.<key>`` for what the trial recorded (``lmao campaign``: campaign, setting) and ``corpus.<key>``
    for the corpus manifest's scalars (``include_unsup``, ``pretrain_words``, ...), its pretraining docs
    and raw-text source: the tables say which setting and which pretraining text a trial had."""
    scalar = (str, int, float, bool)
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    out = {f"meta.{k}": v for k, v in sorted(meta.items()) if isinstance(v, scalar)}
    corpus = data.get("corpus") if isinstance(data.get("corpus"), dict) else {}
    manifest = corpus.get("manifest") if isinstance(corpus.get("manifest"), dict) else {}
    pretrain = corpus.get("pretrain") if isinstance(corpus.get("pretrain"), dict) else {}
    if isinstance(pretrain.get("manifest"), dict):  # pretrained on another corpus's text (pretrain_corpus)
        own = pretrain["manifest"]
        manifest = {**{k: v for k, v in manifest.items() if k not in ("include_unsup", "max_pretrain_docs")},
                    **{k: own.get(k) for k in ("pretrain_words", "pretrain_text", "include_unsup",
                                               "max_pretrain_docs") if k in own},
                    "docs": {**(manifest.get("docs") or {}), "pretrain": (own.get("docs") or {}).get("pretrain")},
                    "sources": {**(manifest.get("sources") or {}), "raw": (own.get("sources") or {}).get("raw")}}
    out.update({f"corpus.{k}": v for k, v in sorted(manifest.items()) if isinstance(v, scalar)})
    docs, sources = manifest.get("docs"), manifest.get("sources")
    out["corpus.pretrain_docs"] = docs.get("pretrain") if isinstance(docs, dict) else None
    out["corpus.raw"] = Path(str(sources["raw"])).name if isinstance(sources, dict) and sources.get("raw") else None
    return out


def trial_row(item: RawResult) -> Dict[str, Any]:
    data = item.data
    row: Dict[str, Any] = {"source": item.source}
    row.update({key: data.get(key) for key in TOP_LEVEL})
    row["corpus"] = corpus_label(data.get("corpus"))
    row["corpus_name"] = corpus_name(data.get("corpus"))
    row.update(provenance_columns(data))
    params = {**ADDED_LATER, **data["params"]}  # an older trial ran with the default of a later param
    row.update({f"params.{k}": v for k, v in sorted(params.items())})
    # spaCy config overrides change a trial as much as params do: part of its configuration identity
    row["config_overrides"] = json.dumps(data.get("config_overrides") or {}, sort_keys=True, default=str)
    pretraining = data.get("pretraining") or {}
    row.update({f"pretraining.{k}": v for k, v in sorted(pretraining.items())})
    row.update({f"data.{k}": v for k, v in sorted((data.get("data") or {}).items())})
    recorded = data.get("meta") if isinstance(data.get("meta"), dict) else {}  # `lmao trial --meta`
    row.update({key: item.meta.get(key) if item.meta.get(key) is not None else recorded.get(key)
                for key in META_KEYS})
    if isinstance(row["trial_number"], str) and row["trial_number"].isdigit():
        row["trial_number"] = int(row["trial_number"])
    if not row["search"] and data.get("search"):
        row["search"] = str(data["search"])
    row.update(pretraining_setting(str(data["task"]), data["params"], pretraining))
    return row


def epoch_rows(item: RawResult, trial: Dict[str, Any]) -> List[Dict[str, Any]]:
    rows = []
    for epoch in item.data["epochs"]:
        if not isinstance(epoch, dict) or "epoch" not in epoch:
            continue
        rows.append({
            "source": item.source, "experiment": trial["experiment"], "task": trial["task"],
            "status": trial["status"], "setting": trial["setting"], "setting_order": trial["setting_order"],
            "seed": trial["seed"], "epoch": int(epoch["epoch"]), "dev_score": epoch.get("dev_score"),
            "train_loss": epoch.get("train_loss"), "seconds": epoch.get("seconds"),
        })
    return rows


def merge(items: Iterable[RawResult]) -> List[RawResult]:
    """One entry per result file even when two sources name it (e.g. the runs folder and the study)."""
    by_key: Dict[str, RawResult] = {}
    for item in items:
        old = by_key.get(item.key)
        if old is None:
            by_key[item.key] = item
            continue
        low, high = sorted((old, item), key=lambda r: r.meta_rank)
        meta = {**low.meta, **{k: v for k, v in high.meta.items() if v is not None}}
        keep = old if old.data is not None or item.data is None else item
        keep.meta, keep.meta_rank = meta, high.meta_rank
        by_key[item.key] = keep
    return [by_key[key] for key in sorted(by_key)]


def trial_identity(data: Dict[str, Any]) -> str:
    """What makes two result files the same trial (a dashboard's or a bucket's copy of a runs folder's):
    where and when it started, its params and seed, and every epoch's score."""
    return json.dumps([data.get("experiment"), data.get("host"), data.get("started_at"), data.get("seed"),
                       data.get("params"), [row.get("dev_score") for row in data.get("epochs") or []]],
                      sort_keys=True, default=str)


def tabulate(items: Iterable[RawResult], notes: Sequence[str] = ()) -> Loaded:
    """Validate and flatten: trials, per-epoch rows and skipped files, all in a stable order."""
    trials, epochs, skipped = [], [], []
    seen: Dict[str, str] = {}
    for item in merge(items):
        reason = item.error or problem(item.data, SAFE_NAME)
        if not reason:
            first = seen.setdefault(trial_identity(item.data), item.source)
            if first != item.source:
                reason = f"a copy of {first} (same trial: host, start time, params and scores); counted once"
        if reason:
            skipped.append({"source": item.source, "reason": reason})
            continue
        row = trial_row(item)
        trials.append(row)
        epochs += epoch_rows(item, row)
    trial_df = pd.DataFrame(trials)
    if not trial_df.empty:
        trial_df = trial_df.sort_values(["experiment", "task", "source"], kind="stable").reset_index(drop=True)
    epoch_df = pd.DataFrame(epochs, columns=[
        "source", "experiment", "task", "status", "setting", "setting_order", "seed", "epoch", "dev_score",
        "train_loss", "seconds"])
    if not epoch_df.empty:
        epoch_df = epoch_df.sort_values(["experiment", "task", "source", "epoch"], kind="stable")
        epoch_df = epoch_df.reset_index(drop=True)
    skipped_df = pd.DataFrame(skipped, columns=["source", "reason"]).sort_values("source", kind="stable")
    return Loaded(trial_df, epoch_df, skipped_df.reset_index(drop=True), list(notes))


def load_all(
    runs: Sequence[os.PathLike] = (),
    *,
    storage: Optional[str] = None,
    study: Optional[str] = None,
    gcs: Sequence[str] = (),
    polyaxon_projects: Sequence[str] = (),
    gcs_client: Any = None,
    polyaxon_client_cls: Any = None,
) -> Loaded:
    """Read every source given and return one set of tables."""
    items, notes = read_local([Path(p) for p in runs])
    if storage:
        items += _reading(f"Optuna storage {storage}", read_optuna, storage, study, gcs_client=gcs_client)
    elif study:
        notes.append(f"--study {study} ignored: no --storage given")
    for url in gcs:
        items += _reading(url, read_gcs, url, client=gcs_client)
    for project in polyaxon_projects:
        items += _reading(f"Polyaxon project {project}", read_polyaxon, project, client_cls=polyaxon_client_cls,
                          notes=notes)
    return tabulate(items, notes)


class SourceError(InputError):
    """A whole source could not be read (no credentials, no such study, server down): says which, in the
    CLI's one-line ``error:`` form (the cause stays chained for a debugger)."""

    def __init__(self, what: str, err: Exception):
        super().__init__(what, f"{type(err).__name__}: {err}")
        self.args = (f"cannot read {what}: {self.problem}",)


def _reading(what: str, func, *args, **kwargs) -> List[RawResult]:
    try:
        return func(*args, **kwargs)
    except Exception as err:  # one clear line naming the source instead of a client library traceback
        raise SourceError(what, err) from err
