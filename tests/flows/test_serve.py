"""``stampflow serve`` against a real ``prefect server`` on a free loopback port: the nightly deployment is
registered with its cron schedule and time zone, one triggered run completes and writes its run folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import REPO
from tests.flows.conftest import HITS_EXTENSIONS, copy_night

TRIGGER = """
import json, sys, time
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

name = sys.argv[1]
deadline = time.monotonic() + 120
with get_client(sync_client=True) as client:
    while True:
        try:
            deployment = client.read_deployment_by_name(name)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
run = run_deployment(name, timeout=240, poll_interval=1)
schedule = deployment.schedules[0].schedule
print(json.dumps({"state": run.state.name, "cron": schedule.cron, "timezone": schedule.timezone,
                  "parameters": run.parameters}, default=str))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"prefect server at {url} did not become healthy in {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_serve_registers_a_cron_deployment_and_a_triggered_run_completes(
    tiny_rb_model, night_folder, tmp_path
):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(tmp_path / "prefect_home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PYTHONPATH": str(REPO),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    served = None
    try:
        _wait_healthy(api, server)
        inputs = copy_night(night_folder, tmp_path / "incoming" / "2026-03-02")
        config = tmp_path / "deployments.json"
        parameters = {
            "source": {
                "kind": "fits",
                "inputs": [str(tmp_path / "incoming" / "{night}")],
                "extensions": HITS_EXTENSIONS,
            },
            "model": str(tiny_rb_model),
            "run_dir": str(tmp_path / "runs" / "{night}"),
            "night": "2026-03-02",
            "timezone": "America/Santiago",
        }
        spec = {"flow": "nightly", "name": "tiny", "cron": "0 9 * * *", "timezone": "America/Santiago"}
        config.write_text(json.dumps({"deployments": [{**spec, "parameters": parameters}]}))
        client_env = {**env, "PREFECT_API_URL": api}
        served = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--config", str(config)],
            env=client_env,
            cwd=tmp_path,  # runs import the flow by module path, from any folder
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        trigger = subprocess.run(
            [sys.executable, "-c", TRIGGER, "nightly/tiny"],
            env=client_env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert trigger.returncode == 0, trigger.stderr[-3000:]
        result = json.loads(trigger.stdout.strip().splitlines()[-1])
        assert result["cron"] == "0 9 * * *" and result["timezone"] == "America/Santiago"
        assert result["state"] == "Completed", result
        run_dir = tmp_path / "runs" / "2026-03-02"
        assert (run_dir / "scored.parquet").is_file()
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["stages"]["ingest"]["counts"]["ingested"] == len(list(inputs.glob("*.fits.gz")))
    finally:
        if served is not None:
            _stop(served)
        _stop(server)
    assert "serving nightly/tiny: cron '0 9 * * *' (America/Santiago)" in served.stdout.read()
