"""Static checks of terraform-gke/ that run without a cloud: ``make check-infra`` and tests/test_infra.py.

1. every ``.tf`` file parses (python-hcl2);
2. every ``var.X`` used is declared in variables.tf, and every declared variable is used;
3. every ``local.X`` used is defined in a ``locals`` block, and every local is used;
4. every ``templatefile()`` call passes exactly the placeholders its template uses;
5. ``terraform fmt -check`` (only where a terraform binary is installed: it needs no providers);
6. checkov passes on terraform-gke/ and on the Dockerfile, and every ``#checkov:skip=ID:reason``
   carries a real reason;
7. every attribute and block of every ``google_*`` resource exists in the google provider's schema
   (the part of ``terraform validate`` that needs no registry: the schema comes from the CDKTF
   bindings on PyPI, ``cdktf-cdktf-provider-google``, generated from that provider release);
8. the names the Polyaxon chart derives from the Helm release name (service accounts, gateway service)
   are the ones main.tf binds and annotates, outputs.tf and the values template print, and the READMEs
   tell users to type; the Helm release pins the chart version these rules were read for.

checkov pins many dependencies, so it lives in its own virtualenv (``.venv-checkov/``), created on
first use (``CHECKOV`` overrides the binary). Each check returns a list of problems, each naming the
file and line; the command exits 1 if there are any.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
TF_DIR = REPO / "terraform-gke"
DOCKERFILE = REPO / "Dockerfile"
CHECKOV_VENV = REPO / ".venv-checkov"
CHECKOV_VERSION = "3.3.30"
# CDKTF bindings 16.12.1 = hashicorp/google 6.50.0 (versions.tf allows >= 5, < 7).
SCHEMA_PACKAGE, SCHEMA_VERSION, PROVIDER_VERSION = "cdktf-cdktf-provider-google", "16.12.1", "6.50.0"
SCHEMA_CACHE = REPO / ".venv-tfschema" / f"google-{PROVIDER_VERSION}.jsii.json"  # gitignored (.venv-*/)
META_ARGUMENTS = {"count", "for_each", "depends_on", "lifecycle", "provider", "connection", "provisioner"}
VAR_REF = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
LOCAL_REF = re.compile(r"\blocal\.([A-Za-z_][A-Za-z0-9_-]*)")
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
TEMPLATEFILE = re.compile(r'templatefile\(\s*"\$\{path\.module\}/([^"]+)"\s*,\s*\{(.*?)\}\s*\)', re.S)
MIN_REASON_CHARS = 20

# Polyaxon chart naming, read from the chart's templates (github.com/polyaxon/charts, polyaxon/templates/):
# _helpers.tpl `polyaxon.fullname` = printf "%s-%s" .Release.Name "polyaxon" | trunc 63 | trimSuffix "-";
# runs-sa.yaml / runs-sa-cluster.yaml: {{fullname}}-runs-sa; agent-sa.yaml / agent-sa-cluster.yaml:
# {{fullname}}-agent-sa (both annotated with agent.serviceAccountAnnotations); gateway-svc.yaml:
# {{fullname}}-gateway. Identical in every tag from v2.0.0 to v2.15.1, the newest chart source that can be
# read offline; the Helm release pins CHART_VERSION (= the polyaxon client and haupt pinned in
# pyproject.toml / the Makefile), whose templates are assumed to keep these rules.
CHART_VERSION = "2.18.0"
CHART_SOURCE = "polyaxon/charts polyaxon/templates (v2.0.0 .. v2.15.1)"
CHART_NAME_RULES = {
    "polyaxon_fullname": "{fullname}",  # printf "%s-%s" .Release.Name "polyaxon" | trunc 63 | trimSuffix "-"
    "polyaxon_runs_ksa": "{fullname}-runs-sa",
    "polyaxon_agent_ksa": "{fullname}-agent-sa",
    "polyaxon_gateway_svc": "{fullname}-gateway",
}
DOCS = (REPO / "README.md", TF_DIR / "README.md")
SA_NAME = re.compile(r"(?<![\w>}$-])([a-z0-9][a-z0-9-]*-(?:runs|agent)-sa)\b")
SVC_NAME = re.compile(r"\bsvc/([A-Za-z0-9_.${}-]+)")


def _line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` (0 if absent)."""
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else 0


def tf_files(tf_dir: Path = TF_DIR) -> List[Path]:
    return sorted(tf_dir.glob("*.tf"))


def parse_all(tf_dir: Path = TF_DIR) -> Tuple[Dict[Path, Any], List[str]]:
    """Parse every .tf file; problems are ``file:line: message``."""
    import hcl2

    parsed, problems = {}, []
    for path in tf_files(tf_dir):
        try:
            with path.open(encoding="utf-8") as f:
                parsed[path] = hcl2.load(f)
        except Exception as err:  # lark raises several error types, all with line info in str()
            line = getattr(err, "line", "?")
            problems.append(f"{path}:{line}: HCL does not parse: {str(err).splitlines()[0]}")
    if not parsed and not problems:
        problems.append(f"{tf_dir}: no .tf files")
    return parsed, problems


def _strings(node: Any) -> Iterator[str]:
    """Every string in a parsed HCL tree (expressions included), skipping comments."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not str(key).startswith("__"):  # python-hcl2 bookkeeping: __comments__, __is_block__
                yield str(key)
                yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _block_names(parsed: Dict[Path, Any], block: str) -> Dict[str, Path]:
    names: Dict[str, Path] = {}
    for path, tree in parsed.items():
        for entry in tree.get(block, []):
            for name in entry:
                if not name.startswith("__"):
                    names[name.strip('"')] = path
    return names


def _references(parsed: Dict[Path, Any], pattern: re.Pattern) -> Dict[str, Path]:
    refs: Dict[str, Path] = {}
    for path, tree in parsed.items():
        for text in _strings(tree):
            for name in pattern.findall(text):
                refs.setdefault(name, path)
    return refs


def check_variables(parsed: Dict[Path, Any]) -> List[str]:
    declared = _block_names(parsed, "variable")
    used = _references(parsed, VAR_REF)
    problems = []
    for name, path in sorted(used.items()):
        if name not in declared:
            line = _line_of(path.read_text(), f"var.{name}")
            problems.append(f"{path}:{line}: var.{name} is used but not declared in variables.tf")
    for name, path in sorted(declared.items()):
        if name not in used:
            line = _line_of(path.read_text(), f'variable "{name}"')
            problems.append(f"{path}:{line}: variable {name!r} is declared but never used")
    return problems


def check_locals(parsed: Dict[Path, Any]) -> List[str]:
    defined: Dict[str, Path] = {}
    for path, tree in parsed.items():
        for block in tree.get("locals", []):
            for name in block:
                if not name.startswith("__"):
                    defined[name] = path
    used = _references(parsed, LOCAL_REF)
    problems = []
    for name, path in sorted(used.items()):
        if name not in defined:
            line = _line_of(path.read_text(), f"local.{name}")
            problems.append(f"{path}:{line}: local.{name} is used but defined in no locals block")
    for name, path in sorted(defined.items()):
        if name not in used:
            line = _line_of(path.read_text(), f"{name} ")
            problems.append(f"{path}:{line}: local {name!r} is defined but never used")
    return problems


def template_placeholders(text: str) -> Set[str]:
    """Names a Terraform template reads: ``${name...}`` and ``%{ if/for ... name }``."""
    names = set(re.findall(r"(?<!\$)\$\{\s*([A-Za-z_]\w*)", text))
    for directive in re.findall(r"%\{~?\s*(?:if|for)\s+([^}]*)\}", text):
        names.update(w for w in re.findall(r"[A-Za-z_]\w*", directive) if w not in {"in", "if", "for"})
    return names


def check_templates(tf_dir: Path = TF_DIR) -> List[str]:
    problems = []
    for path in tf_files(tf_dir):
        text = path.read_text(encoding="utf-8")
        for match in TEMPLATEFILE.finditer(text):
            template = tf_dir / match.group(1)
            line = text.count("\n", 0, match.start()) + 1
            if not template.is_file():
                problems.append(f"{path}:{line}: templatefile() reads {template.name}, which is missing")
                continue
            passed = set(re.findall(r"^\s*([A-Za-z_]\w*)\s*=", match.group(2), re.M))
            wanted = template_placeholders(template.read_text(encoding="utf-8"))
            for name in sorted(wanted - passed):
                problems.append(f"{template}: placeholder {name!r} is not passed by {path.name}:{line}")
            for name in sorted(passed - wanted):
                problems.append(f"{path}:{line}: {name!r} is passed to {template.name} but not used there")
    return problems


def check_fmt(tf_dir: Path = TF_DIR) -> List[str]:
    """``terraform fmt -check``; returns ["SKIP ..."] when no terraform binary is installed."""
    terraform = shutil.which("terraform")
    if not terraform:
        return ["SKIP terraform is not installed (fmt check only)"]
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-list=true", "-recursive", str(tf_dir)],
        capture_output=True, text=True, env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull},
    )
    if proc.returncode == 0:
        return []
    files = proc.stdout.split() or [proc.stderr.strip()]
    return [f"{name}: not in `terraform fmt` style (run: terraform fmt {tf_dir})" for name in files]


def check_skip_reasons(tf_dir: Path = TF_DIR) -> List[str]:
    problems = []
    for path in tf_files(tf_dir):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = SKIP.search(line)
            if match and len((match.group(2) or "").strip()) < MIN_REASON_CHARS:
                problems.append(f"{path}:{number}: checkov skip {match.group(1)} has no real reason")
    return problems


def checkov_binary() -> Path:
    """The checkov executable, installing it into .venv-checkov/ on first use (under a file lock)."""
    if os.environ.get("CHECKOV"):
        return Path(os.environ["CHECKOV"])
    binary = CHECKOV_VENV / "bin" / "checkov"
    if binary.exists():
        return binary
    import hashlib
    import tempfile

    from filelock import FileLock

    tag = hashlib.sha256(str(CHECKOV_VENV).encode()).hexdigest()[:12]
    with FileLock(str(Path(tempfile.gettempdir()) / f"venv-checkov-{tag}.lock")):
        if not binary.exists():
            _install_checkov()
    return binary


def _install_checkov() -> None:
    """Fresh venv with checkov: through uv when it installs (about 15 s instead of 1-2 min), else pip."""
    venv.create(CHECKOV_VENV, with_pip=True, clear=True)
    python = str(CHECKOV_VENV / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    requirement = f"checkov=={CHECKOV_VERSION}"
    if subprocess.run([*pip, "uv"], capture_output=True).returncode == 0:
        uv = [str(CHECKOV_VENV / "bin" / "uv"), "pip", "install", "--quiet", "--python", python]
        if subprocess.run([*uv, requirement]).returncode == 0:
            return
    subprocess.run([*pip, requirement], check=True)


def run_checkov(target: Path = TF_DIR, framework: str = "terraform") -> Tuple[Dict[str, int], List[str]]:
    """Run checkov offline on a folder or file; returns its summary counts and the failed checks."""
    where_flag = "-d" if target.is_dir() else "-f"
    cmd = [str(checkov_binary()), where_flag, str(target), "--framework", framework, "--skip-download",
           "--quiet", "--output", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "LOG_LEVEL": "ERROR"})
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {}, [f"checkov did not run ({' '.join(cmd)}): {proc.stderr.strip()[-2000:]}"]
    reports = report if isinstance(report, list) else [report]
    summary: Dict[str, int] = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    for rep in reports:
        for key in summary:
            summary[key] += int(rep.get("summary", {}).get(key, 0))
        for check in rep.get("results", {}).get("failed_checks", []):
            base = target if target.is_dir() else target.parent
            where = f"{base}/{check['file_path'].lstrip('/')}:{check['file_line_range'][0]}"
            failures.append(f"{where}: {check['check_id']} {check['check_name']} ({check['resource']})")
    return summary, failures


# --------------------------------------------------------------------------------------------------
# Provider schema (attribute names), from the CDKTF bindings' jsii assembly
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def provider_schema() -> Dict[str, Any]:
    """The jsii type table of the google provider bindings (downloaded once, cached in .venv-tfschema/)."""
    import tarfile
    import tempfile
    import zipfile

    if not SCHEMA_CACHE.exists():
        SCHEMA_CACHE.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp,
                            f"{SCHEMA_PACKAGE}=={SCHEMA_VERSION}"], check=True)
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                member = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
                with zf.open(member) as tgz, tarfile.open(fileobj=tgz, mode="r:gz") as tar:
                    data = tar.extractfile("package/.jsii").read()  # type: ignore[union-attr]
            partial = SCHEMA_CACHE.with_suffix(".tmp")
            partial.write_bytes(data)
            partial.replace(SCHEMA_CACHE)
    return json.loads(SCHEMA_CACHE.read_text(encoding="utf-8"))["types"]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _struct_of(type_ref: Dict[str, Any]) -> str:
    """The provider struct a property holds (through lists and IResolvable unions), or ''."""
    if "fqn" in type_ref:
        return type_ref["fqn"] if type_ref["fqn"].startswith("@cdktf/provider-google.") else ""
    if "collection" in type_ref:
        return _struct_of(type_ref["collection"]["elementtype"])
    for option in type_ref.get("union", {}).get("types", []):
        if _struct_of(option):
            return _struct_of(option)
    return ""


def _properties(types: Dict[str, Any], fqn: str) -> Dict[str, Any]:
    spec = types.get(fqn, {})
    props = {p["name"]: p["type"] for p in spec.get("properties", [])}
    for base in spec.get("interfaces", []):
        for name, value in _properties(types, base).items():
            props.setdefault(name, value)
    return props


def _check_block(types: Dict[str, Any], body: Dict[str, Any], fqn: str, where: str) -> List[str]:
    props = _properties(types, fqn)
    if not props:
        return [f"{where}: not in the google provider {PROVIDER_VERSION} schema"]
    problems = []
    for key, value in body.items():
        if key.startswith("__") or key in META_ARGUMENTS:
            continue
        if key == "dynamic":
            for dynamic in value if isinstance(value, list) else [value]:
                for name, spec in dynamic.items():
                    name = name.strip('"')
                    if name.startswith("__"):
                        continue
                    if _camel(name) not in props:
                        problems.append(f"{where}: unknown block {name!r} (dynamic)")
                        continue
                    content = spec.get("content", [{}])
                    content = content[0] if isinstance(content, list) else content
                    struct = _struct_of(props[_camel(name)])
                    problems += _check_block(types, content, struct, f"{where}.{name}")
            continue
        if _camel(key) not in props:
            problems.append(f"{where}: unknown argument or block {key!r}")
            continue
        struct = _struct_of(props[_camel(key)])
        if struct and isinstance(value, (list, dict)):
            for block in value if isinstance(value, list) else [value]:
                if isinstance(block, dict):
                    problems += _check_block(types, block, struct, f"{where}.{key}")
    return problems


def check_provider_schema(parsed: Dict[Path, Any]) -> List[str]:
    """Every argument/block of every google_* resource exists in the provider schema."""
    types = provider_schema()
    problems = []
    for path, tree in parsed.items():
        text = path.read_text(encoding="utf-8")
        for entry in tree.get("resource", []):
            for rtype, instances in entry.items():
                rtype = rtype.strip('"')
                if not rtype.startswith("google_"):
                    continue
                short = rtype[len("google_"):]
                fqn = f"@cdktf/provider-google.{_camel(short)}.{_camel(short)[:1].upper()}{_camel(short)[1:]}Config"
                for name, body in instances.items():
                    if name.startswith("__"):
                        continue
                    name = name.strip('"')
                    line = _line_of(text, f'resource "{rtype}" "{name}"')
                    problems += [f"{path}:{line}: {p}" for p in
                                 _check_block(types, body, fqn, f"{rtype}.{name}")]
    return problems


def chart_names(release: str) -> Dict[str, str]:
    """What the chart (CHART_VERSION) calls its objects for a Helm release named ``release``."""
    fullname = f"{release}-polyaxon"[:63].rstrip("-")
    return {key: rule.format(release=release, fullname=fullname) for key, rule in CHART_NAME_RULES.items()}


def _string_locals(parsed: Dict[Path, Any]) -> Dict[str, str]:
    """The string locals, with ``${local.x}`` interpolations of other string locals resolved."""
    raw: Dict[str, str] = {}
    for tree in parsed.values():
        for block in tree.get("locals", []):
            raw.update({k: v for k, v in block.items() if isinstance(v, str) and not k.startswith("__")})
    raw = {k: v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v for k, v in raw.items()}
    resolved: Dict[str, str] = {}
    for _ in range(len(raw) + 1):
        for key, value in raw.items():
            resolved[key] = re.sub(r"\$\{local\.(\w+)\}", lambda m: resolved.get(m.group(1), m.group(0)), value)
    return resolved


def check_chart_names(parsed: Dict[Path, Any], tf_dir: Path = TF_DIR, docs=DOCS) -> List[str]:
    problems: List[str] = []
    main_tf = tf_dir / "main.tf"
    main_text = main_tf.read_text(encoding="utf-8")
    variables = tf_dir / "variables.tf"
    var_text = variables.read_text(encoding="utf-8")
    match = re.search(r'variable "polyaxon_chart_version" \{[^}]*default\s*=\s*"([^"]+)"', var_text, re.S)
    if not match or match.group(1) != CHART_VERSION:
        problems.append(f"{variables}:{_line_of(var_text, 'polyaxon_chart_version')}: polyaxon_chart_version must "
                        f"default to {CHART_VERSION}, the chart version whose names this check assumes "
                        f"({CHART_SOURCE}), got {match.group(1) if match else None!r}")
    release_block = re.search(r'resource "helm_release" "polyaxon" \{(.*?)\n\}', main_text, re.S)
    body = release_block.group(1) if release_block else ""
    for needle in ('name             = local.polyaxon_release', 'chart            = "polyaxon"',
                   'version          = var.polyaxon_chart_version'):
        if " ".join(needle.split()) not in " ".join(body.split()):
            problems.append(f"{main_tf}:{_line_of(main_text, 'helm_release')}: helm_release.polyaxon must set "
                            f"{' '.join(needle.split())}")
    values = _string_locals(parsed)
    release = values.get("polyaxon_release")
    if not release:
        return problems + [f"{main_tf}: local polyaxon_release (the Helm release name) is not a plain string"]
    expected = chart_names(release)
    for key, name in expected.items():
        if values.get(key) != name:
            problems.append(f"{main_tf}:{_line_of(main_text, key + ' ')}: local.{key} is {values.get(key)!r}, "
                            f"but chart {CHART_VERSION} names it {name!r} for release {release!r}")
    ksas = {expected["polyaxon_runs_ksa"], expected["polyaxon_agent_ksa"]}
    gateway = expected["polyaxon_gateway_svc"]
    # Workload Identity: both chart KSAs bound, by the locals (no hand-typed names).
    for key in ("polyaxon_runs_ksa", "polyaxon_agent_ksa"):
        if not re.search(rf"toset\(\[[^\]]*local\.{key}\b", main_text):
            problems.append(f"{main_tf}: no Workload Identity binding for local.{key} ({expected[key]})")
    files = [*tf_files(tf_dir), *sorted(tf_dir.glob("*.tftpl")), *docs]
    allowed_svc = {gateway, "${local.polyaxon_gateway_svc}", "${gateway_service}"}
    for path in files:
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in SA_NAME.findall(line):
                if name not in ksas:
                    problems.append(f"{path}:{number}: service account {name!r} does not exist: chart "
                                    f"{CHART_VERSION} creates {sorted(ksas)} for release {release!r}")
            for name in SVC_NAME.findall(line):
                if name not in allowed_svc:
                    problems.append(f"{path}:{number}: service {name!r} does not exist: the chart's gateway "
                                    f"service is {gateway!r} (chart {CHART_VERSION}, release {release!r})")
    return problems


def main() -> int:
    parsed, problems = parse_all()
    if not problems:
        problems += check_variables(parsed) + check_locals(parsed) + check_provider_schema(parsed)
    problems += check_templates() + check_skip_reasons()
    if parsed:
        problems += check_chart_names(parsed)
    fmt = check_fmt()
    skipped = [p for p in fmt if p.startswith("SKIP ")]
    problems += [p for p in fmt if not p.startswith("SKIP ")]
    summary, failures = run_checkov()
    docker_summary, docker_failures = run_checkov(DOCKERFILE, "dockerfile")
    problems += failures + docker_failures
    for note in skipped:
        print(note)
    print(f"checkov terraform-gke/: {summary}")
    print(f"checkov Dockerfile: {docker_summary}")
    print(f"chart names assumed: Polyaxon chart {CHART_VERSION} ({CHART_SOURCE})")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print("check-infra: " + ("FAILED" if problems else f"OK ({len(parsed)} .tf files)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
