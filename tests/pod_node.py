"""A Kubernetes node on this machine for one compiled pod (tests/test_cluster_pod.py): the kubelet's part only.

What the pod's containers do is theirs: each runs as a local process with the spec's own ``command``,
``args``, ``env`` and ``workingDir``, init containers one after the other, then the main container beside
the sidecar. This module supplies what a node supplies and nothing else:

- **volumes**: every ``emptyDir`` and ``secret`` volume is a folder under the node's root (a Secret's keys
  written as files, from the ``secrets`` the test gives), mounted at ``ROOT + mountPath``: each
  mount path in a container's command, args, env and working dir is rewritten to that folder, and Polyaxon's
  context root (``POLYAXON_CONTEXT_ROOT``, read by polyaxon ``_contexts/paths.py``) points at the mapped
  ``/plx-context``; the service-account token Kubernetes mounts in every pod
  (``/var/run/secrets/kubernetes.io/serviceaccount``) is a folder too, found by kubernetes_asyncio
  through ``sitecustomize`` (the file below, put on ``PYTHONPATH``);
- **env**: ``valueFrom.fieldRef`` resolved as the kubelet does (``metadata.name``, ``metadata.namespace``,
  ``spec.nodeName``), ``KUBERNETES_SERVICE_HOST/PORT``, the image's ``PATH`` (this venv), ``HOME``;
- **the API the sidecar asks**: :class:`KubeApi`, an HTTPS endpoint (self-signed CA in the token folder)
  answering what Polyaxon's sidecar reads about its own pod (``read_namespaced_pod`` / ``_status`` with
  the containers' real states, ``read_namespaced_pod_log`` with their real output, pod and event lists);
- **Workload Identity**: :class:`MetadataServer`, GKE's metadata server as a pod sees it
  (``GCE_METADATA_HOST``, read by google-auth): it hands out a token for the Google service account the
  pod's Kubernetes service account is bound to (the ``identity`` callable, from terraform-gke's binding),
  and no credentials at all to an unbound one, as GKE does;
- **the network**: ``STORAGE_EMULATOR_HOST`` sends ``storage.googleapis.com`` to the GCS emulator; the
  Polyaxon API named in the pod's env does not resolve here, as it is unreachable from a trial pod on GKE
  (terraform-gke's NetworkPolicy).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import parse_qs, urlparse

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
NODE_NAME = "local-node"
# The images' own ENV: Polyaxon's init and sidecar images run the same `polyaxon` CLI, which registers
# `initializer` / `sidecar` only for its service (polyaxon 2.18.0 cli.py, PolyaxonServices.is_init /
# is_sidecar, read from POLYAXON_SERVICE). Keyed by image name without the tag.
IMAGE_ENV = {"polyaxon/polyaxon-init": {"POLYAXON_SERVICE": "init"},
             "polyaxon/polyaxon-sidecar": {"POLYAXON_SERVICE": "sidecar"}}
SITECUSTOMIZE = '''"""The pod's service-account mount, mapped by tests/pod_node.py (kubernetes_asyncio reads fixed paths)."""
import os
_sa = os.environ.get("LMAO_NODE_SA_DIR")
if _sa:
    try:
        import kubernetes_asyncio.config.incluster_config as _m
        _m.SERVICE_TOKEN_FILENAME = os.path.join(_sa, "token")
        _m.SERVICE_CERT_FILENAME = os.path.join(_sa, "ca.crt")
    except ImportError:
        pass
'''


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def service_account_key(email: str, token_uri: str, project_id: str = "PROJECT_ID") -> str:
    """A service-account key file's JSON (fresh RSA key) whose tokens come from ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": project_id, "private_key_id": "local",
                       "private_key": pem, "client_email": email, "client_id": "1", "token_uri": token_uri})


def _self_signed(folder: Path) -> None:
    """A CA certificate and key for 127.0.0.1 (what the cluster's CA is to a pod)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "token").write_text("local-node-token")


@dataclass
class ContainerState:
    name: str
    image: str
    state: Dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "PodInitializing"}})
    log: List[str] = field(default_factory=list)


class PodState:
    """What the node knows about the pod: its object and each container's state and output."""

    def __init__(self, pod: Mapping[str, Any]):
        self.pod = json.loads(json.dumps(pod))
        self.pod["spec"]["nodeName"] = NODE_NAME
        self.lock = threading.Lock()
        spec = self.pod["spec"]
        self.containers = {c["name"]: ContainerState(c["name"], c.get("image", ""))
                           for c in [*(spec.get("initContainers") or []), *spec["containers"]]}
        self.phase = "Pending"

    def as_object(self) -> Dict[str, Any]:
        spec = self.pod["spec"]

        def status(names: List[str]) -> List[Dict[str, Any]]:
            return [{"name": n, "image": self.containers[n].image, "imageID": "", "ready": "running" in
                     self.containers[n].state, "restartCount": 0, "state": self.containers[n].state}
                    for n in names]

        with self.lock:
            return {**self.pod, "status": {
                "phase": self.phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                "initContainerStatuses": status([c["name"] for c in spec.get("initContainers") or []]),
                "containerStatuses": status([c["name"] for c in spec["containers"]])}}


class KubeApi:
    """The Kubernetes API as a pod's own service account sees it, for one pod (HTTPS on 127.0.0.1)."""

    def __init__(self, state: PodState, sa_dir: Path):
        self.state = state
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                code, body, ctype = api.answer(self.path)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sa_dir / "ca.crt", sa_dir / "tls.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str):
        url = urlparse(path)
        pod = self.state.as_object()
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        base = f"/api/v1/namespaces/{ns}"
        json_type = "application/json"
        if url.path in (f"{base}/pods/{name}", f"{base}/pods/{name}/status"):
            return 200, pod, json_type
        if url.path == f"{base}/pods/{name}/log":
            container = (parse_qs(url.query).get("container") or [""])[0]
            with self.state.lock:
                lines = list(self.state.containers[container].log) if container in self.state.containers else None
            if lines is None:
                return 400, {"kind": "Status", "status": "Failure", "code": 400}, json_type
            return 200, "".join(f"{line}\n" for line in lines).encode(), "text/plain"
        if url.path == f"{base}/pods":
            return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [pod]}, json_type
        if url.path in (f"{base}/events", f"{base}/services"):
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []}, json_type
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                     "message": f"{url.path} not served by the local node"}, json_type

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MetadataServer:
    """GKE's metadata server under Workload Identity: a token for ``email``, or none when unbound. Also
    Google's OAuth token endpoint for a service-account key whose ``token_uri`` is :meth:`token_uri`."""

    def token_uri(self) -> str:
        return f"http://{self.host}/token"

    def __init__(self, email: Optional[str], project_id: str):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - Google's OAuth token endpoint (a key file's token_uri)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                code, body = server.answer(urlparse(self.path).path)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.email, self.project_id = email, project_id
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str):
        base = "/computeMetadata/v1/"
        if path in ("/", ""):
            return 200, ""
        if path == "/token":
            return 200, {"access_token": "local-node-token", "expires_in": 3600, "token_type": "Bearer"}
        if path == base + "project/project-id":
            return 200, self.project_id
        if path.startswith(base + "instance/service-accounts/"):
            if not self.email:
                return 404, "no Workload Identity binding for this pod's service account"
            if path.rstrip("/").endswith("/token"):
                return 200, {"access_token": "local-node-token", "expires_in": 3600, "token_type": "Bearer"}
            return 200, {"email": self.email, "aliases": ["default"],
                         "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
        return 404, "not served"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Node:
    """Runs one pod: init containers in order, then the main container beside the sidecar."""

    def __init__(self, pod: Mapping[str, Any], root: Path, env: Optional[Mapping[str, str]] = None,
                 identity: Optional[Any] = None, project_id: str = "PROJECT_ID",
                 secrets: Optional[Mapping[str, Mapping[str, str]]] = None):
        self.root = Path(root)
        meta, spec = pod["metadata"], pod["spec"]
        email = identity(meta["namespace"], spec.get("serviceAccountName") or "default") if identity else None
        self.metadata = MetadataServer(email, project_id)
        self.state = PodState(pod)
        self.extra_env = dict(env or {})
        self.sa_dir = self.root / SA_DIR.lstrip("/")
        self.sa_dir.mkdir(parents=True)
        _self_signed(self.sa_dir)
        shim = self.root / ".node-python"
        shim.mkdir()
        (shim / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self.shim = shim
        self.secrets = dict(secrets or {})
        self.secret_mounts: Dict[str, str] = {}  # mountPath -> secret name
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for volume in volumes.values():
            if "secret" in volume and volume["secret"]["secretName"] not in self.secrets:
                raise ValueError(f"volume {volume['name']}: secret {volume['secret']['secretName']} does not exist "
                                 f"(the pod would stay ContainerCreating)")
            if "emptyDir" not in volume and "secret" not in volume:
                raise ValueError(f"volume {volume['name']}: only emptyDir and secret volumes are mapped")
        for container in [*(pod["spec"].get("initContainers") or []), *pod["spec"]["containers"]]:
            for mount in container.get("volumeMounts") or []:
                volume = volumes[mount["name"]]
                if "secret" in volume:
                    self.secret_mounts[mount["mountPath"]] = volume["secret"]["secretName"]
        self.api = KubeApi(self.state, self.sa_dir)
        self.procs: Dict[str, subprocess.Popen] = {}
        self.times: Dict[str, List[float]] = {}  # container -> [start, end] (monotonic seconds)

    # -------------------------------------------------------------- mapping
    def _mounts(self, container: Mapping[str, Any]) -> List[str]:
        paths = [m["mountPath"] for m in container.get("volumeMounts") or []] + [SA_DIR]
        for path in paths:
            folder = self.root / path.lstrip("/")
            folder.mkdir(parents=True, exist_ok=True)
            for key, value in self.secrets.get(self.secret_mounts.get(path, ""), {}).items():
                # The kubelet writes each key of the Secret as a file (a callable value gets this node first).
                (folder / key).write_text(value(self) if callable(value) else value)
        return sorted(paths, key=len, reverse=True)

    def _mapper(self, container: Mapping[str, Any]):
        mounts = self._mounts(container)
        pattern = re.compile("|".join(re.escape(m) for m in mounts))

        def remap(text: str) -> str:
            return pattern.sub(lambda m: str(self.root) + m.group(0), text)

        return remap

    def _env(self, container: Mapping[str, Any], remap) -> Dict[str, str]:
        meta = self.state.pod["metadata"]
        fields = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
                  "spec.nodeName": NODE_NAME, "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
        env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
               "HOME": str(self.root / "home"), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
               "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.api.port),
               "GCE_METADATA_HOST": self.metadata.host, "GCE_METADATA_IP": self.metadata.host,
               "POLYAXON_CONTEXT_ROOT": str(self.root / "plx-context"), "LMAO_NODE_SA_DIR": str(self.sa_dir),
               "PYTHONPATH": str(self.shim), **IMAGE_ENV.get(container.get("image", "").rsplit(":", 1)[0], {}),
               **self.extra_env}
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = remap(str(var["value"]))
            elif "fieldRef" in (var.get("valueFrom") or {}):
                env[var["name"]] = fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
            else:
                raise ValueError(f"{container['name']}: env {var['name']}: only value and fieldRef are mapped")
        if container.get("envFrom"):
            raise ValueError(f"{container['name']}: envFrom is not mapped by the local node")
        return env

    def _start(self, container: Mapping[str, Any]) -> subprocess.Popen:
        remap = self._mapper(container)
        argv = [remap(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
        cwd = remap(container.get("workingDir") or str(self.root))
        Path(cwd).mkdir(parents=True, exist_ok=True)
        (self.root / "home").mkdir(exist_ok=True)
        proc = subprocess.Popen(argv, cwd=cwd, env=self._env(container, remap), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace",
                                start_new_session=True)
        name = container["name"]
        self.times[name] = [time.monotonic()]
        with self.state.lock:
            self.state.containers[name].state = {"running": {"startedAt": _now()}}

        def pump() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                with self.state.lock:
                    self.state.containers[name].log.append(f"{_now()} {line.rstrip()}")
            code = proc.wait()
            self.times[name].append(time.monotonic())
            with self.state.lock:
                self.state.containers[name].state = {"terminated": {
                    "exitCode": code if code >= 0 else 128 - code, "finishedAt": _now(),
                    "reason": "Completed" if code == 0 else "Error"}}

        threading.Thread(target=pump, daemon=True).start()
        self.procs[name] = proc
        return proc

    def durations(self) -> Dict[str, float]:
        """Seconds each container ran (wall clock), for the test's report."""
        return {n: round(t[1] - t[0], 1) for n, t in self.times.items() if len(t) == 2}

    def log(self, name: str) -> str:
        with self.state.lock:
            return "\n".join(self.state.containers[name].log)

    def exit_code(self, name: str, timeout: float) -> Optional[int]:
        """The container's exit code once the node has recorded it (None if still running at ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.state.lock:
                term = self.state.containers[name].state.get("terminated")
            if term:
                return term["exitCode"]
            time.sleep(0.2)
        return None

    # -------------------------------------------------------------- running
    def run_init(self, timeout: float = 120) -> None:
        """Init containers in order; each must exit 0 (as the kubelet requires before the next)."""
        self.state.phase = "Pending"
        for container in self.state.pod["spec"].get("initContainers") or []:
            self._start(container)
            code = self.exit_code(container["name"], timeout)
            if code != 0:
                raise RuntimeError(f"init container {container['name']} exited {code}:\n{self.log(container['name'])[-3000:]}")

    def start_containers(self) -> None:
        self.state.phase = "Running"
        for container in self.state.pod["spec"]["containers"]:
            self._start(container)

    def kill(self, name: str) -> None:
        """SIGKILL a container's processes (the main one: what a preemption or an OOM kill does to it)."""
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait_all(self, timeout: float) -> Dict[str, Optional[int]]:
        """Exit codes of the app containers; the pod's phase follows the main container."""
        codes = {c["name"]: self.exit_code(c["name"], timeout) for c in self.state.pod["spec"]["containers"]}
        self.state.phase = "Succeeded" if all(c == 0 for c in codes.values()) else "Failed"
        return codes

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        self.api.close()
        self.metadata.close()
