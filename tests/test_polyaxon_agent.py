"""The process agent's hooks without a server (experiments/polyaxon/agent.py): deleting runs.

Polyaxon's server asks an agent to delete in two ways (haupt 2.18.0 ``get_deleting_runs``): a run deleted
while it runs comes without content (end its processes), and the done runs' artifacts come as one batch
cleaner operation (``polyaxon clean-artifacts ... -sp=STORE/UUID``). polyaxon's own ``BaseSyncAgent.delete_run``
hands that operation to the executor, which the local agent does not have (NotImplementedError).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from experiments.polyaxon.agent import LocalRun, _agent_classes, cleaner_paths, set_agent_config
from experiments.common.processes import group_alive


class FakeClient:
    def __init__(self):
        self.statuses = []

    def log_run_status(self, run_owner, run_project, run_uuid, status, reason=None, message=None):
        self.statuses.append((run_uuid, status))


def until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def agent(tmp_path):
    """The agent's object without its server loop (BaseSyncAgent.__init__ connects to the server)."""
    agent_cls = _agent_classes()
    fake = agent_cls.__new__(agent_cls)
    fake.state_dir = tmp_path / "state"
    fake.runs, fake.lock, fake.client = {}, threading.Lock(), FakeClient()
    fake.base_env = {**os.environ, "HOME": str(tmp_path)}
    fake.said = []
    fake.say = fake.said.append
    store = tmp_path / "store"
    store.mkdir()
    set_agent_config(store)
    fake.store = store
    return fake


def cleaner_content(store: Path, paths) -> str:
    from polyaxon import settings
    from polyaxon._operations.cleaner import get_batch_cleaner_operation

    assert Path(settings.AGENT_CONFIG.artifacts_store.store_path) == store.resolve()
    return get_batch_cleaner_operation(connection=settings.AGENT_CONFIG.artifacts_store, paths=paths).to_json()


def test_polyaxons_own_path_cannot_run_the_cleaner_job(agent):
    """Why delete_run is ours: polyaxon 2.18.0's local-process converter refuses the cleaner job."""
    from polyaxon.exceptions import PolyaxonCompilerError

    content = cleaner_content(agent.store, [uuid.uuid4().hex])
    with pytest.raises(PolyaxonCompilerError, match="run kind: cleaner is not supported"):
        _agent_classes().EXECUTOR.make_and_convert(owner_name="default", project_name="agent", run_uuid="agent",
                                                   run_name="cleaner", content=content)


def test_delete_run_removes_deleted_runs_artifacts_from_the_local_store(agent):
    deleted = [uuid.uuid4().hex for _ in range(2)]
    kept = uuid.uuid4().hex
    for name in [*deleted, kept]:
        (agent.store / name / "outputs").mkdir(parents=True)
        (agent.store / name / "outputs" / "results.json").write_text("{}")
    content = cleaner_content(agent.store, deleted)
    assert cleaner_paths(content) == [str(agent.store.resolve() / name) for name in deleted]
    agent.delete_run(("default.agent.runs.agent", "job", "cleaner", content, None))
    assert not any((agent.store / name).exists() for name in deleted)
    assert (agent.store / kept / "outputs" / "results.json").exists()
    assert "cleaner: removed the artifacts of 2 deleted run(s)" in agent.said


def test_delete_run_refuses_paths_that_are_not_run_folders_of_the_store(agent, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    inside = agent.store / "not-a-run"
    inside.mkdir()
    content = cleaner_content(agent.store, ["../precious", "not-a-run", ""])
    agent.delete_run(("default.agent.runs.agent", "job", "cleaner", content, None))
    assert outside.exists() and inside.exists() and agent.store.exists()
    assert sum("not removing" in line for line in agent.said) == 3


def test_delete_run_of_a_running_run_ends_its_process_group(agent, tmp_path):
    run_uuid = uuid.uuid4().hex
    task = SimpleNamespace(name="main", command=[sys.executable, "-c"],
                           args=["import subprocess, time; subprocess.Popen(['sleep', '120']); time.sleep(120)"],
                           working_dir=str(tmp_path / "work"), env=[])
    run = LocalRun(agent, "default", "lmao", run_uuid, [task])
    run.run_path = tmp_path / "run"
    run.logs_dir = run.run_path / "plxlogs"
    agent.runs[run_uuid] = run
    run.start()
    until(lambda: (run_uuid, "running") in agent.client.statuses, 30, "the run to start")
    pgid = run.proc.pid
    assert group_alive(pgid)
    agent.delete_run((f"default.lmao.runs.{run_uuid}", "job", "trial", None, None))
    until(lambda: not group_alive(pgid), 30, "the run's process group to end")
    assert agent.client.statuses[-1] == (run_uuid, "stopped")
    until(lambda: run_uuid not in agent.runs, 30, "the agent to forget the run")
    assert not (agent.state_dir / "runs" / f"{run_uuid}.json").exists()
    # A deletion of a run the agent does not run is nothing to do.
    agent.delete_run((f"default.lmao.runs.{uuid.uuid4().hex}", "job", "trial", None, None))
