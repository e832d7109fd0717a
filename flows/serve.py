"""Scheduled deployments of the stampflow flows (``stampflow serve``).

A deployments file (JSON) lists what to serve::

    {"deployments": [
      {"flow": "nightly", "name": "ztf-nightly", "cron": "0 9 * * *", "timezone": "America/Santiago",
       "collision_strategy": "ENQUEUE",
       "parameters": {"source": {"kind": "fits", "inputs": ["/data/ztf/{night}"],
                                 "extensions": ["SCIENCE", "TEMPLATE", "DIFFERENCE"], "size_policy": "pad"},
                      "model": "runs/rb/model/model.ckpt", "run_dir": "runs/nightly/{night}",
                      "timezone": "America/Santiago"}}
    ]}

:func:`serve` registers each one with the Prefect server that ``PREFECT_API_URL`` names (a cron schedule in
its time zone, fixed parameters, ``enforce_parameter_schema`` so the server checks them) and runs them in
this process when they are due or triggered (Prefect's ``serve``: a runner that polls the server). The
flows are registered by module path (``flows.nightly.nightly_flow``), so runs work from any working folder
where stampflow is installed.

One night at a time: each deployment has a Prefect deployment concurrency limit (``concurrency_limit``,
default 1); a run that comes due while the limit is reached waits for the running one to end
(``collision_strategy`` ``ENQUEUE``, the default) or is cancelled (``CANCEL_NEW``). Findable nights: a
run is named ``<flow>-<deployment>-<night>`` (:func:`run_name`) and tagged ``stampflow``,
``flow:<flow>``, ``deployment:<deployment>`` and, once it starts, ``night:<night>`` (:func:`tag_night`).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

#: Flow name -> "module:attribute" of the flow object.
FLOWS = {
    "nightly": "flows.nightly:nightly_flow",
    "ingest": "flows.ingest_flow:ingest_flow",
    "score": "flows.score_flow:score_flow",
    "report": "flows.score_flow:report_flow",
    "train": "flows.train_flow:train_flow",
    "simulate": "flows.simulate_flow:simulate_flow",
}


class DeploymentSpec(BaseModel):
    """One deployment: which flow, its name, schedule, fixed parameters and how many runs at once."""

    flow: Literal["nightly", "ingest", "score", "report", "train", "simulate"]
    name: str = Field(min_length=1)
    cron: str | None = Field(None, description="cron schedule, e.g. '0 9 * * *' (none: run on demand only)")
    timezone: str = Field("UTC", description="IANA time zone of the cron schedule")
    parameters: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    paused: bool = False
    concurrency_limit: int = Field(1, ge=1, description="at most this many runs of the deployment at once")
    collision_strategy: Literal["ENQUEUE", "CANCEL_NEW"] = Field(
        "ENQUEUE",
        description="a run due while the limit is reached: waits for a slot (ENQUEUE) or is cancelled (CANCEL_NEW)",
    )


def load_specs(path: str | os.PathLike) -> list[DeploymentSpec]:
    """The deployments of a JSON file: ``{"deployments": [...]}`` or a bare list.

    Raises:
        ValueError: the file is not JSON or a deployment is invalid (the message names it).
    """
    try:
        document = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON: {err}") from err
    items = document.get("deployments", []) if isinstance(document, dict) else document
    if not items:
        raise ValueError(f"{path} lists no deployments")
    return [DeploymentSpec.model_validate(item) for item in items]


def flow_object(name: str):
    """The flow object registered under ``name`` in :data:`FLOWS`."""
    module, attribute = FLOWS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def run_night() -> str:
    """The night of the current flow run: its ``night`` parameter, else the date of its scheduled start in
    its ``timezone`` parameter (UTC without one), as the nightly flow resolves it."""
    from prefect.runtime import flow_run

    from flows.nightly import resolve_night

    parameters = flow_run.parameters or {}
    return resolve_night(parameters.get("night"), parameters.get("timezone") or "UTC")


def run_name() -> str:
    """``<flow>-<deployment>-<night>`` of the current flow run, e.g. ``nightly-ztf-2026-03-02`` (Prefect
    calls it as the deployment's ``flow_run_name`` when the run starts)."""
    from prefect.runtime import deployment, flow_run

    return f"{flow_run.flow_name}-{deployment.name or 'adhoc'}-{run_night()}"


def tag_night(flow, flow_run, state) -> None:
    """Add ``night:<night>`` to the tags of a starting flow run (an ``on_running`` hook), so that the UI's
    and ``prefect flow-run ls``'s tag filters find a night."""
    from prefect import get_client

    tags = sorted({*(flow_run.tags or []), f"night:{run_night()}"})
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, tags=tags)


#: Prefix of this module's served flows: ``flows.serve.served_nightly`` is the entrypoint of a nightly deployment.
SERVED_PREFIX = "served_"


@functools.cache
def served_flow(name: str):
    """The flow ``name`` of :data:`FLOWS` as deployments run it: runs named by :func:`run_name` and tagged
    by :func:`tag_night`."""
    return flow_object(name).with_options(flow_run_name=run_name, on_running=[tag_night])


def __getattr__(attribute: str):
    """``served_<flow>``: :func:`served_flow` of ``<flow>``, imported on first use (module attributes, so
    that a flow-run process loads it from the deployment's entrypoint; importing every flow here would
    import torch and lightning for nothing)."""
    name = attribute.removeprefix(SERVED_PREFIX)
    if attribute.startswith(SERVED_PREFIX) and name in FLOWS:
        return served_flow(name)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


def deployment_options(spec: DeploymentSpec) -> dict[str, Any]:
    """The options of ``spec``'s Prefect deployment: cron schedule in its time zone, fixed parameters,
    tags, concurrency limit and collision strategy, module entrypoint."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    limit = ConcurrencyLimitConfig(
        limit=spec.concurrency_limit, collision_strategy=ConcurrencyLimitStrategy(spec.collision_strategy)
    )
    return {
        "name": spec.name,
        "schedules": [Cron(spec.cron, timezone=spec.timezone)] if spec.cron else None,
        "parameters": spec.parameters,
        "description": spec.description,
        "tags": ["stampflow", f"flow:{spec.flow}", f"deployment:{spec.name}", *spec.tags],
        "paused": spec.paused,
        "concurrency_limit": limit,
        "entrypoint_type": EntrypointType.MODULE_PATH,
    }


def to_deployment(spec: DeploymentSpec):
    """A Prefect ``RunnerDeployment`` of ``spec`` (:func:`deployment_options`) whose entrypoint is
    ``flows.serve.served_<flow>``: the run process loads the served flow, with its run names and tags."""
    deployment = served_flow(spec.flow).to_deployment(**deployment_options(spec))
    deployment.entrypoint = f"{__name__}.{SERVED_PREFIX}{spec.flow}"
    return deployment


def serve(specs: list[DeploymentSpec], limit: int | None = None) -> None:
    """Register ``specs`` with the Prefect server and run their flow runs here, each in its own process,
    until interrupted (stopping pauses their schedules).

    Args:
        specs: the deployments.
        limit: at most this many flow runs at once in this process, over all deployments (None: no
            limit; each deployment's own limit is its ``concurrency_limit``).
    """
    from prefect import serve as prefect_serve

    prefect_serve(*[to_deployment(s) for s in specs], limit=limit)
