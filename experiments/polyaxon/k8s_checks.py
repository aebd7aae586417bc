"""Checks of the compiled cluster objects (experiments.polyaxon.k8s_manifests) against Kubernetes and terraform-gke/.

Each check takes a compiled Operation and returns problems, one line each, naming the run, the object
field and the Terraform file and line it contradicts. ``check_all`` runs them all; tests/test_cluster_pod.py
runs them on every ``make test`` and mutates each object to show each check fails with one clear line.

- **Schema**: the Pod and the ``batch/v1`` Job validate (strict: no unknown field) against the Kubernetes
  OpenAPI schemas that ``kubernetes-validate`` ships, for every minor in ``K8S_VERSIONS``. The Terraform
  pins no GKE version, only ``release_channel`` (variables.tf, default ``REGULAR``), and the channel moves
  through minors on its own, so the objects are checked against each minor the channel can serve in the
  validator's window: ``K8S_VERSIONS`` runs from the oldest minor still in GKE standard support on the
  REGULAR channel to the newest schema the validator ships.
- **Scheduling**: the pod's ``nodeSelector`` picks exactly one node pool by the labels main.tf puts on
  nodes (``labels = merge(var.labels, { "lmao/pool" = each.key })``), and its tolerations cover every
  taint of that pool (``local.pools.<pool>.taints``, GKE ``NO_SCHEDULE`` = Kubernetes ``NoSchedule``).
- **Resources**: the pod's effective request (Kubernetes: the larger of the largest init container and the
  sum of the app containers, sidecar included) fits the pool machine type's allocatable CPU and memory
  (GKE's reservation rules, minus ``SYSTEM_RESERVE`` for GKE's own DaemonSets); on the GPU pool with
  ``gpu_trials_per_gpu`` > 1 (GKE GPU time-sharing) every trial that shares a node's GPUs must fit at once.
- **Identity**: the pod runs as the Kubernetes service account main.tf binds to the trials Google service
  account by Workload Identity, in the namespace of that binding.
- **Image**: the trial's image is in the Artifact Registry repository main.tf creates (outputs.tf ``image``);
  Polyaxon's init and sidecar images carry the Polyaxon version pinned in pyproject.toml.
- **Entry point**: the trial's command runs ``python -m experiments`` from the image the Dockerfile builds:
  the Dockerfile's venv is first on ``PATH``, installs this package (whose ``experiments/__main__.py``
  exists), and the command's subcommand exists in ``lmao --help``.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Dict, List, Mapping, Optional, Tuple

from .k8s_manifests import POLYAXON_VERSION, REPO, TF_DIR, job_of, pod_of, terraform_defaults

# Kubernetes minors the objects are validated against (see the module docstring).
K8S_VERSIONS = ("1.33", "1.34", "1.35", "1.36", "1.37")
MAIN_CONTAINER = "polyaxon-main"  # polyaxon _k8s/converter: MAIN_JOB_CONTAINER
# vCPUs, memory GiB and GPUs of the machine types the pools can use (Compute Engine machine families:
# E2, N2 and N1 standard, G2 with NVIDIA L4). A type not listed is reported, never guessed.
MACHINE_TYPES: Dict[str, Tuple[int, float, int]] = {
    "e2-standard-2": (2, 8, 0), "e2-standard-4": (4, 16, 0), "e2-standard-8": (8, 32, 0),
    "e2-standard-16": (16, 64, 0), "n2-standard-2": (2, 8, 0), "n2-standard-4": (4, 16, 0),
    "n2-standard-8": (8, 32, 0), "n2-standard-16": (16, 64, 0), "n2-standard-32": (32, 128, 0),
    "n1-standard-4": (4, 15, 0), "n1-standard-8": (8, 30, 0), "n1-standard-16": (16, 60, 0),
    "g2-standard-4": (4, 16, 1), "g2-standard-8": (8, 32, 1), "g2-standard-12": (12, 48, 1),
    "g2-standard-16": (16, 64, 1), "g2-standard-24": (24, 96, 2), "g2-standard-32": (32, 128, 1),
    "g2-standard-48": (48, 192, 4), "g2-standard-96": (96, 384, 8),
}
# GKE's own DaemonSets on every node (logging, metrics, Dataplane V2's anetd, the PD CSI driver, on GPU nodes
# the device plugin) request CPU and memory too. Their sum depends on the GKE version and add-ons; this is
# a conservative allowance, and the exact figure is one of the things only a real cluster shows.
SYSTEM_RESERVE = {"cpu": 0.5, "memory": 1.0 * 2**30}
EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}


# ------------------------------------------------------------------------------------------ Terraform


@dataclass(frozen=True)
class Pool:
    name: str
    machine_type: str
    gpus: int
    labels: Mapping[str, str]
    taints: Tuple[Tuple[str, str, str], ...]  # (key, value, Kubernetes effect)


@dataclass(frozen=True)
class Terraform:
    """What the checks need from terraform-gke/, each value with the file:line it comes from."""

    pools: Mapping[str, Pool]
    gpu_trials_per_gpu: int
    namespace: str
    runs_ksa: str
    wi_members: Tuple[str, ...]  # Workload Identity members bound to the trials account
    image: str  # outputs.tf image, with PROJECT_ID
    where: Mapping[str, str]  # what -> "file:line"


def _unquote(value: Any) -> Any:
    return value[1:-1] if isinstance(value, str) and value[:1] == '"' and value[-1:] == '"' else value


def _line(path: Path, needle: str) -> str:
    text = path.read_text(encoding="utf-8")
    index = text.find(needle)
    return f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{text.count(chr(10), 0, index) + 1 if index >= 0 else 0}"


def _eval(expr: Any, variables: Mapping[str, Any], extra: Optional[Mapping[str, Any]] = None) -> Any:
    """The HCL expressions main.tf uses where the checks look: literals, ``var.x``, ``local.x``, ``each.key``,
    and ``"${...}"`` interpolation of those."""
    expr = _unquote(expr)
    if not isinstance(expr, str):
        return expr
    names = {**{f"var.{k}": v for k, v in variables.items()}, **(extra or {})}
    whole = re.fullmatch(r"\$\{([\w.\-]+)\}", expr)
    if whole and whole.group(1) in names:
        return names[whole.group(1)]

    def sub(match: "re.Match[str]") -> str:
        if match.group(1) not in names:
            raise KeyError(f"cannot evaluate {match.group(0)} in {expr!r}")
        return str(names[match.group(1)])

    return re.sub(r"\$\{([\w.\-]+)\}", sub, expr)


def read_terraform(tf_dir: Path = TF_DIR, project_id: str = "PROJECT_ID") -> Terraform:
    """Parse main.tf / outputs.tf (python-hcl2) with variables.tf's defaults."""
    import hcl2

    tf_dir = Path(tf_dir)
    main_path = tf_dir / "main.tf"
    with main_path.open(encoding="utf-8") as f:
        main = hcl2.load(f)
    variables = {**terraform_defaults(tf_dir), "project_id": project_id}
    locals_: Dict[str, Any] = {}
    for block in main.get("locals", []):
        locals_.update({k: v for k, v in block.items() if not k.startswith("__")})
    resources: Dict[Tuple[str, str], Any] = {}
    for block in main.get("resource", []):
        for rtype, named in block.items():
            if rtype.startswith("__"):
                continue
            for name, body in named.items():
                resources[(_unquote(rtype), _unquote(name))] = body

    scope: Dict[str, Any] = {}
    for name in ("polyaxon_release", "workload_pool", "registry_url"):
        scope[f"local.{name}"] = _eval(locals_[name], variables, scope)
    scope["local.polyaxon_fullname"] = _eval(locals_["polyaxon_fullname"], variables, scope)
    for name in ("polyaxon_runs_ksa", "polyaxon_agent_ksa"):
        scope[f"local.{name}"] = _eval(locals_[name], variables, scope)

    node_pool = resources[("google_container_node_pool", "pools")]
    labels_expr = str(node_pool["node_config"][0]["labels"])
    pool_label_keys = re.findall(r'"([^"]+)"\s*[=:]\s*each\.key', labels_expr)
    if not pool_label_keys:
        raise ValueError(f"{_line(main_path, 'labels          = merge')}: node labels name no key = each.key")
    base_labels = ({k: _unquote(v) for k, v in (variables.get("labels") or {}).items()}
                   if "var.labels" in labels_expr else {})
    pools: Dict[str, Pool] = {}
    for name, spec in locals_["pools"].items():
        taints = tuple((_eval(t["key"], variables), _eval(t["value"], variables),
                        EFFECTS.get(_eval(t["effect"], variables), _eval(t["effect"], variables)))
                       for t in spec.get("taints") or [])
        pools[name] = Pool(name=name, machine_type=_eval(spec["machine_type"], variables),
                           gpus=int(_eval(spec["gpus"], variables)),
                           labels={**base_labels, **{k: name for k in pool_label_keys}}, taints=taints)

    binding = resources[("google_service_account_iam_member", "trials_workload_identity")]
    members = []
    for ksa in re.findall(r"local\.(\w+)", str(binding["for_each"])):
        members.append(_eval(binding["member"], variables, {**scope, "each.value": scope[f"local.{ksa}"]}))
    with (tf_dir / "outputs.tf").open(encoding="utf-8") as f:
        outputs = hcl2.load(f)
    named = {_unquote(k): v for o in outputs["output"] for k, v in o.items() if not k.startswith("__")}
    image = _eval(named["image"]["value"], variables, scope)
    where = {
        "labels": _line(main_path, "labels          = merge"),
        "pools": _line(main_path, "pools = {"),
        "wi": _line(main_path, '"trials_workload_identity"'),
        "gpu_sharing": _line(tf_dir / "variables.tf", 'variable "gpu_trials_per_gpu"'),
        "image": _line(tf_dir / "outputs.tf", 'output "image"'),
    }
    return Terraform(pools=pools, gpu_trials_per_gpu=int(variables["gpu_trials_per_gpu"]),
                     namespace=variables["polyaxon_namespace"], runs_ksa=scope["local.polyaxon_runs_ksa"],
                     wi_members=tuple(members), image=image, where=where)


# ------------------------------------------------------------------------------------------ quantities


def quantity(value: Any) -> float:
    """A Kubernetes quantity ("100m", "0.1", "8Gi", "500Mi", 2) as a number (cores, bytes, count)."""
    text = str(value).strip()
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
                "Ti": 2**40}
    match = re.fullmatch(r"([0-9.eE+-]+)([A-Za-z]*)", text)
    if not match or match.group(2) not in ("", *suffixes):
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * suffixes.get(match.group(2), 1.0)


def pod_requests(spec: Mapping[str, Any]) -> Dict[str, float]:
    """Kubernetes' effective pod request: max(largest init container, sum of app containers), per resource."""

    def requests(container: Mapping[str, Any]) -> Dict[str, float]:
        res = container.get("resources") or {}
        # A container with a limit and no request requests its limit (Kubernetes defaulting).
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return {k: quantity(v) for k, v in merged.items()}

    total: Dict[str, float] = {}
    for c in spec.get("containers") or []:
        for k, v in requests(c).items():
            total[k] = total.get(k, 0.0) + v
    for c in spec.get("initContainers") or []:
        for k, v in requests(c).items():
            total[k] = max(total.get(k, 0.0), v)
    return total


def gke_allocatable(machine_type: str) -> Dict[str, float]:
    """Allocatable CPU (cores) and memory (bytes) of a GKE Standard node (GKE docs, "Node allocatable
    resources"): CPU reserve 6% of the first core, 1% of the next, 0.5% of the next 2, 0.25% above 4;
    memory reserve 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2%
    above 128, plus the kubelet's 100 MiB eviction threshold."""
    cpus, mem_gib, _gpus = MACHINE_TYPES[machine_type]
    cpu_reserve = 0.06 * min(cpus, 1) + 0.01 * min(max(cpus - 1, 0), 1) + 0.005 * min(max(cpus - 2, 0), 2) \
        + 0.0025 * max(cpus - 4, 0)
    mem_reserve = 0.0
    for upto, share in ((4, 0.25), (8, 0.20), (16, 0.10), (128, 0.06), (math.inf, 0.02)):
        lower = {4: 0, 8: 4, 16: 8, 128: 16, math.inf: 128}[upto]
        mem_reserve += share * max(min(mem_gib, upto) - lower, 0)
    return {"cpu": cpus - cpu_reserve, "memory": (mem_gib - mem_reserve) * 2**30 - 100 * 2**20}


# ------------------------------------------------------------------------------------------ checks


def _who(c: Any) -> str:
    return f"{c.name} (pod {c.resource['metadata']['name']})"


def check_schema(c: Any, versions=K8S_VERSIONS) -> List[str]:
    """Pod and Job against Kubernetes' OpenAPI schema of each minor (kubernetes-validate, strict)."""
    import kubernetes_validate

    problems = []
    for obj in (pod_of(c.resource), job_of(c.resource)):
        for version in versions:
            try:
                kubernetes_validate.validate(obj, f"{version}.0", strict=True)
            except kubernetes_validate.ValidationError as err:
                path = ".".join(str(p) for p in err.path)
                # one line: the first object and minor that fail (the Job embeds the same pod spec)
                return [f"{_who(c)}: {obj['kind']} invalid for Kubernetes {version}: {path}: {err.message}"]
    return problems


def _pool_of(spec: Mapping[str, Any], tf: Terraform) -> Tuple[Optional[Pool], Optional[str]]:
    selector = spec.get("nodeSelector") or {}
    matching = [p for p in tf.pools.values() if all(p.labels.get(k) == v for k, v in selector.items())]
    if not selector:
        return None, f"no nodeSelector: the pod may land on any pool (node labels: {tf.where['labels']})"
    if len(matching) != 1:
        labels = {p.name: dict(p.labels) for p in tf.pools.values()}
        return None, (f"nodeSelector {selector} matches {len(matching)} node pools, not 1 (node labels "
                      f"{tf.where['labels']}: {labels})")
    return matching[0], None


def check_scheduling(c: Any, tf: Terraform) -> List[str]:
    """nodeSelector picks one pool; the tolerations cover each of its taints."""
    spec = c.resource["batchJobSpec"]["template"]["spec"]
    pool, problem = _pool_of(spec, tf)
    if problem:
        return [f"{_who(c)}: {problem}"]
    problems = []
    for key, value, effect in pool.taints:
        # Kubernetes' rule: an empty key with Exists tolerates every taint; no effect matches every effect.
        tolerated = any((t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
                        and (t.get("effect") or effect) == effect
                        and (t.get("operator") == "Exists" or t.get("value") == value)
                        for t in spec.get("tolerations") or [])
        if not tolerated:
            problems.append(f"{_who(c)}: no toleration for the {pool.name} pool's taint {key}={value}:{effect} "
                            f"({tf.where['pools']}): the pod would never schedule there")
    return problems


def _gib(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def check_resources(c: Any, tf: Terraform) -> List[str]:
    """The pod's requests fit its pool's machine (and every trial that shares a node's GPUs fits at once)."""
    spec = c.resource["batchJobSpec"]["template"]["spec"]
    pool, problem = _pool_of(spec, tf)
    if problem:
        return [f"{_who(c)}: {problem}"]
    if pool.machine_type not in MACHINE_TYPES:
        return [f"{_who(c)}: machine type {pool.machine_type} of the {pool.name} pool is not in "
                f"experiments/polyaxon/k8s_checks.py MACHINE_TYPES: add its vCPUs, memory and GPUs"]
    req = pod_requests(spec)
    main = next(x for x in spec["containers"] if x["name"] == MAIN_CONTAINER)
    limits = (main.get("resources") or {}).get("limits") or {}
    gpus = quantity(limits.get("nvidia.com/gpu", 0))
    node_gpus = pool.gpus * (tf.gpu_trials_per_gpu if pool.gpus else 0)
    problems = []
    if gpus > node_gpus:
        problems.append(f"{_who(c)}: requests nvidia.com/gpu {gpus:g} but a {pool.name} node "
                        f"({pool.machine_type}) offers {node_gpus} ({tf.where['gpu_sharing']})")
        return problems
    per_node = 1
    if gpus and tf.gpu_trials_per_gpu > 1:
        per_node = int(node_gpus // gpus)  # GKE time-sharing: that many trials share the node's GPUs
    alloc = gke_allocatable(pool.machine_type)
    shows = {"cpu": lambda v: f"{v:.2f} CPU", "memory": _gib}
    short = [res for res in ("cpu", "memory") if per_node * req.get(res, 0.0) > alloc[res] - SYSTEM_RESERVE[res]]
    if short:
        need = " and ".join(shows[r](per_node * req.get(r, 0.0)) for r in short)
        have = " and ".join(shows[r](alloc[r] - SYSTEM_RESERVE[r]) for r in short)
        what = (f"{per_node} trials sharing its GPUs (gpu_trials_per_gpu, {tf.where['gpu_sharing']}) need "
                if per_node > 1 else "the pod requests ")
        problems.append(f"{_who(c)}: {what}{need} but a {pool.machine_type} node of the {pool.name} pool has "
                        f"{have} allocatable after GKE's reserve and DaemonSets")
    return problems


def check_identity(c: Any, tf: Terraform) -> List[str]:
    """The pod's KSA and namespace are a Workload Identity member of the trials account."""
    spec = c.resource["batchJobSpec"]["template"]["spec"]
    ksa = spec.get("serviceAccountName") or "default"
    ns = c.resource["metadata"]["namespace"]
    pool = next(iter(tf.wi_members)).split("[")[0]
    member = f"{pool}[{ns}/{ksa}]"
    if member not in tf.wi_members:
        return [f"{_who(c)}: runs as {ns}/{ksa}, which has no Workload Identity binding to the trials account "
                f"({tf.where['wi']} binds {', '.join(m.split('[')[1].rstrip(']') for m in tf.wi_members)}): "
                f"no gs:// access"]
    return []


def check_images(c: Any, tf: Terraform) -> List[str]:
    """Trial image in the Terraform's registry; Polyaxon's images at the pinned version."""
    spec = c.resource["batchJobSpec"]["template"]["spec"]
    problems = []
    for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
        image = container.get("image", "")
        if container["name"] == MAIN_CONTAINER:
            if not image.startswith(tf.image + ":"):
                problems.append(f"{_who(c)}: image {image} is not in the cluster's registry {tf.image} "
                                f"({tf.where['image']}): the nodes may only pull from there")
        elif not image.endswith(":" + POLYAXON_VERSION):
            problems.append(f"{_who(c)}: container {container['name']} image {image} is not Polyaxon "
                            f"{POLYAXON_VERSION} (pyproject.toml pins polyaxon=={POLYAXON_VERSION})")
    return problems


def dockerfile_facts(dockerfile: Path = REPO / "Dockerfile") -> Dict[str, Any]:
    """What the Dockerfile puts in the image: PATH, the pip installs, the package source copied."""
    text = Path(dockerfile).read_text(encoding="utf-8")
    logical = re.sub(r"\\\n", " ", text)
    env_path = re.search(r"\bPATH=(\S+)", logical)
    venv = re.search(r"python3 -m venv (\S+)", logical)
    installs = [m.group(1).strip() for m in re.finditer(r"pip install ([^&\n]+)", logical)]
    return {"path": env_path.group(1).split(":") if env_path else [], "venv": venv.group(1) if venv else None,
            "pip_installs": installs, "copies_repo": bool(re.search(r"^COPY \. \.", text, re.M)),
            "workdir": (re.findall(r"^WORKDIR (\S+)", text, re.M) or [None])[-1]}


def check_entrypoint(c: Any, commands: Collection[str], dockerfile: Path = REPO / "Dockerfile",
                     repo: Path = REPO) -> List[str]:
    """The trial's command runs in the image: ``python`` from the Dockerfile's venv, this package, a real
    ``lmao`` subcommand."""
    spec = c.resource["batchJobSpec"]["template"]["spec"]
    main = next(x for x in spec["containers"] if x["name"] == MAIN_CONTAINER)
    argv = [*(main.get("command") or []), *(main.get("args") or [])]
    words = shlex.split(argv[2]) if argv[:2] == ["bash", "-c"] and len(argv) == 3 else argv
    words = words[1:] if words[:1] == ["exec"] else words
    facts = dockerfile_facts(dockerfile)
    where = f"{Path(dockerfile).name}"
    module = words[2] if words[:2] == ["python", "-m"] and len(words) > 2 else ""
    if module.split(".")[0] != "experiments":
        return [f"{_who(c)}: command {' '.join(words[:4])} is not `python -m experiments ...`, the entry point "
                f"the image installs"]
    problems = []
    venv_bin = f"{facts['venv']}/bin" if facts["venv"] else None
    if not venv_bin or not facts["path"] or facts["path"][0] != venv_bin:
        problems.append(f"{_who(c)}: `python` would not be the image's venv: {where} PATH={':'.join(facts['path'])} "
                        f"does not start with {venv_bin}")
    if not any(i.startswith(".") or i.startswith('".') for i in facts["pip_installs"]) or not facts["copies_repo"]:
        problems.append(f"{_who(c)}: {where} does not install this package (`pip install .` after `COPY . .`)")
    if module != "experiments":  # a module run as a script (the TPE tuner: experiments.polyaxon.tuner)
        source = Path(repo, *module.split(".")).with_suffix(".py")
        if not source.is_file() or 'if __name__ == "__main__"' not in source.read_text(encoding="utf-8"):
            problems.append(f"{_who(c)}: `python -m {module}`: {source.relative_to(repo)} is not a module of this "
                            "package that runs as a script")
        return problems
    if not (Path(repo) / "experiments" / "__main__.py").exists():
        problems.append(f"{_who(c)}: experiments/__main__.py missing: `python -m experiments` has no entry point")
    sub = words[3] if len(words) > 3 else ""
    if sub not in commands:
        problems.append(f"{_who(c)}: `lmao {sub}` is not a command of this package ({', '.join(sorted(commands))})")
    return problems


def check_all(compiled: List[Any], commands: Collection[str], tf: Optional[Terraform] = None) -> List[str]:
    """Every check on every compiled operation; ``commands``: the subcommands of ``python -m experiments``
    (its CLI passes them, so this package never imports the CLI)."""
    tf = tf or read_terraform()
    problems: List[str] = []
    for c in compiled:
        problems += check_schema(c)
        problems += check_scheduling(c, tf)
        problems += check_resources(c, tf)
        problems += check_identity(c, tf)
        problems += check_images(c, tf)
        problems += check_entrypoint(c, commands)
    return problems


def check_dockerfile_pins(dockerfile: Path = REPO / "Dockerfile", pyproject: Path = REPO / "pyproject.toml") -> List[str]:
    """The image installs what pyproject.toml pins: the package with its ``polyaxon`` extra (polyaxon and
    haupt at the chart's version) and, for each extra requirement the Dockerfile names, the same version
    range as pyproject.toml (``spacy[cuda12x]`` is spaCy's own extra: same spaCy range)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    from packaging.requirements import Requirement

    project = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]
    pinned = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    extras = project.get("optional-dependencies") or {}
    where = Path(dockerfile).name
    problems: List[str] = []
    for line in dockerfile_facts(dockerfile)["pip_installs"]:
        for word in shlex.split(line):
            if word.startswith("-"):
                continue
            if word.startswith("."):
                for extra in re.findall(r"\[([^\]]+)\]", word)[:1]:
                    for name in extra.split(","):
                        if name not in extras:
                            problems.append(f"{where}: pip install {word}: pyproject.toml has no extra {name!r}")
                continue
            req = Requirement(word)
            mine = pinned.get(req.name.lower())
            if mine is None:
                problems.append(f"{where}: pip install {word}: {req.name} is not a dependency in pyproject.toml")
            elif set(req.specifier) != set(mine.specifier):  # packaging compares canonical versions (3.9 == 3.9.0)
                problems.append(f"{where}: pip install {word}: {req.name}{req.specifier} differs from pyproject.toml's "
                                f"{mine.name}{mine.specifier}")
    pins = {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in extras.get("polyaxon", [])}
    if pins.get("polyaxon") != f"=={POLYAXON_VERSION}":
        problems.append(f"pyproject.toml: extra polyaxon pins polyaxon{pins.get('polyaxon')}, not =={POLYAXON_VERSION} "
                        f"(the chart and the init/sidecar images)")
    return problems
