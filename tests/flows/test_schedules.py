"""Schedules that fire, one night at a time, findable nights: a real Prefect server started by
``stampflow server`` on a free loopback port (its own PREFECT_HOME and SQLite database, no telemetry) and
``stampflow serve`` with three nightly deployments on a tiny night:

- ``every-minute``: cron ``* * * * *``: the server's scheduler (not a manual trigger) creates a run and it
  completes within two minutes of registration;
- ``enqueue`` / ``cancel-new``: two runs created at once: the second waits for the first
  (``AwaitingConcurrencySlot``) or is cancelled, never running beside it.

The server's scheduler loop and the concurrency-slot wait are shortened (1 s) so the module takes about one
minute plus a run; the deployments run side by side while the test waits for the minute to turn.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.flows.conftest import HITS_EXTENSIONS, copy_night

pytestmark = pytest.mark.slow

NIGHT = "2026-03-02"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """``check()``'s first truthy value, polled every ``interval`` s; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not after {timeout} s")


def _healthy(url: str, proc: subprocess.Popen) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"prefect server exited with {proc.returncode}")
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Served:
    """The running server and ``serve`` process of this module."""

    api: str
    registered: float  # time.time() when every deployment was on the server
    collisions: dict[str, list]  # deployment -> ids of the two runs created at once right after
    server_log: Path
    serve_log: Path
    run_root: Path


def _deployments(tmp_path: Path, model: Path, inputs: Path) -> list[dict[str, Any]]:
    def nightly(name: str, **spec: Any) -> dict[str, Any]:
        parameters = {
            "source": {"kind": "fits", "inputs": [str(inputs)], "extensions": HITS_EXTENSIONS},
            "model": str(model),
            "run_dir": str(tmp_path / "runs" / name / "{night}"),
            "timezone": "UTC",
        }
        return {"flow": "nightly", "name": name, "parameters": parameters, **spec}

    every_minute = nightly("every-minute", cron="* * * * *", timezone="UTC")
    enqueue, cancel = nightly("enqueue"), nightly("cancel-new", collision_strategy="CANCEL_NEW")
    for spec in (enqueue, cancel):
        spec["parameters"]["night"] = NIGHT
    return [every_minute, enqueue, cancel]


@pytest.fixture(scope="module")
def served(tiny_rb_model, night_folder, tmp_path_factory) -> Iterator[Served]:
    tmp_path = tmp_path_factory.mktemp("schedules")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(tmp_path / "prefect_home"),
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PYTHONPATH": str(REPO),
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("server", "serve")}
    stampflow = [sys.executable, "-m", "flows.cli"]
    with logs["server"].open("w") as out:
        server = subprocess.Popen(
            [*stampflow, "server", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    serve = None
    try:
        _wait_for(lambda: _healthy(api, server), 120, f"prefect server at {api}")
        inputs = copy_night(night_folder, tmp_path / "incoming")
        config = tmp_path / "deployments.json"
        config.write_text(json.dumps({"deployments": _deployments(tmp_path, tiny_rb_model, inputs)}))
        with logs["serve"].open("w") as out:
            serve = subprocess.Popen(
                [*stampflow, "serve", "--config", str(config)],
                env={**env, "PREFECT_API_URL": api},
                cwd=tmp_path,  # runs import the flow by module path, from any folder
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        with _client(api) as client:
            _wait_for(lambda: _deployment(client, "cancel-new"), 120, "deployments registered")
            registered = time.time()
            # the colliding runs run while the scheduler waits for the minute to turn
            collisions = {name: _two_runs_at_once(client, name) for name in ("enqueue", "cancel-new")}
        yield Served(api, registered, collisions, logs["server"], logs["serve"], tmp_path / "runs")
    finally:
        if serve is not None:
            _stop(serve)
        _stop(server)


@contextmanager
def _client(api: str) -> Iterator[Any]:
    """A sync Prefect client of the module's server (the session's test harness stays the default)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        yield client


def _deployment(client, name: str):
    try:
        return client.read_deployment_by_name(f"nightly/{name}")
    except Exception:  # not registered yet
        return None


def _runs(client, name: str) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    return client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))


def _two_runs_at_once(client, name: str) -> list:
    """Ids of two runs of ``nightly/<name>`` created at once."""
    deployment = _deployment(client, name)
    return [client.create_flow_run_from_deployment(deployment.id).id for _ in range(2)]


def _ended(client, ids: list) -> list:
    """The runs ``ids`` once all of them have ended, in the order given."""

    def ended():
        runs = [client.read_flow_run(i) for i in ids]
        return runs if all(r.state.type.value in TERMINAL for r in runs) else None

    return _wait_for(ended, 240, f"runs {ids} ended")


def _overlap(a, b) -> bool:
    return a.start_time < b.end_time and b.start_time < a.end_time


def test_enqueue_runs_the_second_night_after_the_first(served):
    with _client(served.api) as client:
        runs = _ended(client, served.collisions["enqueue"])
        assert [r.state.name for r in runs] == ["Completed", "Completed"], [r.state for r in runs]
        assert not _overlap(*runs), [(r.start_time, r.end_time) for r in runs]
        histories = [[s.name for s in client.read_flow_run_states(r.id)] for r in runs]
        assert sum("AwaitingConcurrencySlot" in h for h in histories) == 1, histories
        # findable: named and tagged with flow, deployment and night; artifacts keyed by deployment
        for run in runs:
            assert run.name == f"nightly-enqueue-{NIGHT}"
            assert {"stampflow", "flow:nightly", "deployment:enqueue", f"night:{NIGHT}"} <= set(run.tags)
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        keys = {"enqueue-nightly-summary", "enqueue-nightly-table"}
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys)))
        )
        assert {a.key for a in artifacts} == keys
    assert list((served.run_root / "enqueue").rglob("scored.parquet"))


def test_cancel_new_cancels_the_second_night(served):
    with _client(served.api) as client:
        runs = _ended(client, served.collisions["cancel-new"])
        histories = {r.state.name: [s.name for s in client.read_flow_run_states(r.id)] for r in runs}
    assert sorted(histories) == ["Cancelled", "Completed"], [r.state for r in runs]
    cancelled = next(r for r in runs if r.state.name == "Cancelled")
    assert "concurrency limit" in (cancelled.state.message or ""), cancelled.state
    assert "Running" not in histories["Cancelled"]  # it never ran


def test_the_scheduler_creates_a_run_and_it_completes_within_two_minutes(served):
    with _client(served.api) as client:
        deployment = _deployment(client, "every-minute")
        schedule = deployment.schedules[0].schedule
        assert (schedule.cron, schedule.timezone) == ("* * * * *", "UTC")

        def scheduled_run_ended():
            runs = [r for r in _runs(client, "every-minute") if r.auto_scheduled]
            return next((r for r in runs if r.state.type.value in TERMINAL), None)

        run = _wait_for(scheduled_run_ended, 150, "a scheduled run of nightly/every-minute ended", 1)
    assert run.state.name == "Completed", (run.state, served.serve_log.read_text()[-3000:])
    assert run.end_time.timestamp() - served.registered <= 120
    night = run.expected_start_time.astimezone(timezone.utc).date().isoformat()
    assert run.name == f"nightly-every-minute-{night}"
    assert f"night:{night}" in run.tags
    assert list((served.run_root / "every-minute" / night).rglob("manifest.json"))


def test_server_command_points_the_ui_at_its_port_and_sends_no_telemetry(served):
    with urllib.request.urlopen(served.api.removesuffix("/api") + "/ui-settings", timeout=5) as response:
        assert json.load(response)["api_url"] == served.api
    log = served.server_log.read_text()
    assert f"PREFECT_API_URL={served.api}" in log
    assert "telemetry" not in log.lower() and "error" not in log.lower(), log[-3000:]
    assert "serving nightly/every-minute: cron '* * * * *' (UTC)" in served.serve_log.read_text()
