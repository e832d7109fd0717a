"""Scheduled deployments of the stampflow flows (``stampflow serve``).

A deployments file (JSON) lists what to serve::

    {"deployments": [
      {"flow": "nightly", "name": "ztf-nightly", "cron": "0 9 * * *", "timezone": "America/Santiago",
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
"""

from __future__ import annotations

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
    """One deployment: which flow, its name, schedule and fixed parameters."""

    flow: Literal["nightly", "ingest", "score", "report", "train", "simulate"]
    name: str = Field(min_length=1)
    cron: str | None = Field(None, description="cron schedule, e.g. '0 9 * * *' (none: run on demand only)")
    timezone: str = Field("UTC", description="IANA time zone of the cron schedule")
    parameters: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    paused: bool = False


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


def to_deployment(spec: DeploymentSpec):
    """A Prefect ``RunnerDeployment`` of ``spec`` (cron schedule in its time zone; module entrypoint)."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    return flow_object(spec.flow).to_deployment(
        name=spec.name,
        schedules=[Cron(spec.cron, timezone=spec.timezone)] if spec.cron else None,
        parameters=spec.parameters,
        description=spec.description,
        tags=["stampflow", *spec.tags],
        paused=spec.paused,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def serve(specs: list[DeploymentSpec], limit: int | None = None) -> None:
    """Register ``specs`` with the Prefect server and run their flow runs here until interrupted.

    Args:
        specs: the deployments.
        limit: at most this many flow runs at once (None: no limit).
    """
    from prefect import serve as prefect_serve

    prefect_serve(*[to_deployment(s) for s in specs], limit=limit)
