"""Docs = code: every `make X`, `lmao X` and relative link the docs mention exists.

Fast (no training, no subprocess but none): it reads the Makefile's rules, the `lmao` typer app and the
markdown files, and fails with the file and the thing that does not exist.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The documents a user reads: the README, docs/, each experiment folder's and tool folder's README, and the
# analysis notes. Generated report tables (analysis/results/, the campaigns' raw results) are left out.
DOC_GLOBS = ["README.md", "docs/*.md", "lmao-imdb-1k/*.md", "ontonotes-ner/*.md", "analysis/*.md",
             "benchmarks/*.md", "terraform-gke/*.md"]


def cli_app():
    """The `lmao` typer app (the one place to change if the CLI entry moves)."""
    from lmao.cli import app

    return app


def doc_files() -> List[Path]:
    files: List[Path] = []
    for pattern in DOC_GLOBS:
        files.extend(sorted(ROOT.glob(pattern)))
    return files


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def code_texts(text: str) -> Iterator[str]:
    """The code in a markdown text: each line of a fenced block, each inline code span."""
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            yield line
        else:
            for match in INLINE_CODE.finditer(line):
                yield match.group(2)


def prose_lines(text: str) -> Iterator[Tuple[int, str]]:
    """(line number, line) outside fenced blocks, with inline code blanked (links inside code are not links)."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)


# --- make targets ---------------------------------------------------------------------------------------

RULE = re.compile(r"^([A-Za-z0-9_.%/$()-][^:=#\t]*?)\s*::?(?!=)(.*)$")


def makefile_targets(makefile: Path = ROOT / "Makefile") -> Set[str]:
    """Every explicit target of the Makefile's rules (and its .PHONY names)."""
    targets: Set[str] = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        if line.startswith(("\t", "#", " ")):
            continue
        match = RULE.match(line)
        if not match:
            continue
        names = match.group(1).split()
        if names == [".PHONY"]:
            targets.update(match.group(2).split())
        else:
            targets.update(n for n in names if "$" not in n and "%" not in n)
    return targets


MAKE_MENTION = re.compile(r"(?<![\w$(/.-])make\s+([a-z][a-z0-9_-]*)(?![\w=-])")


def make_mentions(text: str) -> Set[str]:
    """The targets named as `make X` in a markdown text's code (VAR=value arguments are not targets)."""
    found: Set[str] = set()
    for code in code_texts(text):
        for match in MAKE_MENTION.finditer(code):
            found.add(match.group(1))
    return found


def test_makefile_targets_parse():
    targets = makefile_targets()
    assert {"demo", "test", "test-fast", "report", "recipe-tables", "frontier-report", "sweep"} <= targets


@pytest.mark.parametrize("doc", doc_files(), ids=_rel)
def test_documented_make_targets_exist(doc: Path):
    targets = makefile_targets()
    missing = sorted(make_mentions(doc.read_text(encoding="utf-8")) - targets)
    assert not missing, f"{_rel(doc)} mentions make targets the Makefile lacks: {missing}"


def test_makefile_help_names_real_targets():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    helped = set(re.findall(r'@echo "make ([a-z][a-z0-9-]*)', text))
    helped |= set(re.findall(r'@echo "make [a-z-]+ / ([a-z][a-z0-9-]*)', text))
    missing = sorted(helped - makefile_targets())
    assert helped and not missing, f"make help names targets that do not exist: {missing}"


# --- lmao commands --------------------------------------------------------------------------------------

def cli_tree() -> Dict[str, object]:
    """{command: None | {subcommand: ...}} of the `lmao` app."""
    import typer

    def walk(command):
        commands = getattr(command, "commands", None)  # a click (or typer's) Group
        if isinstance(commands, dict):
            return {name: walk(sub) for name, sub in commands.items()}
        return None

    return walk(typer.main.get_command(cli_app()))


LMAO_MENTION = re.compile(r"(?<![\w/.-])lmao((?:\s+[a-z][a-z0-9_-]*)+)")


def lmao_mentions(text: str) -> Set[Tuple[str, ...]]:
    """Each `lmao word word ...` in a markdown text's code, as its leading lowercase words."""
    found: Set[Tuple[str, ...]] = set()
    for code in code_texts(text):
        for match in LMAO_MENTION.finditer(code):
            found.add(tuple(match.group(1).split()))
    return found


def unknown_command(words: Tuple[str, ...], tree: Dict[str, object]):
    """The first word of `lmao WORDS` that is not a command, or None (words past a leaf are its arguments)."""
    node: object = tree
    for depth, word in enumerate(words):
        if not isinstance(node, dict):
            return None
        if word not in node:
            return " ".join(("lmao",) + words[:depth + 1])
        node = node[word]
    return None


def test_cli_tree_introspects():
    tree = cli_tree()
    assert {"trial", "report", "campaign", "sweep"} <= set(tree)
    assert isinstance(tree["data"], dict) and "imdb" in tree["data"]


@pytest.mark.parametrize("doc", doc_files() + [ROOT / "Makefile"], ids=_rel)
def test_documented_lmao_commands_exist(doc: Path):
    tree = cli_tree()
    text = doc.read_text(encoding="utf-8")
    if doc.name == "Makefile":
        mentions = {tuple(m.group(1).split()) for m in re.finditer(r"\$\(LMAO\)((?:\s+[a-z][a-z0-9_-]*)+)", text)}
    else:
        mentions = lmao_mentions(text)
    bad = sorted({u for u in (unknown_command(m, tree) for m in mentions) if u})
    assert not bad, f"{_rel(doc)} mentions lmao commands that do not exist: {bad}"


# --- links ----------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercased, punctuation removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = text.strip().lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in " -_" or category[0] in "LN" or category == "Mn":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(doc: Path) -> Set[str]:
    """The anchors GitHub gives a markdown file's headings (repeats get -1, -2, ...) and its html ids."""
    seen: Dict[str, int] = {}
    result: Set[str] = set()
    in_fence = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            result.add(slug if count == 0 else f"{slug}-{count}")
        result.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line))
    return result


def relative_links(doc: Path) -> Iterator[Tuple[int, str]]:
    for number, line in prose_lines(doc.read_text(encoding="utf-8")):
        for match in LINK.finditer(line):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:, gs: ...
                continue
            yield number, target


def broken_link(doc: Path, target: str):
    path_part, _, anchor = target.partition("#")
    dest = (doc.parent / path_part).resolve() if path_part else doc
    if not dest.exists():
        return f"{target}: no such file"
    if anchor:
        if dest.is_dir() or dest.suffix.lower() != ".md":
            return None
        if anchor not in anchors(dest):
            return f"{target}: no heading with anchor #{anchor} in {_rel(dest)}"
    return None


QUOTED_AFTER = re.compile(r'^\s*,?\s*\(?\s*((?:"[^"]+"\s*,?\s*)+)')
QUOTED_BEFORE = re.compile(r'"([^"]+)"\s+(?:in|of)\s+$')


def section_names(doc: Path) -> Set[str]:
    """What a doc can be pointed into by name: its headings and its bold leads (`- **Name**: ...`)."""
    text = doc.read_text(encoding="utf-8")
    names = {m.group(2) for m in (HEADING.match(line) for line in text.splitlines()) if m}
    names |= set(re.findall(r"\*\*([^*]+)\*\*", text))
    return {n.replace("`", "").strip().rstrip(":").lower() for n in names}


def named_sections(doc: Path) -> Iterator[Tuple[int, Path, str]]:
    """(line, target file, name) for each section named in quotes beside a link to a markdown file:
    `[file](file.md) ("A", "B")`, `[file](file.md), "A"`, `"A" in [file](file.md)`."""
    for number, line in prose_lines(doc.read_text(encoding="utf-8")):
        for match in LINK.finditer(line):
            target = match.group(1)
            path_part = target.partition("#")[0]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or not path_part.endswith(".md"):
                continue
            dest = (doc.parent / path_part).resolve()
            names: List[str] = []
            after = QUOTED_AFTER.match(line[match.end():])
            if after:
                names += re.findall(r'"([^"]+)"', after.group(1))
            before = QUOTED_BEFORE.search(line[:match.start()])
            if before:
                names.append(before.group(1))
            for name in names:
                yield number, dest, name


def names_section(name: str, sections: Set[str]) -> bool:
    """A quoted name points at a heading or bold point by its whole text or its opening words."""
    name = name.replace("`", "").strip().lower()
    return any(s == name or re.match(re.escape(name) + r"(?![\w-])", s) for s in sections)


@pytest.mark.parametrize("doc", doc_files(), ids=_rel)
def test_named_sections_exist(doc: Path):
    missing = [f"{_rel(doc)}:{number}: \"{name}\" is no heading or bold point of {_rel(dest)}"
               for number, dest, name in named_sections(doc)
               if dest.exists() and not names_section(name, section_names(dest))]
    assert not missing, "\n".join(missing)


def test_github_slugs():
    assert github_slug("Sweeps on Polyaxon: random and Bayesian (TPE)") == "sweeps-on-polyaxon-random-and-bayesian-tpe"
    assert github_slug("GPU pool: several trials per GPU, kernels kept in the bucket") == \
        "gpu-pool-several-trials-per-gpu-kernels-kept-in-the-bucket"
    assert github_slug("`make report` and the `lmao` CLI") == "make-report-and-the-lmao-cli"


@pytest.mark.parametrize("doc", doc_files(), ids=_rel)
def test_relative_links_resolve(doc: Path):
    broken = [f"{_rel(doc)}:{number}: {problem}" for number, target in relative_links(doc)
              if (problem := broken_link(doc, target))]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_checks_catch_what_is_missing(tmp_path: Path):
    """The checks themselves fail on a missing target, command, file and anchor."""
    assert make_mentions("run `make no-such-target` then `make report RUNS=x`") == {"no-such-target", "report"}
    assert "no-such-target" not in makefile_targets()
    tree = cli_tree()
    assert unknown_command(("data", "nosuch"), tree) == "lmao data nosuch"
    assert unknown_command(("trial",), tree) is None
    doc = tmp_path / "a.md"
    doc.write_text("# Title here\n\n[ok](#title-here) [bad](#nope) [gone](missing.md)\n", encoding="utf-8")
    problems = [broken_link(doc, target) for _, target in relative_links(doc)]
    assert problems[0] is None and "nope" in problems[1] and "no such file" in problems[2]
    (tmp_path / "b.md").write_text('"Title" in [a](a.md), and [a](a.md) ("Nowhere", "Title here")\n', encoding="utf-8")
    named = [(name, names_section(name, section_names(dest))) for _, dest, name in named_sections(tmp_path / "b.md")]
    assert sorted(named) == [("Nowhere", False), ("Title", True), ("Title here", True)]
