"""terraform-gke/ static checks (the same as `make check-infra`), and proof each check can fail."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from tests.services import unavailable

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_infra", REPO / "tools" / "check_infra.py")
check_infra = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_infra)


@pytest.fixture(scope="module")
def parsed():
    trees, problems = check_infra.parse_all()
    assert problems == []
    return trees


def test_every_tf_file_parses(parsed):
    assert {p.name for p in parsed} == {"versions.tf", "variables.tf", "main.tf", "outputs.tf"}


def test_variables_declared_and_used(parsed):
    assert check_infra.check_variables(parsed) == []


def test_locals_defined_and_used(parsed):
    assert check_infra.check_locals(parsed) == []


def test_google_resources_match_provider_schema(parsed):
    assert check_infra.check_provider_schema(parsed) == []


def test_templatefile_placeholders_match():
    assert check_infra.check_templates() == []


def test_chart_names_match_terraform_outputs_and_readmes(parsed):
    """The chart's derived names (pinned chart version) are what main.tf binds and the docs tell users."""
    assert check_infra.check_chart_names(parsed) == []
    names = check_infra.chart_names("polyaxon")
    assert names == {"polyaxon_fullname": "polyaxon-polyaxon", "polyaxon_runs_ksa": "polyaxon-polyaxon-runs-sa",
                     "polyaxon_agent_ksa": "polyaxon-polyaxon-agent-sa",
                     "polyaxon_gateway_svc": "polyaxon-polyaxon-gateway"}
    assert check_infra.chart_names("x" * 70)["polyaxon_fullname"] == "x" * 63  # trunc 63, as the chart does
    text = (check_infra.TF_DIR / "variables.tf").read_text()
    assert re.search(rf'"polyaxon_chart_version"[^}}]*default\s*=\s*"{re.escape(check_infra.CHART_VERSION)}"', text)
    pins = (REPO / "pyproject.toml").read_text()
    assert f"polyaxon=={check_infra.CHART_VERSION}" in pins
    assert f"haupt[sandbox]=={check_infra.CHART_VERSION}" in (REPO / "Makefile").read_text()
    values = (check_infra.TF_DIR / "polyaxon-values.yaml.tftpl").read_text()
    assert "adminEnabled: false" in values
    main = (check_infra.TF_DIR / "main.tf").read_text()
    assert "timeoutSec     = 600" in main and "roles/artifactregistry.writer" not in main
    assert 'kubernetes_annotations" "runs_sa"' not in main  # the chart annotates the runs SA itself


def test_checkov_skips_are_justified():
    assert check_infra.check_skip_reasons() == []


def test_terraform_fmt(tmp_path):
    """``terraform fmt -check`` passes on terraform-gke/ and catches a misaligned ``=`` (.ci/run installs
    terraform where it is missing)."""
    problems = check_infra.check_fmt()
    if problems and problems[0].startswith("SKIP"):
        unavailable(problems[0])
    assert problems == []
    copy = tmp_path / "tf"
    shutil.copytree(check_infra.TF_DIR, copy)
    variables = copy / "variables.tf"
    text = variables.read_text()
    aligned = re.search(r"\n(  description) = ", text)
    assert aligned, "no `description = ` line to misalign"
    variables.write_text(text[:aligned.end() - 3] + " =    " + text[aligned.end():])
    found = check_infra.check_fmt(copy)
    assert len(found) == 1 and re.match(r"\S*variables\.tf: not in `terraform fmt` style", found[0]), found


@pytest.mark.slow  # runs checkov (an external scanner, tens of seconds)
def test_checkov_passes():
    summary, failures = check_infra.run_checkov()
    assert failures == []
    annotations = sum(
        len(check_infra.SKIP.findall(p.read_text())) for p in check_infra.tf_files()
    )
    assert summary["failed"] == 0 and summary["passed"] >= 50
    assert summary["skipped"] == annotations


@pytest.mark.slow  # runs checkov (an external scanner, tens of seconds)
def test_dockerfile_checkov_passes():
    summary, failures = check_infra.run_checkov(check_infra.DOCKERFILE, "dockerfile")
    assert failures == [] and summary["passed"] >= 20


# -- the checks themselves catch mistakes ----------------------------------------------------------


@pytest.fixture
def broken_copy(tmp_path):
    copy = tmp_path / "tf"
    shutil.copytree(check_infra.TF_DIR, copy)
    main = copy / "main.tf"
    text = main.read_text()
    text = text.replace("= var.zone\n", "= var.zonee\n", 1)
    text = text.replace("local.workload_pool", "local.workload_poll", 1)
    text = text.replace("ingress_host      = var.polyaxon_ingress_host\n", "", 1)
    text = re.sub(r"(#checkov:skip=CKV_GCP_66):[^\n]*", r"\1:", text)
    text = text.replace("with_state ", "with_statee ", 1)  # nested block argument
    text = text.replace("gpu_driver_version = ", "gpu_driver_versio = ", 1)  # inside a dynamic block
    main.write_text(text)
    (copy / "variables.tf").write_text(
        (copy / "variables.tf").read_text() + '\nvariable "unused_knob" {\n  type = string\n}\n'
    )
    return copy


def test_checks_report_mistakes_with_file_and_line(broken_copy):
    parsed, problems = check_infra.parse_all(broken_copy)
    assert problems == []
    var_problems = "\n".join(check_infra.check_variables(parsed))
    assert re.search(r"main\.tf:\d+: var\.zonee is used but not declared", var_problems)
    assert re.search(r"variables\.tf:\d+: variable 'unused_knob' is declared but never used", var_problems)
    local_problems = "\n".join(check_infra.check_locals(parsed))
    assert re.search(r"main\.tf:\d+: local\.workload_poll is used but defined in no locals block", local_problems)
    schema_problems = "\n".join(check_infra.check_provider_schema(parsed))
    assert re.search(r"main\.tf:\d+: google_storage_bucket\.artifacts\.lifecycle_rule\.condition: unknown "
                     r"argument or block 'with_statee'", schema_problems)
    assert "node_config.guest_accelerator.gpu_driver_installation_config: unknown argument or block " \
           "'gpu_driver_versio'" in schema_problems
    template_problems = "\n".join(check_infra.check_templates(broken_copy))
    assert "placeholder 'ingress_host' is not passed by main.tf" in template_problems
    assert re.search(r"main\.tf:\d+: checkov skip CKV_GCP_66 has no real reason",
                     "\n".join(check_infra.check_skip_reasons(broken_copy)))


def test_chart_name_check_catches_wrong_names(tmp_path):
    copy = tmp_path / "tf"
    shutil.copytree(check_infra.TF_DIR, copy)
    main = copy / "main.tf"
    main.write_text(main.read_text().replace('polyaxon_runs_ksa     = "${local.polyaxon_fullname}-runs-sa"',
                                             'polyaxon_runs_ksa     = "${local.polyaxon_release}-runs-sa"'))
    variables = copy / "variables.tf"
    variables.write_text(variables.read_text().replace(f'"{check_infra.CHART_VERSION}"', '"2.99.0"'))
    readme = tmp_path / "README.md"
    readme.write_text("x\nkubectl port-forward -n polyaxon svc/polyaxon-gateway 8000:80\nbind polyaxon-runs-sa\n")
    parsed, problems = check_infra.parse_all(copy)
    assert problems == []
    found = "\n".join(check_infra.check_chart_names(parsed, copy, docs=(readme,)))
    assert re.search(r"main\.tf:\d+: local\.polyaxon_runs_ksa is 'polyaxon-runs-sa', but chart 2\.18\.0 names it "
                     r"'polyaxon-polyaxon-runs-sa'", found)
    assert re.search(r"variables\.tf:\d+: polyaxon_chart_version must default to 2\.18\.0", found)
    assert f"{readme}:2: service 'polyaxon-gateway' does not exist" in found
    assert f"{readme}:3: service account 'polyaxon-runs-sa' does not exist" in found


def test_parse_error_names_file_and_line(tmp_path):
    (tmp_path / "bad.tf").write_text('resource "x" "y" {\n  a = \n}\n')
    _, problems = check_infra.parse_all(tmp_path)
    assert len(problems) == 1 and re.match(rf"{re.escape(str(tmp_path))}/bad\.tf:\d+: HCL does not parse", problems[0])


@pytest.mark.slow  # runs checkov (an external scanner, tens of seconds)
def test_checkov_reports_an_insecure_bucket(tmp_path):
    (tmp_path / "main.tf").write_text(
        'resource "google_storage_bucket" "open" {\n  name     = "x"\n  location = "EU"\n}\n'
    )
    summary, failures = check_infra.run_checkov(tmp_path)
    assert summary["failed"] > 0
    assert any("CKV_GCP_29" in f and "google_storage_bucket.open" in f for f in failures)
