"""Read what a flow run left in the Prefect API: its task runs, its artifacts and its log lines (the API
records them a moment after the run, so the readers wait a little for them)."""

from __future__ import annotations

import json
import time
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)


def task_run_states(flow_run_id: UUID, expected: int, timeout: float = 30.0) -> dict[str, str]:
    """``{task run name: state name}`` of a flow run's task runs, once ``expected`` of them are final."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            states = {r.name: r.state.name for r in runs if r.state is not None and r.state.is_final()}
            if len(states) >= expected:
                return states
            time.sleep(0.3)
    return states


def _artifact_data(flow_run_id: UUID, key: str, timeout: float) -> object | None:
    """The ``data`` of the artifact ``key`` of a flow run, once the API has it (None if it never appears)."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            )
            if found:
                return found[0].data
            time.sleep(0.3)
    return None


def artifact_table(flow_run_id: UUID, key: str, timeout: float = 30.0) -> list[dict] | None:
    """The rows of the table artifact ``key`` of a flow run (None if it never appears)."""
    data = _artifact_data(flow_run_id, key, timeout)
    return json.loads(data) if isinstance(data, str) else data


def artifact_markdown(flow_run_id: UUID, key: str, timeout: float = 30.0) -> str | None:
    """The text of the markdown artifact ``key`` of a flow run (None if it never appears)."""
    data = _artifact_data(flow_run_id, key, timeout)
    return None if data is None else str(data)


def run_log_lines(flow_run_id: UUID, expected: str, timeout: float = 30.0) -> list[tuple[str, str]]:
    """``(logger name, message)`` of a flow run's log lines (its tasks' included), once one of them
    contains ``expected`` (all of them if none ever does)."""
    deadline = time.monotonic() + timeout
    lines: list[tuple[str, str]] = []
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            lines = [(entry.name, entry.message) for entry in logs]
            if any(expected in message for _, message in lines):
                return lines
            time.sleep(0.3)
    return lines
