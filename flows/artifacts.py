"""Publish a run's summary as Prefect artifacts: one markdown page and one table, under stable keys so
that the Prefect UI shows each key's history across runs (e.g. every night's counts)."""

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


def publish_summary(
    key: str, markdown: str, rows: Sequence[tuple[str, Any]], description: str | None = None
) -> dict[str, str]:
    """Create the markdown artifact ``<key>-summary`` and the table artifact ``<key>-table``.

    Args:
        key: artifact key prefix (made valid by :func:`artifact_key`).
        markdown: the page.
        rows: ``(quantity, value)`` rows of the table.
        description: shown beside the artifacts in the UI.

    Returns:
        ``{"markdown": key, "table": key}``.
    """
    base = artifact_key(key)
    keys = {"markdown": f"{base}-summary", "table": f"{base}-table"}
    create_markdown_artifact(markdown, key=keys["markdown"], description=description)
    table = [{"quantity": str(k), "value": json_safe(v)} for k, v in rows]
    create_table_artifact(table, key=keys["table"], description=description)
    return keys
