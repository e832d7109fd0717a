"""Publish a run's summary as Prefect artifacts: one markdown page and one table, under stable keys so
that the Prefect UI shows each key's history across runs (e.g. every night's counts).

Keys are per deployment: a run of a deployment (``stampflow serve``) prefixes them with the deployment's
name (``ztf-nightly-nightly-summary``), so two deployments of the same flow keep separate histories; a run
outside a deployment keeps the bare keys (``nightly-summary``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pipeline.runs import json_safe


def artifact_key(text: str) -> str:
    """A valid artifact key (lowercase letters, digits and dashes) made from ``text``."""
    key = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return key or "stampflow"


def deployment_name() -> str | None:
    """The name of the deployment the current flow run belongs to; None outside a flow run or for a run
    made without a deployment."""
    from prefect.runtime import deployment

    try:
        return deployment.name
    except Exception:  # no server to ask: the keys stay bare rather than the summary being lost
        return None


def publish_summary(
    key: str,
    markdown: str,
    rows: Sequence[tuple[str, Any]],
    description: str | None = None,
    key_prefix: str | None = None,
) -> dict[str, str]:
    """Create the markdown artifact ``[<prefix>-]<key>-summary`` and the table artifact
    ``[<prefix>-]<key>-table``.

    Args:
        key: artifact key (made valid by :func:`artifact_key`).
        markdown: the page.
        rows: ``(quantity, value)`` rows of the table.
        description: shown beside the artifacts in the UI.
        key_prefix: put before ``key`` (default: the current run's deployment name, none outside one).

    Returns:
        ``{"markdown": key, "table": key}``.
    """
    prefix = key_prefix if key_prefix is not None else deployment_name()
    base = artifact_key(f"{prefix}-{key}" if prefix else key)
    keys = {"markdown": f"{base}-summary", "table": f"{base}-table"}
    create_markdown_artifact(markdown, key=keys["markdown"], description=description)
    table = [{"quantity": str(k), "value": json_safe(v)} for k, v in rows]
    create_table_artifact(table, key=keys["table"], description=description)
    return keys
