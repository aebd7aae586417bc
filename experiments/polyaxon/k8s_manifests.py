"""The Kubernetes objects Polyaxon would submit on GKE for our polyaxonfiles, compiled by Polyaxon itself.

``lmao polyaxonfile EXPERIMENT_DIR --search random --k8s`` (and tests/test_cluster_pod.py) compile an
operation the way the cluster does, with polyaxon 2.18.0's own code and no cluster:

1. the CLI's reading of the file with ``-P`` params (``polyaxon._polyaxonfile.check.check_polyaxonfile``);
2. the server's compilation (haupt 2.18.0 ``orchestration/scheduler/resolver.py``, ``SchedulingResolver``,
   whose parent is polyaxon's ``polyaxon._compiler.resolver.BaseResolver``): the matrix run is resolved,
   its children come from hypertune's ``RandomSearchManager`` and polyaxon's ``get_ops_from_suggestions``,
   exactly as ``SchedulingResolver._create_random_matrix``; each child is resolved with the two things the
   server adds for a matrix child (``_get_meta_artifacts_presets``: an init step copying the matrix's
   upload into the child; ``_pre_persist_state``: the sidecar syncs every 60 s). The server's database is
   the only part replaced;
3. the Kubernetes agent's conversion (``polyaxon._k8s.executor.base.BaseExecutor.convert``, what the
   chart's agent calls on every queued run), with the agent config the chart builds from
   ``terraform-gke/polyaxon-values.yaml.tftpl`` (chart template ``agent-cm.yaml``:
   ``POLYAXON_AGENT_ARTIFACTS_STORE`` = ``artifactsStore``, ``POLYAXON_AGENT_RUNS_SA`` =
   ``<fullname>-runs-sa``; the API host the agent passes to runs is the gateway, ``_proxies.tpl``
   ``proxies.host``).

The result is the ``core.polyaxon.com/v1`` ``Operation`` object the agent creates; Polyaxon's operator
turns its ``batchJobSpec`` into a ``batch/v1`` Job whose pod runs the init containers, then the trial
beside Polyaxon's sidecar. :func:`pod_of` and :func:`job_of` give those two objects.

``OPERATIONS`` lists what the cluster runs from this repo; adding an operation is one entry.
"""

from __future__ import annotations

import copy
import json
import re
import uuid as uuid_lib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

import yaml

from .boundary import TESTED_POLYAXON

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "terraform-gke"
VALUES_TEMPLATE = TF_DIR / "polyaxon-values.yaml.tftpl"
POLYAXON_VERSION = TESTED_POLYAXON
# haupt 2.18.0 SchedulingResolver._pre_persist_state: matrix and DAG children sync every 60 s.
CHILD_SYNC_INTERVAL = 60
OWNER = "default"  # Polyaxon CE has one organisation


@dataclass(frozen=True)
class Operation:
    """One operation the cluster runs: a committed polyaxonfile and how the server turns it into pods."""

    polyaxonfile: str  # relative to the repo root
    kind: str  # "matrix-child": one child of a matrix; "operation": the operation itself
    params: Mapping[str, Any] = field(default_factory=dict)  # the -P a user passes (README step 8)


# What a GKE user launches (terraform-gke/README.md step 8), with the -P of its runbook. One line each.
RUNBOOK_PARAMS = {"image": "{registry}/lmao:TAG", "cache": "gs://{bucket}/cache",
                  "corpus_dir": "gs://{bucket}/corpus/imdb-1k"}
# The bayes polyaxonfiles are left out: Polyaxon CE 2.18.0 cannot create their tuner runs (agent.py
# TUNED_MATRICES), so the cluster never runs their children.
OPERATIONS: Dict[str, Operation] = {
    "runbook-gpu": Operation("polyaxonfile.yml", "matrix-child", {**RUNBOOK_PARAMS, "pool": "gpu", "gpus": 1}),
    "random-child-gpu": Operation("lmao-imdb-1k/polyaxonfile.random.yml", "matrix-child",
                                  {**RUNBOOK_PARAMS, "pool": "gpu", "gpus": 1}),
    "random-child-cpu": Operation("lmao-imdb-1k/polyaxonfile.random.yml", "matrix-child",
                                  {**RUNBOOK_PARAMS, "pool": "cpu", "cpu": 4, "memory": "8Gi"}),
    "ner-random-child-cpu": Operation("ontonotes-ner/polyaxonfile.random.yml", "matrix-child",
                                      {**RUNBOOK_PARAMS, "corpus_dir": "gs://{bucket}/corpus/wnut17", "pool": "cpu",
                                       "cpu": 4, "memory": "8Gi"}),
    # The TPE tuner run itself (experiments/polyaxon/tuner.py): on the CPU pool, no GPU.
    "tpe-tuner-cpu": Operation("lmao-imdb-1k/polyaxonfile.tpe.yml", "operation", RUNBOOK_PARAMS),
}


@dataclass(frozen=True)
class ClusterSettings:
    """What the Terraform stack gives the agent: namespace, artifacts store, runs service account, host."""

    project_id: str = "PROJECT_ID"
    region: str = "europe-west4"
    namespace: str = "polyaxon"
    release: str = "polyaxon"
    bucket: str = "PROJECT_ID-lmao-artifacts"
    artifact_repository: str = "lmao"
    values: Mapping[str, Any] = field(default_factory=dict)  # the rendered chart values

    @property
    def fullname(self) -> str:
        # chart _helpers.tpl "polyaxon.fullname" (tools/check_infra.py checks this rule against main.tf)
        return f"{self.release}-polyaxon"[:63].rstrip("-")

    @property
    def runs_sa(self) -> str:
        return f"{self.fullname}-runs-sa"  # chart agent-cm.yaml POLYAXON_AGENT_RUNS_SA (rbac.enabled)

    @property
    def api_host(self) -> str:
        return f"http://{self.fullname}-gateway:80"  # chart _proxies.tpl proxies.host (no externalServices)

    @property
    def registry(self) -> str:
        return f"{self.region}-docker.pkg.dev/{self.project_id}/{self.artifact_repository}"  # main.tf registry_url

    def runbook_params(self, params: Mapping[str, Any]) -> Dict[str, Any]:
        return {k: v.format(registry=self.registry, bucket=self.bucket) if isinstance(v, str) else v
                for k, v in params.items()}


def terraform_defaults(tf_dir: Path = TF_DIR) -> Dict[str, Any]:
    """Every variable's default from variables.tf (python-hcl2), so settings follow the Terraform."""
    import hcl2

    with (Path(tf_dir) / "variables.tf").open(encoding="utf-8") as f:
        tree = hcl2.load(f)
    out: Dict[str, Any] = {}
    for block in tree.get("variable", []):
        for name, body in block.items():
            if "default" in body:
                value = body["default"]  # python-hcl2 >= 7 keeps a string's quotes
                out[name.strip('"')] = value[1:-1] if isinstance(value, str) and value[:1] == '"' else value
    return out


_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
_DIRECTIVE = re.compile(r"^\s*%\{\s*(if (\w+)(?:\s*!=\s*\"\")?|else|endif)\s*~?\}\s*$")


def render_values(template: Path, variables: Mapping[str, Any]) -> Dict[str, Any]:
    """Terraform's ``templatefile`` for our values template: ``${name}`` and ``%{ if name }`` / ``%{ if name != "" }``
    ..``%{ else }``..``%{ endif }`` lines (the only directives it uses); an unknown placeholder is an error
    naming its line."""
    lines: List[str] = []
    keep = [True]
    for number, line in enumerate(Path(template).read_text(encoding="utf-8").splitlines(), 1):
        directive = _DIRECTIVE.match(line)
        if directive:
            if directive.group(2):
                keep.append(keep[-1] and bool(variables[directive.group(2)]))
            elif directive.group(1) == "else":
                cond = keep.pop()
                keep.append(keep[-1] and not cond)
            else:
                keep.pop()
            continue
        if not keep[-1]:
            continue

        def sub(match: "re.Match[str]") -> str:
            if match.group(1) not in variables:
                raise KeyError(f"{template}:{number}: unknown placeholder ${{{match.group(1)}}}")
            return str(variables[match.group(1)])

        lines.append(_PLACEHOLDER.sub(sub, line))
    return yaml.safe_load("\n".join(lines)) or {}


def cluster_settings(project_id: str = "PROJECT_ID", tf_dir: Path = TF_DIR, bucket: Optional[str] = None,
                     store_key_secret: Optional[str] = None) -> ClusterSettings:
    """The settings ``terraform apply`` with default variables gives a project (no ingress); ``bucket`` and
    ``store_key_secret`` set the variables ``bucket_name`` and ``polyaxon_store_key_secret``."""
    tf = terraform_defaults(tf_dir)
    bucket = bucket or tf.get("bucket_name") or f"{project_id}-lmao-artifacts"
    release = "polyaxon"  # main.tf local.polyaxon_release
    base = ClusterSettings(project_id=project_id, region=tf["region"], namespace=tf["polyaxon_namespace"],
                           release=release, bucket=bucket, artifact_repository=tf["artifact_repository"])
    values = render_values(Path(tf_dir) / VALUES_TEMPLATE.name, {
        "bucket": bucket, "trials_gsa": f"{tf['cluster_name']}-trials@{project_id}.iam.gserviceaccount.com",
        "gateway_service": f"{base.fullname}-gateway", "namespace": base.namespace,
        "postgres_password": "generated", "ingress": False, "ingress_host": "", "ingress_ip_name": "",
        "ingress_cert_name": "",
        "store_key_secret": tf.get("polyaxon_store_key_secret", "") if store_key_secret is None else store_key_secret})
    return ClusterSettings(project_id=project_id, region=base.region, namespace=base.namespace,
                           release=release, bucket=bucket, artifact_repository=base.artifact_repository,
                           values=values)


def agent_config(settings: ClusterSettings) -> Any:
    """polyaxon's ``AgentConfig`` as the chart's agent-cm.yaml sets it from the values."""
    from polyaxon._schemas.agent import AgentConfig

    values = settings.values
    return AgentConfig.read({"namespace": settings.namespace, "artifactsStore": values["artifactsStore"],
                             "connections": values.get("connections") or [], "runsSa": settings.runs_sa,
                             "isReplica": False})


class _PolyaxonEnv:
    """polyaxon.settings as the agent's process has them, restored after (the compile reads globals)."""

    def __init__(self, settings: ClusterSettings):
        self.settings = settings

    def __enter__(self) -> Any:
        from polyaxon import settings as plx

        self.saved = (plx.AGENT_CONFIG, plx.CLIENT_CONFIG.host)
        config = agent_config(self.settings)
        plx.set_agent_config(config)
        plx.CLIENT_CONFIG.host = self.settings.api_host
        return config

    def __exit__(self, *exc: Any) -> None:
        from polyaxon import settings as plx

        plx.AGENT_CONFIG, plx.CLIENT_CONFIG.host = self.saved


def _resolve(compiled: Any, params: Any, project: str, run_name: str, run_uuid: str) -> Any:
    from polyaxon._compiler import resolver

    _, resolved = resolver.resolve(owner_name=OWNER, project_name=project, project_uuid=project,
                                   run_name=run_name, run_uuid=run_uuid, run_path=run_uuid,
                                   compiled_operation=compiled, params=params)
    return resolved


def _child_presets(compiled: Any, matrix_uuid: str) -> Any:
    """haupt 2.18.0 ``SchedulingResolver.resolve_presets`` + ``_pre_persist_state`` for a matrix child of an
    uploaded run: copy ``<store>/<matrix uuid>`` (its ``uploads/``) into the child, sidecar every 60 s."""
    from polyaxon._auxiliaries import V1PolyaxonSidecarContainer
    from polyaxon._polyaxonfile import CompiledOperationSpecification
    from polyaxon.schemas import V1ArtifactsType, V1Init, V1Plugins

    init = V1Init.model_construct(artifacts=V1ArtifactsType(dirs=[[matrix_uuid, "{{ globals.run_artifacts_path }}"]]))
    compiled = CompiledOperationSpecification.apply_preset(
        config=compiled, preset={"runPatch": {"init": [init.to_dict()]}})
    compiled.plugins = compiled.plugins or V1Plugins()
    compiled.plugins.sidecar = compiled.plugins.sidecar or V1PolyaxonSidecarContainer()
    if compiled.plugins.sidecar.sync_interval is None:
        compiled.plugins.sidecar.sync_interval = CHILD_SYNC_INTERVAL
    return compiled


@dataclass
class Compiled:
    """One compiled run: the content the server stores and the Operation object the agent submits."""

    name: str
    run_uuid: str
    project: str
    content: str  # the compiled operation (JSON), what the agent receives
    resource: Dict[str, Any]  # the core.polyaxon.com/v1 Operation
    params: Dict[str, Any]  # the child's params (matrix suggestion + inputs)


def compile_operation(name: str, op: Operation, settings: ClusterSettings, *, project: str = "lmao",
                      child: int = 0, run_uuid: Optional[str] = None, matrix_uuid: Optional[str] = None,
                      extra_params: Optional[Mapping[str, Any]] = None, repo: Path = REPO) -> Compiled:
    """Compile ``op`` as the server and the Kubernetes agent would (see the module docstring)."""
    from hypertune.search_managers.random_search.manager import RandomSearchManager
    from polyaxon._k8s.executor.base import BaseExecutor
    from polyaxon._polyaxonfile import OperationSpecification
    from polyaxon._polyaxonfile.check import check_polyaxonfile
    from polyaxon._polyaxonfile.manager import get_ops_from_suggestions

    params = {**settings.runbook_params(op.params), **(extra_params or {})}
    run_uuid = run_uuid or uuid_lib.uuid4().hex
    matrix_uuid = matrix_uuid or uuid_lib.uuid4().hex
    with _PolyaxonEnv(settings) as config:
        spec = check_polyaxonfile(polyaxonfile=str(Path(repo) / op.polyaxonfile), params=params,
                                  is_cli=False, verbose=False)
        compiled = OperationSpecification.compile_operation(spec)
        run_name = spec.name or Path(op.polyaxonfile).stem
        if op.kind == "matrix-child":
            compiled = _resolve(compiled, spec.params, project, run_name, matrix_uuid)
            suggestions = RandomSearchManager(compiled.matrix).get_suggestions()
            if not 0 <= child < len(suggestions):
                raise ValueError(f"{op.polyaxonfile}: child {child} of {len(suggestions)}")
            child_op = list(get_ops_from_suggestions(content=spec.to_json(), compiled_operation=compiled,
                                                     suggestions=[suggestions[child]]))[0]
            child_compiled = _child_presets(OperationSpecification.compile_operation(child_op), matrix_uuid)
            resolved = _resolve(child_compiled, child_op.params, project, run_name, run_uuid)
            child_params = {k: p.value for k, p in (child_op.params or {}).items()}
        elif op.kind == "operation":
            resolved = _resolve(compiled, spec.params, project, run_name, run_uuid)
            child_params = {k: p.value for k, p in (spec.params or {}).items()}
        else:
            raise ValueError(f"{op.polyaxonfile}: unknown operation kind {op.kind!r}")
        content = resolved.to_json()
        resource = BaseExecutor.convert(owner_name=OWNER, project_name=project, run_name=run_name,
                                        run_uuid=run_uuid, content=content, default_auth=False,
                                        agent_content=config.to_json())
    from kubernetes.client import ApiClient

    resource = ApiClient().sanitize_for_serialization(resource)  # what polyaxon._k8s.executor.executor does
    return Compiled(name=name, run_uuid=run_uuid, project=project, content=content,
                    resource=json.loads(json.dumps(resource)), params=child_params)


def compile_all(settings: Optional[ClusterSettings] = None, repo: Path = REPO) -> List[Compiled]:
    """Every entry of ``OPERATIONS`` whose polyaxonfile exists (a missing one is skipped, not an error)."""
    settings = settings or cluster_settings()
    return [compile_operation(name, op, settings, repo=repo) for name, op in OPERATIONS.items()
            if (Path(repo) / op.polyaxonfile).exists()]


def pod_template(resource: Mapping[str, Any]) -> Dict[str, Any]:
    """The pod template inside an Operation (``batchJobSpec.template``)."""
    return copy.deepcopy(resource["batchJobSpec"]["template"])


def pod_of(resource: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``v1`` Pod the Job's controller creates from the template."""
    template = pod_template(resource)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]}


def job_of(resource: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``batch/v1`` Job the operator creates: the template, with the Operation's termination
    (``backoffLimit`` = ``termination.maxRetries``, polyaxon ``_k8s/custom_resources/setter.py``)."""
    template = pod_template(resource)
    spec: Dict[str, Any] = {"template": template}
    for key in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if key in (resource.get("termination") or {}):
            spec[key] = resource["termination"][key]
    template["spec"].setdefault("restartPolicy", "Never")
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": resource["metadata"]["name"], "namespace": resource["metadata"]["namespace"],
                         "labels": dict(resource["metadata"].get("labels") or {})},
            "spec": spec}


def manifests_yaml(compiled: List[Compiled]) -> str:
    """The objects as a multi-document YAML stream (``lmao polyaxonfile --k8s``)."""
    docs = []
    for c in compiled:
        docs.append(f"# {c.name}: the Operation the agent submits (run {c.run_uuid})\n"
                    + yaml.safe_dump(c.resource, sort_keys=False, width=110))
        docs.append(f"# {c.name}: the Job Polyaxon's operator creates from it\n"
                    + yaml.safe_dump(job_of(c.resource), sort_keys=False, width=110))
    return "---\n".join(docs)

