"""spaCy's own ``spacy train`` on its stock textcat config, on a prepared corpus: the check that the
frontier's ``stock-bow`` anchor (the same model trained by ``lmao trial``) is what a spaCy user gets.

For each seed: ``spacy init config -p textcat -o efficiency`` (the quickstart's CPU config, exactly as a
user writes it), ``spacy train`` on the corpus' train and dev DocBins with ``--system.seed``, then
``model-best`` scored on the dev DocBin with the trials' own scorer (accuracy, and spaCy's cats_score).
Each seed writes ``OUT/seed-N/results.json`` (written whole, then renamed): the config's text and hash,
spaCy's version, the steps and epochs spaCy trained, each of its dev evaluations (epoch, step, score: where
its best checkpoint came from), the wall time, the scores. The test split is never
read.

    python -m analysis.stock_check corpus/imdb-1k analysis/imdb-1k-stock/spacy-train-efficiency --seed 0
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import typer

from experiments.common.cli_base import new_app
from experiments.common.errors import InputError
from experiments.data.docbins import require_prepared_corpus
from experiments.storage.fileio import write_json


def stock_config(optimize: str) -> str:
    """The config ``spacy init config -p textcat -o OPTIMIZE`` writes (CPU, English, no vectors package)."""
    from spacy.cli.init_config import init_config

    config = init_config(lang="en", pipeline=["textcat"], optimize=optimize, gpu=False)
    return config.to_str()


def train_evaluations(log: str) -> List[Dict[str, Any]]:
    """Every row of ``spacy train``'s console table (``E  #  LOSS ...  SCORE``): the 0-based epoch, the step
    and spaCy's weighted dev score (0-1) of each evaluation, in order."""
    rows = []
    for line in log.splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[0].isdigit() and fields[1].isdigit():
            rows.append({"epoch": int(fields[0]), "step": int(fields[1]), "score": float(fields[-1])})
    return rows


def last_step(evaluations: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    """The epoch and step of the last evaluation (what spacy train trained)."""
    return {"epochs": evaluations[-1]["epoch"], "steps": evaluations[-1]["step"]} if evaluations else {}


def train_steps(log: str) -> Dict[str, int]:
    """The last epoch and step of ``spacy train``'s console table."""
    return last_step(train_evaluations(log))


def check_seed(corpus_dir: Path, out_dir: Path, seed: int, optimize: str = "efficiency",
               overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """Train the stock config with ``seed`` and score its best model on dev; write ``out_dir/results.json``.
    ``overrides``: extra ``--section.key value`` arguments for ``spacy train`` (recorded; the tests use
    them to train a few hundred steps)."""
    import spacy

    from experiments.training.finetune import evaluate_saved

    require_prepared_corpus(corpus_dir, "run `lmao data imdb` first")
    text = stock_config(optimize)
    with tempfile.TemporaryDirectory(prefix="stock-check-") as tmp:
        config_path = Path(tmp) / "config.cfg"
        config_path.write_text(text, encoding="utf-8")
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "spacy", "train", str(config_path), "--output", str(Path(tmp) / "model"),
             "--paths.train", str(corpus_dir / "train.spacy"), "--paths.dev", str(corpus_dir / "dev.spacy"),
             "--system.seed", str(seed), *overrides], capture_output=True, text=True)
        wall = time.perf_counter() - started
        if run.returncode != 0:
            raise RuntimeError(f"spacy train failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        model_best = Path(tmp) / "model" / "model-best"
        dev = evaluate_saved(model_best, corpus_dir / "dev.spacy", "textcat", batch_size=128, processes=1)
        meta = json.loads((model_best / "meta.json").read_text(encoding="utf-8"))
        size = sum(p.stat().st_size for p in model_best.rglob("*") if p.is_file())
    evaluations = train_evaluations(run.stdout)
    results = {
        "what": f"spacy train on `spacy init config -p textcat -o {optimize}`",
        "spacy_version": spacy.__version__, "seed": seed, "corpus_dir": str(corpus_dir),
        "config_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "config": text,
        "overrides": list(overrides),
        **last_step(evaluations), "evaluations": evaluations, "wall_seconds": round(wall, 1), "model_size_bytes": size,
        "dev_accuracy": dev.score, "dev_cats_score": float(dev.scores.get("cats_score") or 0.0),
        "spacy_best_cats_score": meta.get("performance", {}).get("cats_score"),
    }
    write_json(out_dir / "results.json", results)
    return results


def at_step_overrides(step: int) -> List[str]:
    """``spacy train`` stopped right after its evaluation at 0-based step ``step``, that is after ``step + 1``
    updates (spaCy evaluates when ``step % eval_frequency == 0``, then stops once ``step >= max_steps``);
    patience off, so it cannot stop sooner."""
    return ["--training.eval_frequency", str(step), "--training.max_steps", str(step), "--training.patience", "0"]


def check_at_trial_epochs(corpus_dir: Path, out: Path, trial_results: Path,
                          optimize: str = "efficiency") -> List[Dict[str, Any]]:
    """Score ``spacy train`` on the stock config where each epoch of a trial of the same model and seed
    ended (its ``results.json`` records each epoch's cumulative updates as ``steps``): one run per epoch,
    ``out/seed-N/step-S/results.json``. Where the trial made the same updates, the two scores are equal;
    a trial picks its best from these points, ``spacy train`` from one every ``eval_frequency`` steps."""
    from experiments.training.results import read

    trial = read(trial_results)
    if trial is None:
        raise InputError(trial_results, "no trial result file here (results.json, or its folder)")
    epochs = [e for e in trial.get("epochs", []) if e.get("steps")]
    if not epochs:
        raise InputError(trial_results, "no epoch records its `steps` (written by trials since the step count "
                                        "was added): run the trial again")
    rows = []
    for e in epochs:
        step = int(e["steps"]) - 1
        target = out / f"seed-{trial['seed']}" / f"step-{step}"
        done = target / "results.json"
        found = json.loads(done.read_text(encoding="utf-8")) if done.is_file() else \
            check_seed(corpus_dir, target, int(trial["seed"]), optimize, at_step_overrides(step))
        rows.append({"epoch": e["epoch"], "updates": step + 1, "trial_dev_accuracy": e["dev_score"],
                     "spacy_train_dev_accuracy": found["dev_accuracy"]})
    return rows


def run_setting_trial(design_path: Path, setting: str, seed: int, corpus_dir: Path, out: Path, epochs: int) -> Path:
    """Train one setting of a campaign design as the campaign would (its params, overrides and the
    campaign's trial command), but for ``epochs`` epochs, on ``corpus_dir``, into ``out``."""
    from experiments.sweeps.campaign import PlannedTrial, Setting, load_design, trial_command

    design = load_design(design_path)
    found = [s for s in design.settings if s.name == setting]
    if not found:
        names = ", ".join(s.name for s in design.settings)
        raise InputError(design_path, f"no setting {setting!r} (settings: {names})")
    shortened = Setting(setting, {**found[0].params, "max_epochs": epochs, "corpus_dir": str(corpus_dir)},
                        found[0].overrides)
    subprocess.run(trial_command(design, PlannedTrial(shortened, seed, out), cache=None, extra=()), check=True)
    return out / "results.json"


app = new_app(help="spacy train on spaCy's stock textcat config, scored like the trials.")


@app.command()
def main(
    corpus: Path = typer.Argument(..., help="prepared textcat corpus (train.spacy, dev.spacy)"),
    out: Path = typer.Argument(..., help="folder for seed-N/results.json"),
    seed: List[int] = typer.Option([0, 1, 2], "--seed", help="seeds (repeatable)"),
    optimize: str = typer.Option("efficiency", help="the quickstart's -o: efficiency (BOW) or accuracy"),
    align_with: Optional[str] = typer.Option(
        None, "--align-with", help="instead: DESIGN.yml:SETTING, a campaign setting that trains the stock model: "
        "train it for --epochs epochs per seed (OUT/seed-N/trial), then stop spacy train where each of its epochs "
        "ended (OUT/seed-N/step-S) and score it there, beside the trial's score"),
    epochs: int = typer.Option(2, "--epochs", help="with --align-with: the trial's epochs"),
) -> None:
    if align_with is not None:
        design, _, setting = align_with.rpartition(":")
        if not design:
            raise InputError("--align-with", f"expected DESIGN.yml:SETTING, got {align_with!r}")
        for s in seed:
            trial = run_setting_trial(Path(design), setting, s, corpus, out / f"seed-{s}" / "trial", epochs)
            for row in check_at_trial_epochs(corpus, out, trial, optimize):
                same = "equal" if row["trial_dev_accuracy"] == row["spacy_train_dev_accuracy"] else "DIFFERENT"
                typer.echo(f"seed {s}, epoch {row['epoch']} ({row['updates']} updates): trial "
                           f"{row['trial_dev_accuracy']:.4f}, spacy train {row['spacy_train_dev_accuracy']:.4f}: {same}")
        return
    for s in seed:
        target = out / f"seed-{s}"
        if (target / "results.json").is_file():
            typer.echo(f"{target}: done, skipped")
            continue
        found = check_seed(corpus, target, s, optimize)
        typer.echo(f"{target}: dev accuracy {found['dev_accuracy']:.4f}, {found.get('steps')} steps, "
                   f"{found['wall_seconds']:.0f} s")


if __name__ == "__main__":
    app()
