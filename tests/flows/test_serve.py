"""``stampflow serve`` and ``stampflow server`` without a server of their own: what a deployments file turns
into (concurrency limit and collision strategy, tags, the served flow's entrypoint), per-deployment artifact
keys, and the server's environment. The real server, scheduler and runs: tests/flows/test_schedules.py."""

from __future__ import annotations

import json

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.utilities.importtools import import_object

from flows.artifacts import publish_summary
from flows.commands.server import server_environment
from flows.serve import load_specs, run_name, tag_night, to_deployment


def test_a_deployment_runs_one_night_at_a_time_with_the_chosen_collision_strategy(tmp_path):
    path = tmp_path / "deployments.json"
    items = [
        {"flow": "nightly", "name": "ztf", "cron": "0 9 * * *"},
        {"flow": "nightly", "name": "rubin", "collision_strategy": "CANCEL_NEW", "tags": ["rubin"]},
    ]
    path.write_text(json.dumps({"deployments": items}))
    ztf, rubin = (to_deployment(spec) for spec in load_specs(path))
    assert ztf.concurrency_limit == 1 and ztf.concurrency_options.collision_strategy.value == "ENQUEUE"
    assert rubin.concurrency_limit == 1 and rubin.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert rubin.tags == ["stampflow", "flow:nightly", "deployment:rubin", "rubin"]
    served = import_object(rubin.entrypoint)  # what the run process loads: named and tagged runs
    assert served.name == "nightly" and served.flow_run_name is run_name
    assert served.on_running_hooks == [tag_night]
    for bad, field in (
        ({"collision_strategy": "CANCEL_OLD"}, "collision_strategy"),
        ({"concurrency_limit": 0}, "concurrency_limit"),
    ):
        path.write_text(json.dumps([{"flow": "nightly", "name": "x", **bad}]))
        with pytest.raises(ValueError, match=field):
            load_specs(path)


@flow
def _publish(key_prefix: str | None = None) -> dict[str, str]:
    return publish_summary("nightly", "# n", [("inputs", 3)], key_prefix=key_prefix)


def test_artifact_keys_are_per_deployment():
    keys = {"markdown": "ztf-north-nightly-summary", "table": "ztf-north-nightly-table"}
    assert _publish("ZTF north") == keys
    assert _publish()["markdown"] == "nightly-summary"  # a run outside a deployment: today's keys
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys.values())))
        )
    assert {a.key for a in found} == set(keys.values())


def test_server_environment_points_the_ui_at_its_port_and_turns_telemetry_off():
    env = server_environment("127.0.0.1", 4300, environ={"PATH": "/bin"})
    assert env["PREFECT_UI_API_URL"] == "http://127.0.0.1:4300/api"
    assert (env["PREFECT_SERVER_API_HOST"], env["PREFECT_SERVER_API_PORT"]) == ("127.0.0.1", "4300")
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["PATH"] == "/bin"
    everywhere = server_environment("0.0.0.0", 4300, environ={})
    assert "0.0.0.0" not in everywhere["PREFECT_UI_API_URL"]  # a browser cannot reach 0.0.0.0
    given = server_environment("0.0.0.0", 4300, "https://survey.example/prefect/api", environ={})
    assert given["PREFECT_UI_API_URL"] == "https://survey.example/prefect/api"
