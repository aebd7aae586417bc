"""Write the report: tables (.md + .csv), plots (.png), the loaded tables, a manifest naming the raw
result files behind every output, and each experiment folder's README section between markers.

Deterministic: inputs are sorted, the bootstrap seed is fixed, nothing time-dependent is written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pandas as pd

from experiments.storage.fileio import write_text

from .load import Loaded
from .stats import TOP_K

# The checkout this package runs from (editable install, the project's way); else the working directory.
_HERE = Path(__file__).resolve().parents[1]
REPO_ROOT = _HERE if (_HERE / "pyproject.toml").is_file() else Path.cwd()
MANIFEST = "manifest.json"


@dataclass
class ReportResult:
    """What a report run wrote and said."""

    messages: List[str] = field(default_factory=list)
    outputs: List[Path] = field(default_factory=list)
    readmes: List[Path] = field(default_factory=list)
    empty: bool = False
    error: Optional[str] = None  # why nothing was reported (one line); set when ``empty``


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    write_text(path, df.to_csv(index=False, lineterminator="\n"))
    return path


def relpath(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def markers(block: str = "report") -> Tuple[str, str]:
    """The start/end comments around a generated block of a README (``report``, or e.g. ``levers``)."""
    return f"<!-- {block}:start -->", f"<!-- {block}:end -->"


START, END = markers("report")


def replace_section(text: str, content: str, block: str = "report") -> Optional[str]:
    """``text`` with the part between the block's markers replaced; for the report block, markers appended
    (under a Results heading) when absent; None when the markers are malformed (one missing, or in the
    wrong order) or, for another block, absent."""
    start, end = markers(block)
    section = f"{start}\n{content.rstrip()}\n{end}"
    has_start, has_end = start in text, end in text
    if not has_start and not has_end and block == "report":
        return text.rstrip("\n") + f"\n\n## Results\n\n{section}\n"
    if not has_start or not has_end or text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        return None
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + section + tail


def update_readme(readme: Path, content: str, block: str = "report") -> str:
    """Put ``content`` between the block's markers in ``readme``; touches nothing outside them."""
    if not readme.is_file():
        return f"skipped {readme}: " + ("no README.md in the experiment folder" if block == "report" else "no such file")
    old = readme.read_text(encoding="utf-8")
    new = replace_section(old, content, block)
    if new is None:
        start, end = markers(block)
        return f"skipped {readme}: missing or malformed {start} / {end} markers (left untouched)"
    if new != old:
        write_text(readme, new)
        return f"updated {readme}"
    return f"unchanged {readme}"


def _remove_stale(out: Path, keep: List[Path]) -> None:
    """Delete outputs a previous run listed in its manifest and this run no longer makes."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8")).get("outputs", [])
    except (OSError, ValueError, AttributeError):
        return
    keep_names = {p.name for p in keep}
    for name in previous:
        path = out / Path(str(name)).name
        if path.name not in keep_names and path.suffix in (".md", ".csv", ".png") and path.is_file():
            path.unlink()


def _trials_csv(trials: pd.DataFrame) -> pd.DataFrame:
    df = trials.drop(columns=["setting_order"], errors="ignore")
    first = [c for c in ("source", "experiment", "task", "status", "setting", "objective", "amount",
                         "amount_unit", "seed", "best_dev_score", "best_epoch") if c in df]
    return df[first + sorted(c for c in df.columns if c not in first)]


def build_report(
    loaded: Loaded,
    out: Path,
    *,
    readme_root: Optional[Path] = REPO_ROOT,
    top_k: int = TOP_K,
    inputs: Optional[List[str]] = None,
    plots: bool = True,
) -> ReportResult:
    """Write every table, plot and README section for the loaded runs (see module doc)."""
    from .plots import plot_group
    from .tables import HEADLINE_BLOCK, build_tables, campaign_settings, headline

    result = ReportResult(messages=list(loaded.notes))
    skipped_lines = [f"- `{r.source}`: {r.reason}" for r in loaded.skipped.itertuples()]
    if skipped_lines:
        result.messages.append(f"skipped {len(skipped_lines)} result file(s):")
        result.messages += [f"  {line[2:]}" for line in skipped_lines]
    if loaded.empty:
        where = ", ".join(inputs or []) or "the given sources"
        first = next(loaded.skipped.itertuples(), None)  # error: FILE: problem, for the first unusable file
        result.error = (f"{first.source}: {first.reason} (no usable trial results in {where}: nothing to report, "
                        "no files written)" if first is not None else
                        f"{where}: no trial results found: nothing to report (no files written)")
        result.empty = True
        return result

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    all_trials, all_epochs = campaign_settings(loaded.trials, loaded.epochs)  # campaign rows by setting name
    tables = build_tables(all_trials, all_epochs, top_k)
    manifest: Dict[str, object] = {"inputs": sorted(inputs or []), "tables": {}, "plots": {}, "skipped": [
        {"source": r.source, "reason": r.reason} for r in loaded.skipped.itertuples()]}
    report_parts = ["# LMAO experiments: report", "",
                    "Generated by `make report` (`lmao report`) from raw trial result files; every number "
                    f"traces back to the files listed in `{MANIFEST}`.", ""]
    written: List[Path] = []
    for table in tables:
        trials, epochs = table.rows(all_trials), table.rows(all_epochs)
        made = plot_group(trials, epochs, table.name, out) if plots else {}
        files = [write_text_path(out / f"{table.name}.md", table.markdown), write_csv(table.csv, out / f"{table.name}.csv")]
        files += [write_csv(df, out / f"{table.name}-{suffix}.csv") for suffix, df in sorted(table.extra_csv.items())]
        written += files + list(made.values())
        used = {"sources": table.sources, "pruned_not_in_stats": table.pruned_sources}
        for path in files:
            manifest["tables"][path.name] = used  # type: ignore[index]
        for path in made.values():
            manifest["plots"][path.name] = sorted(trials["source"].astype(str))  # type: ignore[index]
        report_parts += [table.markdown, _plot_links(made, out, out), ""]
        if readme_root is not None:
            readme = Path(readme_root) / table.experiment / "README.md"
            section = _readme_section(table.markdown, made, out, readme.parent, len(table.sources))
            message = update_readme(readme, section, block=table.block)
            result.messages.append(message)
            if message.startswith(("updated", "unchanged")):
                result.readmes.append(readme)
    if readme_root is not None:  # the top README's headline, where it has the block's markers
        message = update_readme(Path(readme_root) / "README.md", headline(all_trials, tables), block=HEADLINE_BLOCK)
        result.messages.append(message)
        if message.startswith(("updated", "unchanged")):
            result.readmes.append(Path(readme_root) / "README.md")
    if skipped_lines:
        report_parts += ["## Skipped result files", ""] + skipped_lines + [""]
    written.append(write_text_path(out / "report.md", "\n".join(report_parts).rstrip() + "\n"))
    written.append(write_csv(_trials_csv(all_trials), out / "trials.csv"))
    written.append(write_csv(all_epochs.drop(columns=["setting_order"]), out / "epochs.csv"))
    written.append(write_csv(loaded.skipped, out / "skipped.csv"))
    manifest["tables"]["trials.csv"] = sorted(loaded.trials["source"].astype(str))  # type: ignore[index]
    manifest["outputs"] = sorted(p.name for p in written) + [MANIFEST]
    _remove_stale(out, written)
    written.append(write_text_path(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n"))
    result.outputs = written
    n_done = int((loaded.trials["status"] == "completed").sum())
    result.messages.append(
        f"report: {len(loaded.trials)} trials ({n_done} completed), {len(loaded.skipped)} skipped, "
        f"{len(tables)} table(s) -> {out}")
    return result


def write_text_path(path: Path, text: str) -> Path:
    write_text(path, text)
    return path


def _plot_links(plots: Dict[str, Path], out: Path, base: Path) -> str:
    return "\n".join(f"![{kind}]({relpath(path, base)})" for kind, path in sorted(plots.items()))


def _readme_section(markdown: str, plots: Dict[str, Path], out: Path, readme_dir: Path, n: int) -> str:
    """The README block: a note on provenance, the table, the plots."""
    head = ("_Generated by `make report` from raw trial results "
            f"(`{relpath(out / MANIFEST, readme_dir)}` lists the {n} completed trials behind it); "
            "edits between the markers are overwritten._")
    return "\n".join([head, "", markdown.rstrip(), "", _plot_links(plots, out, readme_dir)])
