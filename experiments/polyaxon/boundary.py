"""Where this package leans on Polyaxon's internals: the version it was tested with, and every private name.

Polyaxon's public API (``polyaxon.client``, ``polyaxon.settings``, ``polyaxon.schemas``, ``polyaxon.tracking``)
does not cover what the local process agent, the artifacts-sync fixes and the cluster compile need, so this
package subclasses, patches and calls names in Polyaxon's private modules (``polyaxon._...``) and private
attributes of its objects. Those may change in any release. So:

- :data:`TESTED_POLYAXON` is the one version they were checked against (pyproject.toml pins it);
- :func:`check_polyaxon_version` refuses another installed version with one clear error; the agent
  (agent.run_agent), the TPE tuner (tuner.py ``run``) and a tracked trial (tracking.make_tracker) call it
  before they start (importing this package does not);
- :data:`PRIVATE` lists every private Polyaxon name the package uses, with what for, and
  :func:`missing_private_symbols` says which of them the installed Polyaxon no longer has.
  tests/test_polyaxon_boundary.py checks the table against the installed Polyaxon and scans the package's
  source: a private access that is not in the table fails that test.

To move to another Polyaxon version: change the pins, run tests/test_polyaxon_boundary.py, fix what
:func:`missing_private_symbols` names (and what the Polyaxon tests find), then change :data:`TESTED_POLYAXON`.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Callable, List, NamedTuple, Optional

from ..common.errors import InputError

TESTED_POLYAXON = "2.18.0"
DISTRIBUTION = "polyaxon"


class PrivateSymbol(NamedTuple):
    """One private name: ``name`` in ``module`` (``Class.attr`` for an attribute of a class)."""

    module: str
    name: str
    kind: str  # "name": a module attribute or class attribute; "instance": set on instances in __init__
    use: str  # what we use it for, and where


PRIVATE: tuple = (
    # ---- agent.py: the local process agent (polyaxon's own sync agent loop + local-process converter)
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent", "name",
                  "agent.py ProcessAgent subclasses it: polyaxon's own agent loop (state poll, hooks per run)"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent._check_status", "name",
                  "agent.py overrides it (and calls it): an empty state answer must not end the agent"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.process", "name",
                  "agent.py overrides it: a failed state poll answers an empty state, not None"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.cron", "name",
                  "agent.py overrides it: the sandbox's 405 on cron is ignored"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.submit_run", "name",
                  "agent.py overrides it: start a queued run as local processes"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.stop_run", "name",
                  "agent.py overrides it: stop a run's process group"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.check_run", "name",
                  "agent.py overrides it: a run the server thinks runs but no process does is failed"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.apply_run", "name",
                  "agent.py overrides it: an apply is a submit"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.delete_run", "name",
                  "agent.py overrides it: a deleted run's processes end, the server's cleaner job deletes "
                  "artifacts folders from the local store"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.clean_run", "name",
                  "agent.py overrides it: end a deleted run's processes"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.end", "name",
                  "agent.py overrides it: an agent that stops fails its running trials"),
    PrivateSymbol("polyaxon._runner.agent.sync_agent", "BaseSyncAgent.prepare_run_resource", "name",
                  "agent.py calls it: compile a run into its init steps and main container"),
    PrivateSymbol("polyaxon._runner.agent.client", "AgentClient.log_run_status", "name",
                  "agent.py calls it (the agent's client): report running/succeeded/failed/stopped"),
    PrivateSymbol("polyaxon._local_process.executor", "Executor", "name",
                  "agent.py ConvertOnlyExecutor subclasses it: polyaxon's local-process converter"),
    PrivateSymbol("polyaxon._local_process.executor", "Executor.list_ops", "name",
                  "agent.py overrides it: the agent lists no operations of its own"),
    PrivateSymbol("polyaxon._sdk.schemas.v1_agent_state_response_agent_state", "V1AgentStateResponseAgentState",
                  "name", "agent.py ProcessAgent.process: the empty state of a failed poll"),
    PrivateSymbol("polyaxon._connections", "V1Connection", "name",
                  "agent.py set_agent_config: the sandbox's artifacts store as a host-path connection"),
    PrivateSymbol("polyaxon._connections", "V1Connection.store_path", "name",
                  "agent.py clean_artifacts: the local artifacts store's folder"),
    PrivateSymbol("polyaxon._connections", "V1ConnectionKind", "name", "agent.py set_agent_config (HOST_PATH)"),
    PrivateSymbol("polyaxon._connections", "V1HostPathConnection", "name", "agent.py set_agent_config"),
    PrivateSymbol("polyaxon._env_vars.getters", "get_artifacts_store_name", "name",
                  "agent.py set_agent_config: the connection name the init steps look up"),
    PrivateSymbol("polyaxon._env_vars.getters", "get_run_info", "name",
                  "agent.py (run instance -> owner, project, uuid), tuner.py and tracking.py (this run's)"),
    PrivateSymbol("polyaxon._schemas.agent", "AgentConfig", "name",
                  "agent.py set_agent_config and k8s_manifests.agent_config: the agent's config"),
    PrivateSymbol("polyaxon._contexts.paths", "CONTEXT_MOUNT_ARTIFACTS_FORMAT", "name",
                  "agent.py LocalRun (a run's folder) and tracking.init_managed_offline (its artifacts path)"),
    # ---- tuner.py
    PrivateSymbol("polyaxon._constants.metadata", "META_UPLOAD_ARTIFACTS", "name",
                  "tuner.py: a batch run's metadata says its code upload is in uploads/"),
    # ---- tracking.py: the in-process artifacts sidecar's fixes
    PrivateSymbol("traceml.tracking.run", "Run._sidecar", "instance",
                  "tracking.py _closable_sidecar / _robust_sidecar: the tracked run's sidecar thread"),
    PrivateSymbol("polyaxon._sidecar.processor", "SidecarThread._queue", "instance",
                  "tracking.py _closable_sidecar: close without blocking (put_nowait the shutdown signal)"),
    PrivateSymbol("polyaxon._sidecar.processor", "SidecarThread._shutdown_signal", "instance",
                  "tracking.py _closable_sidecar: the object that ends the thread"),
    PrivateSymbol("polyaxon._sidecar.processor", "SidecarThread._fw", "instance",
                  "tracking.py _robust_sidecar: the thread's FSWatcher, its class swapped and state restored"),
    PrivateSymbol("polyaxon._sidecar.processor", "SidecarThread._process", "name",
                  "tracking.py _robust_sidecar: patched so that a failed sync round is retried"),
    PrivateSymbol("polyaxon._fs.watcher", "FSWatcher", "name",
                  "tracking.py TempAwareFSWatcher subclasses it (skips our temporary files)"),
    PrivateSymbol("polyaxon._fs.watcher", "FSWatcher._sync_path", "name",
                  "tracking.py TempAwareFSWatcher overrides it: a file gone since the walk is not an error"),
    PrivateSymbol("polyaxon._fs.watcher", "FSWatcher.sync_file", "name", "tracking.py TempAwareFSWatcher overrides it"),
    PrivateSymbol("polyaxon._fs.watcher", "FSWatcher.sync_dir", "name", "tracking.py TempAwareFSWatcher overrides it"),
    PrivateSymbol("polyaxon._fs.watcher", "FSWatcher.files_mp", "name", "tracking.py _robust_sidecar: saved state"),
    PrivateSymbol("polyaxon._fs.watcher", "FSWatcher.dirs_mp", "name", "tracking.py _robust_sidecar: saved state"),
    PrivateSymbol("polyaxon._fs.watcher", "FSWatcher.file_mapping", "instance",
                  "tracking.py _robust_sidecar: state restored after a failed round"),
    PrivateSymbol("polyaxon._fs.watcher", "FSWatcher.dir_mapping", "instance",
                  "tracking.py _robust_sidecar: state restored after a failed round"),
    # ---- k8s_manifests.py: the cluster compile (what the server and the Kubernetes agent do)
    PrivateSymbol("polyaxon._compiler.resolver", "resolve", "name",
                  "k8s_manifests._resolve: the server's resolution of a compiled operation"),
    PrivateSymbol("polyaxon._auxiliaries", "V1PolyaxonSidecarContainer", "name",
                  "k8s_manifests._child_presets: a matrix child's sidecar"),
    PrivateSymbol("polyaxon._polyaxonfile", "CompiledOperationSpecification", "name",
                  "k8s_manifests._child_presets: apply_preset"),
    PrivateSymbol("polyaxon._polyaxonfile", "OperationSpecification", "name",
                  "k8s_manifests.compile_operation: compile_operation"),
    PrivateSymbol("polyaxon._polyaxonfile.check", "check_polyaxonfile", "name",
                  "k8s_manifests.compile_operation: the CLI's reading of the file with -P params"),
    PrivateSymbol("polyaxon._polyaxonfile.manager", "get_ops_from_suggestions", "name",
                  "k8s_manifests.compile_operation: a matrix child's operation"),
    PrivateSymbol("polyaxon._k8s.executor.base", "BaseExecutor", "name",
                  "k8s_manifests.compile_operation: BaseExecutor.convert, the Kubernetes agent's conversion"),
)

# Private names of other libraries the package uses (kept here so the source scan finds every one).
OTHER_PRIVATE: tuple = (
    PrivateSymbol("optuna.trial", "FrozenTrial._trial_id", "instance",
                  "tuner.py: a finished trial's id, to set user attributes on it (optuna.Trial(study, id))"),
)


class PolyaxonVersionError(InputError):
    """The installed Polyaxon is not the one this package was tested with."""


def installed_polyaxon() -> Optional[str]:
    """The installed polyaxon distribution's version, None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def check_polyaxon_version(installed: Optional[str] = None) -> None:
    """Raise :class:`PolyaxonVersionError` unless Polyaxon :data:`TESTED_POLYAXON` is installed."""
    installed = installed if installed is not None else installed_polyaxon()
    if installed == TESTED_POLYAXON:
        return
    raise PolyaxonVersionError(
        DISTRIBUTION, f"experiments.polyaxon was tested with Polyaxon {TESTED_POLYAXON}; installed is "
                      f"{installed or 'none'}: the private Polyaxon names it uses (experiments/polyaxon/boundary.py "
                      f"PRIVATE) may differ; install polyaxon=={TESTED_POLYAXON} (pip install -e '.[polyaxon]'), "
                      f"or port the package and run tests/test_polyaxon_boundary.py")


def _instance_attribute_set(cls: type, attr: str) -> bool:
    """Whether some class of ``cls``'s MRO assigns ``self.<attr>`` (or declares the field ``attr``)."""
    for klass in cls.__mro__:
        if attr in getattr(klass, "__annotations__", {}) or attr in getattr(klass, "model_fields", {}):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if f"self.{attr} =" in source or f"self.{attr}:" in source:
            return True
    return False


def symbol_present(symbol: PrivateSymbol, importer: Callable = importlib.import_module) -> bool:
    """Whether the installed packages still have ``symbol``."""
    try:
        obj = importer(symbol.module)
    except ImportError:
        return False
    parts = symbol.name.split(".")
    last = len(parts) - 1 if symbol.kind == "instance" else len(parts)
    for part in parts[:last]:
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    if symbol.kind == "instance":
        return isinstance(obj, type) and _instance_attribute_set(obj, parts[-1])
    return True


def missing_private_symbols(symbols: tuple = PRIVATE) -> List[PrivateSymbol]:
    """The entries of ``symbols`` the installed packages no longer have (empty: the table holds)."""
    return [symbol for symbol in symbols if not symbol_present(symbol)]
